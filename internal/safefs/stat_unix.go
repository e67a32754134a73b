//go:build unix

package safefs

import (
	"io/fs"
	"os"
	"syscall"
)

// nonblock opens a FIFO swapped in after the check without waiting for
// a writer (the check after the open then refuses it).
const nonblock = syscall.O_NONBLOCK

// checksMode: unix modes say who may enter a directory.
const checksMode = true

// links is fi's hard link count.
func links(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

// ownedByMe reports whether this process's user owns fi.
func ownedByMe(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || int(st.Uid) == os.Geteuid()
}
