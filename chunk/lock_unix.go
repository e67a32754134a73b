//go:build unix

package chunk

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// tryLockFile takes an exclusive flock(2) on f without waiting; busy is
// true when another process holds it.
func tryLockFile(f *os.File) (busy bool, err error) {
	err = flock(f, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return true, nil
	}
	return false, err
}

func unlockFile(f *os.File) error { return flock(f, unix.LOCK_UN) }

// flock calls flock(2), retrying when a signal interrupts it.
func flock(f *os.File, how int) error {
	for try := 0; ; try++ {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR || try == 100 {
			return err
		}
	}
}
