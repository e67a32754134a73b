//go:build unix

package bitrixcloud

import (
	"os"

	"golang.org/x/sys/unix"
)

// renameAt renames src in from to dst in to by their directory handles,
// so no path is resolved again; a link at dst is replaced itself. Across
// file systems it fails (EXDEV) and the caller copies.
func renameAt(from *os.Root, src string, to *os.Root, dst string) error {
	fd, err := from.Open(".")
	if err != nil {
		return err
	}
	defer fd.Close()
	td, err := to.Open(".")
	if err != nil {
		return err
	}
	defer td.Close()
	err = unix.Renameat(int(fd.Fd()), src, int(td.Fd()), dst)
	if err != nil {
		return &os.LinkError{Op: "renameat", Old: src, New: dst, Err: err}
	}
	return nil
}
