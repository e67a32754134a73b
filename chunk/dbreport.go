package chunk

import (
	"fmt"
	"strings"
	"time"

	"github.com/haul-dev/haul/internal/units"
)

// Database restore states in `haul status` (DBStatus.State).
const (
	DBImporting = "importing" // statements are still to run
	DBImported  = "imported"  // the dump is in; the site's files are not rewritten yet
	DBDone      = "done"      // imported, site rewritten, cleaned up: a rerun does nothing
)

// DBStatus is the database step in `haul status` (the "db" object of
// --json). The caller fills it from the import's resume state.
type DBStatus struct {
	State      string `json:"state"`
	Target     string `json:"target"` // the database URL, never a password
	Dump       string `json:"dump"`
	BytesTotal int64  `json:"bytes_total"`
	BytesDone  int64  `json:"bytes_done"`
	Statements int64  `json:"statements"`
	Duplicates int64  `json:"duplicates"`
	// Rate is the import's average over every run (bytes of the dump per
	// second); ETASeconds is what is left at that rate (null: unknown).
	Rate       float64   `json:"rate_bytes_per_second"`
	ETASeconds *float64  `json:"eta_seconds"`
	Updated    time.Time `json:"updated"`
}

// AddDB puts the database step into the status: a set whose parts are
// all done is still incomplete while its database import is not.
func (r *StatusReport) AddDB(d DBStatus) {
	if d.State != DBDone && r.State == SetDone {
		r.State = SetIncomplete
	}
	r.DB = &d
}

// dbLine is the status line of the database step.
func (d *DBStatus) line() string {
	pct := 100.0
	if d.BytesTotal > 0 {
		pct = float64(d.BytesDone) * 100 / float64(d.BytesTotal)
	}
	s := fmt.Sprintf("database: %s %s (dump %s) — %s of %s (%.1f%%), %d statements", d.State, d.Target, d.Dump,
		units.FormatBytes(d.BytesDone), units.FormatBytes(d.BytesTotal), pct, d.Statements)
	if d.Rate > 0 {
		s += ", " + units.FormatRate(d.Rate)
	}
	if d.ETASeconds != nil && d.State != DBDone {
		s += ", ETA " + units.FormatDuration(dur(*d.ETASeconds))
	}
	return s
}

// DBReport is the database step of one run in `haul report` (the "db"
// object of a run in --json).
type DBReport struct {
	Target string `json:"target"` // the database URL, never a password
	Dump   string `json:"dump,omitempty"`
	// ResumedFrom is the dump offset the run continued from (0: the start).
	ResumedFrom int64 `json:"resumed_from"`
	// Bytes and Statements are what this run imported.
	Bytes               int64   `json:"bytes"`
	Statements          int64   `json:"statements"`
	Seconds             float64 `json:"seconds"`
	BytesPerSecond      float64 `json:"bytes_per_second"`
	StatementsPerSecond float64 `json:"statements_per_second"`
	// Skipped: the database restore was already done; nothing was run.
	Skipped bool `json:"skipped"`
	// Interrupted: no db_end (killed during the import).
	Interrupted bool   `json:"interrupted"`
	Message     string `json:"message,omitempty"`
}

// buildDB sums up a run's database events; nil when it has none.
func buildDB(evs []Event) *DBReport {
	var d *DBReport
	var start time.Time
	for _, e := range evs {
		switch e.Event {
		case EventDBSkipped:
			d = &DBReport{Target: e.From, Skipped: true, Message: e.Message}
		case EventDBStart:
			d = &DBReport{Target: e.From, Dump: e.Message, ResumedFrom: e.Bytes, Interrupted: true}
			start = e.Time
		case EventDBEnd:
			if d == nil {
				d = &DBReport{Target: e.From}
			}
			d.Interrupted = false
			d.Bytes, d.Statements, d.Seconds, d.Message = e.Bytes, e.Statements, e.Seconds, e.Message
		default:
			if d != nil && d.Interrupted && !start.IsZero() {
				d.Seconds = e.Time.Sub(start).Seconds()
			}
		}
	}
	if d != nil && d.Seconds > 0 {
		d.BytesPerSecond = float64(d.Bytes) / d.Seconds
		d.StatementsPerSecond = float64(d.Statements) / d.Seconds
	}
	return d
}

// text is the report's timeline entry for the database step (a skip is
// listed as its db_skipped event).
func (d *DBReport) text() string {
	s := fmt.Sprintf("db       %s  %s, %d statements", units.FormatDuration(dur(d.Seconds)), units.FormatBytes(d.Bytes), d.Statements)
	if d.Seconds > 0 {
		s += fmt.Sprintf(" at %s (%.0f statements/s)", units.FormatRate(d.BytesPerSecond), d.StatementsPerSecond)
	}
	if d.ResumedFrom > 0 {
		s += fmt.Sprintf(", resumed at byte %d", d.ResumedFrom)
	}
	s += " into " + d.Target
	switch {
	case d.Interrupted:
		s += "  (interrupted)"
	case d.Message != "":
		s += ": " + strings.TrimSpace(d.Message)
	}
	return s
}
