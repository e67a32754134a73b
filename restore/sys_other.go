//go:build !unix

package restore

import (
	"os"
	"time"
)

func lchtimes(*os.Root, string, time.Time) error { return nil }

func freeSpace(string) (int64, error) { return 1<<63 - 1, nil }

func tryLock(*os.File) (bool, error) { return false, nil }

func renameDir(oldpath, newpath string) error {
	if err := os.Remove(newpath); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.Rename(oldpath, newpath)
}
