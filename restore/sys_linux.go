package restore

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// setTimes sets a file's times on its descriptor (utimensat with no
// name), not by a name that could have changed.
func setTimes(o *outFile, ts *[2]unix.Timespec) error {
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(o.fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
