package job

import (
	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch"
)

// journaled is the decorator a job puts in front of the UI: every event
// of the engine and every restore warning is written to the journal, then
// passed on. The UI only shows.
type journaled struct {
	j *chunk.Journal
	UI
}

var _ UI = journaled{}

func (p journaled) Event(e fetch.Event) {
	p.j.Log(chunk.Event{Event: e.Kind, Part: e.Part, Message: e.Message, VerifiedBy: e.VerifiedBy, Bytes: e.Bytes})
	p.UI.Event(e)
}

func (p journaled) Warn(msg string) {
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
