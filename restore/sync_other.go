//go:build !linux

package restore

import "os"

// syncFS flushes what can be flushed where syncfs(2) does not exist.
func syncFS(f *os.File) error {
	return f.Sync()
}
