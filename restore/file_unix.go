//go:build unix

package restore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// dirFD is a directory of the tree open for creating files in it, shared
// by the dispatcher and the writers; the last to let go closes it. Files
// are created with raw descriptors: an *os.File costs a poller
// registration and a finalizer per file, which dominate the cost of a
// small file.
type dirFD struct {
	f    *os.File
	fd   int
	refs atomic.Int32
}

// openDirFD opens d (a directory proven real by the walk that reached it)
// for creating files in it.
func openDirFD(d *os.Root) (*dirFD, error) {
	f, err := d.Open(".")
	if err != nil {
		return nil, err
	}
	h := &dirFD{f: f, fd: int(f.Fd())}
	h.refs.Store(1)
	return h, nil
}

func (h *dirFD) hold() { h.refs.Add(1) }

func (h *dirFD) release() {
	if h.refs.Add(-1) == 0 {
		_ = h.f.Close()
	}
}

// outFile is a file being written, by its descriptor.
type outFile struct {
	dir     *dirFD
	base    string
	fd      int
	modeSet bool // created with its final mode
}

var _ io.Writer = (*outFile)(nil)

const createFlags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC

// umask is the process's file mode creation mask, read once from
// /proc (setting it to read it would race with other goroutines); -1 when
// it cannot be known.
var umask = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return int(m)
			}
		}
	}
	return -1
})

// createMode is the mode a file is created with: its final one when the
// umask leaves it whole (then no fchmod is needed, as GNU tar does), else
// owner-only until fchmod sets it.
func createMode(perm fs.FileMode) (mode uint32, final bool) {
	if m := umask(); m >= 0 && perm&^fs.ModePerm == 0 && uint32(perm)&uint32(m) == 0 {
		return uint32(perm), true
	}
	return 0o600, false
}

// createFile creates base in d, for entry e, with mode perm or, when
// final is false, owner-only until finish sets perm. Something already
// there is removed first, as tar does with duplicate names, unless it is
// a directory: nothing may replace a directory.
func createFile(d *dirFD, base string, e *entry, perm fs.FileMode) (*outFile, error) {
	mode, final := createMode(perm)
	cleared := false
	for {
		fd, err := unix.Openat(d.fd, base, createFlags, mode)
		if err == nil {
			return &outFile{dir: d, base: base, fd: fd, modeSet: final}, nil
		}
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EEXIST && !cleared:
			cleared = true
			var st unix.Stat_t
			if err := unix.Fstatat(d.fd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				if err == unix.ENOENT {
					continue
				}
				return nil, wrapFile(e, "lstat", err)
			}
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				return nil, replaceDirErr(e)
			}
			if err := unix.Unlinkat(d.fd, base, 0); err != nil && err != unix.ENOENT {
				return nil, wrapFile(e, "remove", err)
			}
			continue
		}
		return nil, wrapFile(e, "openat", err)
	}
}

// Write writes all of p.
func (o *outFile) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Write(o.fd, p[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, &os.PathError{Op: "write", Path: o.base, Err: err}
		}
		if m == 0 {
			return n, io.ErrShortWrite
		}
		n += m
	}
	return n, nil
}

// finish sets the owner (with owner), the mode and the mtime on the open
// file, and closes it.
func (o *outFile) finish(e *entry, perm fs.FileMode, owner bool) error {
	err := o.meta(e, perm, owner)
	if cerr := unix.Close(o.fd); err == nil && cerr != nil {
		err = wrapFile(e, "close", cerr)
	}
	return err
}

func (o *outFile) meta(e *entry, perm fs.FileMode, owner bool) error {
	if owner {
		if err := unix.Fchown(o.fd, e.uid, e.gid); err != nil {
			return wrapFile(e, "fchown", err)
		}
	}
	// A chown may clear mode bits: the mode is set after it.
	if !o.modeSet || owner {
		mode := uint32(perm.Perm())
		if perm&fs.ModeSticky != 0 {
			mode |= unix.S_ISVTX
		}
		if err := unix.Fchmod(o.fd, mode); err != nil {
			return wrapFile(e, "fchmod", err)
		}
	}
	if !e.mtime.IsZero() {
		ts := [2]unix.Timespec{{Nsec: utimeOmit}, unix.NsecToTimespec(e.mtime.UnixNano())}
		if err := setTimes(o, &ts); err != nil {
			return wrapFile(e, "utimensat", err)
		}
	}
	return nil
}

// abort closes a file that failed; the restore is failing anyway.
func (o *outFile) abort() { _ = unix.Close(o.fd) }

func wrapFile(e *entry, op string, err error) error {
	var pe *os.PathError
	if !errors.As(err, &pe) {
		err = &os.PathError{Op: op, Path: e.name, Err: err}
	}
	return fmt.Errorf("restore: %s: %w", e.raw, err)
}
