//go:build !linux

package local

import (
	"errors"
	"os"
)

// copyRange has no kernel copy to use here: reads go through memory.
func copyRange(*os.File, int64, *os.File, int64, int) (int, error) {
	return 0, errors.ErrUnsupported
}
