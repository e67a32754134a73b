package job

import (
	"sync"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch"
	"github.com/haul-dev/haul/fetch/source"
)

// journaled is the decorator a job puts in front of the UI: every event
// of the engine and every restore warning is written to the journal, then
// passed on. The UI only shows.
type journaled struct {
	j *chunk.Journal
	UI

	// pulled is what this run moved for each part: a part that ends
	// verified with pulled > 0 was fetched by this run, which the report
	// counts from part_fetched.
	mu     sync.Mutex
	pulled map[string]int64
}

var (
	_ UI                  = (*journaled)(nil)
	_ fetch.SourceWatcher = (*journaled)(nil)
)

func newJournaled(j *chunk.Journal, ui UI) *journaled {
	return &journaled{j: j, UI: ui, pulled: map[string]int64{}}
}

func (p *journaled) Pulled(part string, n int64) {
	p.mu.Lock()
	p.pulled[part] += n
	p.mu.Unlock()
	p.UI.Pulled(part, n)
}

func (p *journaled) Event(e fetch.Event) {
	if e.Kind == chunk.EventPartVerified || e.Kind == chunk.EventPartUnverified {
		p.mu.Lock()
		n := p.pulled[e.Part]
		delete(p.pulled, e.Part) // a part fetched again later counts again
		p.mu.Unlock()
		if n > 0 {
			p.j.Log(chunk.Event{Event: chunk.EventPartFetched, Part: e.Part, Bytes: n})
		}
	}
	p.j.Log(chunk.Event{Event: e.Kind, Part: e.Part, Message: e.Message, VerifiedBy: e.VerifiedBy, Bytes: e.Bytes, From: e.From})
	p.UI.Event(e)
}

func (p *journaled) Warn(msg string) {
	p.j.Log(chunk.Event{Event: chunk.EventWarning, Message: msg})
	p.UI.Warn(msg)
}

// quiet is the UI of a job that shows nothing.
type quiet struct{}

func (quiet) Plan([]fetch.PartProgress) {}
func (quiet) Pulled(string, int64)      {}
func (quiet) Event(fetch.Event)         {}
func (quiet) RestoreStart(int64)        {}
func (quiet) RestoreBytes(int64)        {}
func (quiet) RestoreFile(string)        {}
func (quiet) Warn(string)               {}

// WatchSources passes the sources of a run with mirrors on to a UI that
// shows bytes per source (fetch.SourceWatcher).
func (p *journaled) WatchSources(a source.Accounter) {
	if w, ok := p.UI.(fetch.SourceWatcher); ok {
		w.WatchSources(a)
	}
}
