//go:build unix && !darwin

package restore

import "golang.org/x/sys/unix"

// utimeOmit leaves a time unchanged in utimensat.
const utimeOmit = unix.UTIME_OMIT
