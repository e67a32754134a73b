//go:build unix

package restore

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// lchtimes sets the mtime of a symlink itself (os.Root follows links).
func lchtimes(d *os.Root, name string, mtime time.Time) error {
	f, err := d.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	ts := []unix.Timespec{{Nsec: utimeOmit}, unix.NsecToTimespec(mtime.UnixNano())}
	return unix.UtimesNanoAt(int(f.Fd()), name, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// freeSpace returns the bytes an unprivileged user may still write on the
// file system holding dir.
func freeSpace(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// tryLock takes an exclusive, non-blocking flock on f. busy is true when
// another process holds it. The lock goes away with the process, so a
// killed restore never leaves a stale one.
func tryLock(f *os.File) (busy bool, err error) {
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return true, nil
	}
	return false, err
}

// renameDir renames a directory, replacing an empty directory at newpath
// in the same step (os.Rename refuses an existing directory).
func renameDir(oldpath, newpath string) error {
	if err := unix.Rename(oldpath, newpath); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}
