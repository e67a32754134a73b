package restore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/haul-dev/haul/internal/atomicfile"
)

// stagingMark is between DIR's name and the set's hash in a staging
// directory's name: DIR.haul-staging-<hash>.
const stagingMark = ".haul-staging-"

// checkTarget resolves --into and checks that it is absent or an empty
// directory. A symlink to a directory stands for that directory.
func checkTarget(into string) (string, error) {
	abs, err := filepath.Abs(into)
	if err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	fi, err := os.Lstat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			return "", fmt.Errorf("restore: %w", err)
		}
		return abs, nil
	}
	if err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if abs, err = filepath.EvalSymlinks(abs); err != nil {
			return "", fmt.Errorf("restore: %w", err)
		}
		if fi, err = os.Stat(abs); err != nil {
			return "", fmt.Errorf("restore: %w", err)
		}
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("restore: %s exists and is not a directory; give --into a new or empty directory", abs)
	}
	f, err := os.Open(abs)
	if err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); err != io.EOF {
		if err != nil {
			return "", fmt.Errorf("restore: %w", err)
		}
		return "", fmt.Errorf("restore: %s: %w; restore into a new or empty directory, or move it away first", abs, ErrNotEmpty)
	}
	return abs, nil
}

// setID names a set and its target, for the staging directory's name.
func setID(into string, parts []Part) string {
	h := sha256.New()
	io.WriteString(h, into)
	for _, p := range parts {
		io.WriteString(h, "\x00"+p.Name+"\x00"+strconv.FormatInt(p.Size, 10))
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// staging is the directory beside DIR where the tree is built. It is
// locked (flock) while in use, so a second restore of the same DIR sees
// it is busy, and a killed restore's staging is known to be stale.
type staging struct {
	path string
	lock *os.File
	root *os.Root
}

// newStaging removes stale staging directories of into (left by a killed
// run: their lock is free) and makes a fresh one.
func newStaging(into, id string) (*staging, error) {
	parent, base := filepath.Dir(into), filepath.Base(into)
	ents, err := os.ReadDir(parent)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), base+stagingMark) || !e.IsDir() {
			continue
		}
		p := filepath.Join(parent, e.Name())
		if err := removeStale(p, into); err != nil {
			return nil, err
		}
	}
	p := filepath.Join(parent, base+stagingMark+id)
	if fi, err := os.Lstat(p); err == nil && !fi.IsDir() {
		// The name is haul's: a link or file planted there goes (the link
		// itself, never what it points to).
		if err := os.Remove(p); err != nil {
			return nil, fmt.Errorf("restore: staging: %w", err)
		}
	}
	if err := os.Mkdir(p, 0o700); err != nil {
		return nil, fmt.Errorf("restore: staging: %w", err)
	}
	s := &staging{path: p}
	made, err := os.Lstat(p)
	if err == nil && (!made.IsDir() || made.Mode()&fs.ModeSymlink != 0) {
		err = fmt.Errorf("%s was replaced by a link or file as it was made; check who writes beside %s", p, into)
	}
	if err != nil {
		return nil, fmt.Errorf("restore: staging: %w", err)
	}
	if s.lock, err = openSame(p, made); err != nil {
		return nil, fmt.Errorf("restore: staging: %w", err)
	}
	busy, err := tryLock(s.lock)
	if err != nil || busy {
		s.lock.Close()
		if busy {
			return nil, fmt.Errorf("restore: %s: %w (it is building %s); wait for it to finish", into, ErrBusy, p)
		}
		return nil, fmt.Errorf("restore: staging lock: %w", err)
	}
	if s.root, err = os.OpenRoot(p); err == nil {
		// The tree goes into the directory made above, not one swapped in.
		if fi, serr := s.root.Stat("."); serr != nil || !os.SameFile(made, fi) {
			err = errors.Join(serr, fmt.Errorf("%s was replaced as it was opened", p))
		}
	}
	if err != nil {
		s.discard()
		return nil, fmt.Errorf("restore: staging: %w", err)
	}
	return s, nil
}

// openSame opens the directory at p if it is still the one fi describes.
func openSame(p string, fi fs.FileInfo) (*os.File, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	if now, err := f.Stat(); err != nil || !os.SameFile(fi, now) {
		f.Close()
		return nil, errors.Join(err, fmt.Errorf("%s was replaced as it was opened", p))
	}
	return f, nil
}

func removeStale(p, into string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	busy, err := tryLock(f)
	if err != nil {
		return fmt.Errorf("restore: staging lock: %w", err)
	}
	if busy {
		return fmt.Errorf("restore: %s: %w (it is building %s); wait for it to finish", into, ErrBusy, p)
	}
	return removeTree(p)
}

// removeTree removes a directory tree, making read-only directories in it
// writable first (an archive may well have some).
func removeTree(p string) error {
	if err := os.RemoveAll(p); err == nil {
		return nil
	}
	// Inside a root: a directory swapped for a link meanwhile cannot send
	// the chmod to a file elsewhere.
	if r, err := os.OpenRoot(p); err == nil {
		_ = fs.WalkDir(r.FS(), ".", func(q string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = r.Chmod(q, 0o700)
			}
			return nil
		})
		_ = r.Close()
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("restore: remove %s: %w", p, err)
	}
	return nil
}

// commit moves the finished tree into place: everything is flushed to
// disk first, then one rename makes it appear at into all at once.
func (s *staging) commit(into string) error {
	if err := s.root.Close(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := syncFS(s.lock); err != nil {
		return fmt.Errorf("restore: sync: %w", err)
	}
	if err := renameDir(s.path, into); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("restore: %s: %w (something was written there during the restore); move it away and run again", into, ErrNotEmpty)
		}
		return fmt.Errorf("restore: move into place: %w", err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(into)); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return s.lock.Close()
}

// discard removes the staging directory after a failed restore: nothing
// of it is ever used again (a rerun starts over).
func (s *staging) discard() {
	if s.root != nil {
		_ = s.root.Close()
	}
	_ = removeTree(s.path)
	_ = s.lock.Close()
}
