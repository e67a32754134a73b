package main

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cheggaaa/pb/v3"

	"github.com/haul-dev/haul/internal/units"
	"github.com/haul-dev/haul/restore/bitrixcloud"
)

// The job hands the cloud files step's progress to a UI that implements
// it.
var _ bitrixcloud.Progress = (*reporter)(nil)

// cloudProgress is what the reporter knows of the cloud files step: the
// files and bytes to download in this run, the files placed, the bytes
// pulled and the misses so far.
type cloudProgress struct {
	files, bytes          atomic.Int64
	done, pulled, missing atomic.Int64
	started               atomic.Bool
	rates                 rateWindow
}

// CloudStart implements bitrixcloud.Progress: from now on the bar and
// the log line follow the step.
func (r *reporter) CloudStart(files, bytes int64) {
	r.cloud.files.Store(files)
	r.cloud.bytes.Store(bytes)
	r.cloud.rates.add(time.Now(), 0)
	r.cloud.started.Store(true)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mode == "bars" && !r.bars && files > 0 {
		r.startBars()
	}
}

// CloudProgress implements bitrixcloud.Progress.
func (r *reporter) CloudProgress(t bitrixcloud.Tally) {
	r.cloud.done.Store(t.Files)
	r.cloud.missing.Store(t.Missing)
	for cur := r.cloud.pulled.Load(); t.Bytes > cur && !r.cloud.pulled.CompareAndSwap(cur, t.Bytes); cur = r.cloud.pulled.Load() {
	}
}

// active: the step has files to download in this run.
func (c *cloudProgress) active() bool { return c.started.Load() && c.files.Load() > 0 }

// sample feeds the rate window (the reporter's loop calls it).
func (c *cloudProgress) sample() {
	if c.active() {
		c.rates.add(time.Now(), c.pulled.Load())
	}
}

// line is the cron log line of the step: files, bytes, %, rate, ETA,
// misses. The bytes are those pulled, which a file fetched again after
// a bad answer counts twice, so they are capped at the total.
func (c *cloudProgress) line() string {
	total, pulled := c.bytes.Load(), min(c.pulled.Load(), c.bytes.Load())
	speed, eta := c.rates.speedETA(total-pulled, "no bytes in the last minute")
	return fmt.Sprintf("cloud: files %d/%d, %s / %s (%.1f%%), %s, %s, %d missing",
		c.done.Load(), c.files.Load(), units.FormatBytes(pulled), units.FormatBytes(total),
		float64(pulled)*100/float64(max(total, 1)), speed, eta, c.missing.Load())
}

// bar points the total bar at the step.
func (c *cloudProgress) bar(b *pb.ProgressBar) {
	total := c.bytes.Load()
	prefix := fmt.Sprintf("cloud files %d/%d ", c.done.Load(), c.files.Load())
	if m := c.missing.Load(); m > 0 {
		prefix = fmt.Sprintf("cloud files %d/%d (%d missing) ", c.done.Load(), c.files.Load(), m)
	}
	b.Set("prefix", prefix)
	b.SetTotal(total)
	b.SetCurrent(min(c.pulled.Load(), total))
}
