//go:build !unix

package bitrixcloud

import (
	"errors"
	"os"
)

// renameAt is not available here: the caller copies.
func renameAt(*os.Root, string, *os.Root, string) error { return errors.ErrUnsupported }
