package main

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cheggaaa/pb/v3"

	"github.com/haul-dev/haul/internal/units"
	"github.com/haul-dev/haul/restore/bitrixdb"
)

// The job hands the import's progress to a UI that implements it.
var _ bitrixdb.Progress = (*reporter)(nil)

// dbProgress is what the reporter knows of a database import: the dump's
// size, the bytes of it committed and the statements run.
type dbProgress struct {
	total, done, statements atomic.Int64
	rates                   rateWindow
}

// ImportStart implements bitrixdb.Progress: from now on the bar and the
// log line follow the import.
func (r *reporter) ImportStart(total, done int64) {
	r.db.total.Store(total)
	r.db.done.Store(done)
	r.db.rates.add(time.Now(), done)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mode == "bars" && !r.bars {
		r.startBars()
	}
}

// ImportProgress implements bitrixdb.Progress.
func (r *reporter) ImportProgress(done, statements int64) {
	r.db.done.Store(done)
	r.db.statements.Store(statements)
}

func (d *dbProgress) active() bool { return d.total.Load() > 0 }

// sample feeds the rate window (the reporter's loop calls it).
func (d *dbProgress) sample() {
	if d.active() {
		d.rates.add(time.Now(), d.done.Load())
	}
}

// line is the cron log line of the import: bytes, %, rate, ETA,
// statements.
func (d *dbProgress) line() string {
	total, done := d.total.Load(), d.done.Load()
	speed, eta := d.rates.speedETA(total-done, "no statement done in the last minute")
	return fmt.Sprintf("db: %s / %s (%.1f%%), %s, %s, %d statements",
		units.FormatBytes(done), units.FormatBytes(total), float64(done)*100/float64(max(total, 1)), speed, eta, d.statements.Load())
}

// bar points the total bar at the import.
func (d *dbProgress) bar(b *pb.ProgressBar) {
	total := d.total.Load()
	b.Set("prefix", fmt.Sprintf("database (%d statements) ", d.statements.Load()))
	b.SetTotal(total)
	b.SetCurrent(min(d.done.Load(), total))
}

// speedETA says the window's rate and the time left bytes take at it:
// "measuring" until the window spans a second, idle when nothing moved.
func (w *rateWindow) speedETA(left int64, idle string) (speed, eta string) {
	rate, ok := w.rate()
	switch {
	case ok && rate > 0:
		return units.FormatRate(rate), "ETA " + units.FormatDuration(time.Duration(float64(left)/rate*float64(time.Second)))
	case ok:
		return idle, "ETA unknown"
	}
	return "measuring the rate", "ETA soon known"
}
