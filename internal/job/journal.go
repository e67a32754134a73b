package job

import (
	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch"
)

// journaled is the decorator a job puts in front of the UI: every event
// of the engine and every restore warning is written to the journal, then
// passed on. The UI only shows.
type journaled struct {
	j  *chunk.Journal
	ui UI // nil: nothing is shown
}

var (
	_ fetch.Progress = journaled{}
	_ UI             = journaled{}
)

func (p journaled) Plan(parts []fetch.PartProgress) {
	if p.ui != nil {
		p.ui.Plan(parts)
	}
}

func (p journaled) Pulled(part string, n int64) {
	if p.ui != nil {
		p.ui.Pulled(part, n)
	}
}

func (p journaled) Event(e fetch.Event) {
	p.j.Log(chunk.Event{Event: e.Kind, Part: e.Part, Message: e.Message, VerifiedBy: e.VerifiedBy, Bytes: e.Bytes})
	if p.ui != nil {
		p.ui.Event(e)
	}
}

func (p journaled) RestoreStart(total int64) {
	if p.ui != nil {
		p.ui.RestoreStart(total)
	}
}

func (p journaled) RestoreBytes(n int64) {
	if p.ui != nil {
		p.ui.RestoreBytes(n)
	}
}

func (p journaled) RestoreFile(name string) {
	if p.ui != nil {
		p.ui.RestoreFile(name)
	}
}

func (p journaled) Warn(msg string) {
	p.j.Log(chunk.Event{Event: chunk.EventWarning, Message: msg})
	if p.ui != nil {
		p.ui.Warn(msg)
	}
}
