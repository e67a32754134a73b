//go:build linux

package restore

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"golang.org/x/sys/unix"
)

// applyDirs sets the metadata of the named directories (in preorder) in
// one walk over the tree holding a single directory open:
// down one name at a time (O_NOFOLLOW, so never through a link), up
// through "..". A directory is set as the walk leaves it, after
// everything below it, so one without write or search permission for us
// is set last. Each directory is entered and left once: linear time at any
// depth, where setting each by its path from the top would be quadratic.
func (x *extractor) applyDirs(names []string, metas map[string]*dirMeta) error {
	f, err := x.root.Open(".")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fd, err := unix.Dup(int(f.Fd()))
	_ = f.Close()
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	w := &dirWalk{x: x, fd: fd, at: ".", metas: metas}
	defer func() { _ = unix.Close(w.fd) }()
	for _, n := range names {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		for w.at != "." && !strings.HasPrefix(n, w.at+"/") {
			if err := w.up(); err != nil {
				return err
			}
		}
		rest := n
		if w.at != "." {
			rest = n[len(w.at)+1:]
		}
		for rest != "" {
			var c string
			c, rest, _ = strings.Cut(rest, "/")
			gone, err := w.down(c)
			if err != nil {
				return err
			}
			if gone {
				break
			}
		}
	}
	for w.at != "." {
		if err := w.up(); err != nil {
			return err
		}
	}
	return nil
}

// dirWalk is applyDirs' position: one open directory and its name.
type dirWalk struct {
	x     *extractor
	fd    int
	at    string
	metas map[string]*dirMeta
}

const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// down enters c. gone is true when an incremental restore removed it (or
// put something else there) after its metadata was noted.
func (w *dirWalk) down(c string) (gone bool, err error) {
	fd, err := unix.Openat(w.fd, c, dirFlags, 0)
	if err != nil {
		if w.x.incremental && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP)) {
			return true, nil
		}
		return false, fmt.Errorf("restore: %s: %w", joinName(w.at, c), err)
	}
	_ = unix.Close(w.fd)
	w.fd, w.at = fd, joinName(w.at, c)
	return false, nil
}

// up leaves the current directory for its parent, setting its metadata:
// owner and mode on the open directory, then the mtime through the
// parent, without following a link.
func (w *dirWalk) up() error {
	name := w.at
	parent, base := split(name)
	pfd, err := unix.Openat(w.fd, "..", dirFlags, 0)
	if err != nil {
		return fmt.Errorf("restore: %s/..: %w", name, err)
	}
	m := w.metas[name]
	if m != nil {
		err = w.set(m)
	}
	_ = unix.Close(w.fd)
	w.fd, w.at = pfd, parent
	if err != nil {
		return fmt.Errorf("restore: %s: %w", name, err)
	}
	if m != nil && !m.mtime.IsZero() {
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(m.mtime.UnixNano())}
		if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("restore: %s: %w", name, err)
		}
	}
	return nil
}

func (w *dirWalk) set(m *dirMeta) error {
	if m.owner {
		if err := unix.Fchown(w.fd, m.uid, m.gid); err != nil {
			return err
		}
	}
	mode := uint32(m.mode.Perm())
	if m.mode&fs.ModeSticky != 0 {
		mode |= unix.S_ISVTX
	}
	return unix.Fchmod(w.fd, mode)
}
