//go:build unix

package gen

import (
	"io/fs"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// lutimes sets the mtime (and atime) of a symlink itself.
func lutimes(p string, t time.Time) error {
	tv := unix.NsecToTimeval(t.UnixNano())
	return unix.Lutimes(p, []unix.Timeval{tv, tv})
}

// owner returns the uid and gid of a file.
func owner(fi fs.FileInfo) (uid, gid int64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int64(st.Uid), int64(st.Gid)
	}
	return 0, 0
}

// inode returns the device and inode of a file, to find hard links.
func inode(fi fs.FileInfo) (dev, ino uint64, nlink uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), st.Ino, uint64(st.Nlink)
	}
	return 0, 0, 1
}
