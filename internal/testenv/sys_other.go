//go:build !linux

package testenv

import "syscall"

// dieWithParent has no portable equivalent outside Linux; servers are still
// stopped by t.Cleanup and Main.
func dieWithParent(*syscall.SysProcAttr) {}

// lockFile is a no-op outside Linux. MinIOBinary installs through a staging
// directory and a rename, so concurrent builds waste time but never leave a
// partial binary.
func lockFile(string) (func(), error) { return func() {}, nil }
