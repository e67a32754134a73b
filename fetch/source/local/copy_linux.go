package local

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// copyFileRange is the system call, a variable for the tests that make
// the kernel refuse.
var copyFileRange = unix.CopyFileRange

// copyRange copies up to n bytes of src at srcOff into dst at dstOff with
// copy_file_range, which moves them between the two files' pages in the
// kernel (or shares the blocks, where the file system can). Errors that
// say the kernel cannot copy between these files become
// errors.ErrUnsupported.
func copyRange(src *os.File, srcOff int64, dst *os.File, dstOff int64, n int) (int, error) {
	for {
		k, err := copyFileRange(int(src.Fd()), &srcOff, int(dst.Fd()), &dstOff, n, 0)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EXDEV || err == syscall.EINVAL || err == syscall.ENOSYS || err == syscall.EOPNOTSUPP || err == syscall.EPERM:
			return 0, errors.ErrUnsupported
		case err != nil:
			return 0, err
		}
		return k, nil
	}
}
