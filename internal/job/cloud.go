package job

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch"
	"github.com/haul-dev/haul/internal/units"
	"github.com/haul-dev/haul/restore/bitrixcloud"
)

// cloudWork is the cloud step's work directory in DEST.
func cloudWork(dest string) string { return filepath.Join(dest, chunk.StateDir, "cloud") }

// Cloud is the Bitrix cloud-files step: after the files are in place,
// the files the site's bitrix/restore_cloud.txt (or .php) lists are
// downloaded into upload/ through the engine (restore/bitrixcloud), with
// fo's transfer settings. Its work directory is DEST/.haul/cloud. A site
// without a list has no such step. A UI that implements
// bitrixcloud.Progress gets its progress.
func (j *Job) Cloud(ctx context.Context, root string, hosts []string, fo fetch.Options) error {
	list := bitrixcloud.Find(root)
	if list == "" {
		return nil
	}
	return j.Step(chunk.StepCloud, func() error {
		j.journal.Log(chunk.Event{Event: chunk.EventCloudStart, Step: chunk.StepCloud, Message: filepath.Join(root, list)})
		fo.Meter = &j.meter
		p := &cloudProgress{}
		p.ui, _ = j.o.UI.(bitrixcloud.Progress)
		t := time.Now()
		res, err := bitrixcloud.Run(ctx, bitrixcloud.Options{Root: root, Work: cloudWork(j.o.Dest), Hosts: hosts, Fetch: fo, Progress: p})
		err = wrapDeadline(ctx, err)
		ev := chunk.Event{Event: chunk.EventCloudEnd, Step: chunk.StepCloud, Seconds: time.Since(t).Seconds(), Bytes: p.pulled.Load()}
		if res != nil && res.Listed > 0 {
			ev.Files = &chunk.FileCounts{Listed: res.Listed, Fetched: res.Fetched, Present: res.Present, Skipped: res.Skipped, Missing: res.Missing}
			if err == nil || errors.Is(err, bitrixcloud.ErrMissing) {
				j.o.Logf("cloud: %s", cloudSummary(res, ev))
			}
		}
		if err != nil {
			ev.Message = oneLine(err.Error())
		}
		j.journal.Log(ev)
		return err
	})
}

// cloudSummary is the step's last line: the counts, what was pulled and
// how fast.
func cloudSummary(res *bitrixcloud.Result, ev chunk.Event) string {
	s := fmt.Sprintf("%d files listed: %d fetched (%s), %d already there, %d skipped (caches), %d missing; pulled %s in %s",
		res.Listed, res.Fetched, units.FormatBytes(res.Bytes), res.Present, res.Skipped, res.Missing,
		units.FormatBytes(ev.Bytes), units.FormatDuration(time.Duration(ev.Seconds*float64(time.Second))))
	if ev.Seconds > 0 && ev.Bytes > 0 {
		s += fmt.Sprintf(" (%s)", units.FormatRate(float64(ev.Bytes)/ev.Seconds))
	}
	return s
}

// cloudExitCode maps the cloud step's errors: files missing at every
// host are exit 3 (like broken parts: run again, or another host), an
// unsafe or unreadable list exit 1.
func cloudExitCode(err error) (int, bool) {
	switch {
	case errors.Is(err, bitrixcloud.ErrMissing):
		return 3, true
	case errors.Is(err, bitrixcloud.ErrUnsafe), errors.Is(err, bitrixcloud.ErrFormat):
		return 1, true
	}
	return 0, false
}

// cloudProgress passes the step's progress on and keeps the bytes
// pulled for cloud_end.
type cloudProgress struct {
	ui     bitrixcloud.Progress
	pulled atomic.Int64
}

func (p *cloudProgress) CloudStart(files, bytes int64) {
	if p.ui != nil {
		p.ui.CloudStart(files, bytes)
	}
}

func (p *cloudProgress) CloudProgress(t bitrixcloud.Tally) {
	for cur := p.pulled.Load(); t.Bytes > cur && !p.pulled.CompareAndSwap(cur, t.Bytes); cur = p.pulled.Load() {
	}
	if p.ui != nil {
		p.ui.CloudProgress(t)
	}
}

// CloudStatus is the cloud files step for `haul status`: what the step's
// last run in DEST recorded, with the ETA at that run's rate; nil when
// no cloud files were fetched into dest.
func CloudStatus(dest string) *chunk.CloudStatus {
	st, err := bitrixcloud.ReadStatus(cloudWork(dest))
	if err != nil || st == nil {
		return nil
	}
	c := &chunk.CloudStatus{State: chunk.CloudFetching, List: st.List, Files: st.Files, FilesDone: st.FilesDone,
		Bytes: st.Bytes, BytesDone: st.BytesDone, Skipped: st.Skipped, Missing: st.Missing, Refused: st.Refused,
		MissLog: st.MissLog, Updated: st.Updated}
	switch {
	case st.Finished && st.Missing+st.Refused > 0:
		c.State = chunk.CloudMissing
	case st.Finished:
		c.State = chunk.CloudDone
	}
	if st.Seconds > 0 && st.Pulled > 0 {
		c.Rate = float64(st.Pulled) / st.Seconds
	}
	if c.State == chunk.CloudFetching {
		c.ETASeconds = etaAt(c.Bytes-c.BytesDone, c.Rate)
	}
	return c
}
