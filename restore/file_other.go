//go:build !unix

package restore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync/atomic"
	"time"
)

// dirFD is a directory of the tree open for creating files in it, shared
// by the dispatcher and the writers; the last to let go closes it.
type dirFD struct {
	r    *os.Root
	refs atomic.Int32
}

func openDirFD(d *os.Root) (*dirFD, error) {
	r, err := d.OpenRoot(".")
	if err != nil {
		return nil, err
	}
	h := &dirFD{r: r}
	h.refs.Store(1)
	return h, nil
}

func (h *dirFD) hold() { h.refs.Add(1) }

func (h *dirFD) release() {
	if h.refs.Add(-1) == 0 {
		_ = h.r.Close()
	}
}

// outFile is a file being written.
type outFile struct {
	dir  *dirFD
	base string
	f    *os.File
}

var _ io.Writer = (*outFile)(nil)

func createFile(d *dirFD, base string, e *entry, _ fs.FileMode) (*outFile, error) {
	const flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	f, err := d.r.OpenFile(base, flags, 0o600)
	if errors.Is(err, fs.ErrExist) {
		fi, lerr := d.r.Lstat(base)
		if lerr == nil && fi.IsDir() {
			return nil, replaceDirErr(e)
		}
		if err := d.r.Remove(base); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("restore: %s: %w", e.raw, err)
		}
		f, err = d.r.OpenFile(base, flags, 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("restore: %s: %w", e.raw, err)
	}
	return &outFile{dir: d, base: base, f: f}, nil
}

func (o *outFile) Write(p []byte) (int, error) { return o.f.Write(p) }

func (o *outFile) finish(e *entry, perm fs.FileMode, owner bool) error {
	if owner {
		if err := o.f.Chown(e.uid, e.gid); err != nil {
			o.abort()
			return fmt.Errorf("restore: %s: %w", e.raw, err)
		}
	}
	if err := o.f.Chmod(perm); err != nil {
		o.abort()
		return fmt.Errorf("restore: %s: %w", e.raw, err)
	}
	if err := o.f.Close(); err != nil {
		return fmt.Errorf("restore: %s: %w", e.raw, err)
	}
	if !e.mtime.IsZero() {
		if err := o.dir.r.Chtimes(o.base, time.Time{}, e.mtime); err != nil {
			return fmt.Errorf("restore: %s: %w", e.raw, err)
		}
	}
	return nil
}

func (o *outFile) abort() { _ = o.f.Close() }
