//go:build unix

package chunk

import (
	"os"
	"syscall"
)

// devIno returns the device and inode of a file.
func devIno(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		// Dev is an int32 on some systems.
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}
