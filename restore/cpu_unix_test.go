//go:build unix

package restore

import (
	"syscall"
	"time"
)

// cpuTime is the user and system time, in seconds, of this process
// (self) or of its waited-for children (tar and the gzip it starts).
func cpuTime(self bool) float64 {
	who := syscall.RUSAGE_CHILDREN
	if self {
		who = syscall.RUSAGE_SELF
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
