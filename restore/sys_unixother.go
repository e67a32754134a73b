//go:build unix && !linux

package restore

import "golang.org/x/sys/unix"

// setTimes sets a file's times through its directory's handle, without
// following a link (futimens is not in x/sys for every system).
func setTimes(o *outFile, ts *[2]unix.Timespec) error {
	return unix.UtimesNanoAt(o.dir.fd, o.base, ts[:], unix.AT_SYMLINK_NOFOLLOW)
}
