package restore

// Progress receives restore events. All calls come from the goroutine that
// called Run, Restore, Assemble or Test. A nil Progress is allowed.
type Progress interface {
	// RestoreStart is called once with the total bytes of the parts.
	RestoreStart(total int64)
	// RestoreBytes reports n more bytes read from the parts.
	RestoreBytes(n int64)
	// RestoreFile reports an entry written into the tree (files, links and
	// directories alike), by its name in the archive.
	RestoreFile(name string)
	// Warn reports something the operator should know that does not stop
	// the restore (unverified parts, cleared setuid bits, ignored options).
	Warn(msg string)
}

// progress makes a nil Progress a no-op.
type progress struct{ p Progress }

func (p progress) start(total int64) {
	if p.p != nil {
		p.p.RestoreStart(total)
	}
}

func (p progress) bytes(n int64) {
	if p.p != nil && n > 0 {
		p.p.RestoreBytes(n)
	}
}

func (p progress) file(name string) {
	if p.p != nil {
		p.p.RestoreFile(name)
	}
}

func (p progress) warn(msg string) {
	if p.p != nil {
		p.p.Warn(msg)
	}
}
