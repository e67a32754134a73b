package fetch

import (
	"sync/atomic"

	"github.com/haul-dev/haul/fetch/source"
)

// PartProgress is one part as the engine starts on it.
type PartProgress struct {
	Name   string
	Size   int64
	Done   int64 // bytes already on disk and verified or committed
	Status string
}

// Event is something that happened to a part.
type Event struct {
	Kind       string // one of chunk's Event* kinds, which the journal records
	Part       string
	Message    string
	VerifiedBy []string
	Bytes      int64
	// From names a source (EventSourceBytes, a healing read), no secret.
	From string
}

// Progress receives what the engine does. Calls come from many goroutines;
// implementations must be safe for concurrent use. A nil Progress is fine.
type Progress interface {
	// Plan is called once the set is known.
	Plan(parts []PartProgress)
	// Pulled counts n bytes received over the link for part (retries
	// included), as they arrive.
	Pulled(part string, n int64)
	// Event reports a part-level event.
	Event(e Event)
}

// SourceWatcher is a Progress that shows bytes per source as the run goes.
// The engine hands it each source made of several (a SOURCE with mirrors)
// when it opens one; the watcher polls Accounts at its own pace, so the
// bytes are counted once, by the source, and no second counter exists.
type SourceWatcher interface{ WatchSources(source.Accounter) }

type nopProgress struct{}

func (nopProgress) Plan([]PartProgress)  {}
func (nopProgress) Pulled(string, int64) {}
func (nopProgress) Event(Event)          {}

// Meter counts the bytes pulled over the link: the one byte counter of a
// run. The engine adds every byte it receives (retries included) as it
// arrives; the job reads it for the journal's checkpoints, steps and run
// total while the run goes. A nil Meter counts nothing.
type Meter struct{ n atomic.Int64 }

// Add counts n more bytes.
func (m *Meter) Add(n int64) {
	if m != nil {
		m.n.Add(n)
	}
}

// Total is every byte counted so far.
func (m *Meter) Total() int64 {
	if m == nil {
		return 0
	}
	return m.n.Load()
}
