package bitrixdb

// Progress receives the events of a database restore. Calls come from the
// goroutine that called Run. A nil Progress is allowed.
type Progress interface {
	// ImportStart is called once per run before the first statement, with
	// the dump's total size and the offset the import continues from.
	ImportStart(total, done int64)
	// ImportProgress reports the bytes of the dump done (statements
	// committed, counted from the dump's start) and the statements run.
	ImportProgress(done, statements int64)
	// Warn reports something the operator should know that does not stop
	// the restore (a settings fix skipped, full-text indexes dropped).
	Warn(msg string)
}

type progress struct{ p Progress }

func (p progress) start(total, done int64) {
	if p.p != nil {
		p.p.ImportStart(total, done)
	}
}

func (p progress) advance(done, n int64) {
	if p.p != nil {
		p.p.ImportProgress(done, n)
	}
}

func (p progress) warn(msg string) {
	if p.p != nil {
		p.p.Warn(msg)
	}
}
