//go:build !unix

package gen

import (
	"io/fs"
	"time"
)

// lutimes is a no-op where symlink times cannot be set.
func lutimes(string, time.Time) error { return nil }

// owner is unknown here.
func owner(fs.FileInfo) (uid, gid int64) { return 0, 0 }

// inode is unknown here: no hard links are detected.
func inode(fs.FileInfo) (dev, ino uint64, nlink uint64) { return 0, 0, 1 }
