//go:build !unix

package safefs

import "io/fs"

// nonblock is 0: Windows has no FIFOs to wait on.
const nonblock = 0

// checksMode: Windows has no unix modes; ACLs guard the directory.
const checksMode = false

// links is 1: the FileInfo of Windows does not carry the link count.
func links(fs.FileInfo) uint64 { return 1 }

// ownedByMe is true: Windows owners are SIDs, not in FileInfo.
func ownedByMe(fs.FileInfo) bool { return true }
