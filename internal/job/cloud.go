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

// The cloud step's name and its journal events.
const (
	StepCloud       = "cloud"
	EventCloudStart = "cloud_start"
	EventCloudEnd   = "cloud_end"
)

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
	return j.Step(StepCloud, func() error {
		j.journal.Log(chunk.Event{Event: EventCloudStart, Message: filepath.Join(root, list)})
		fo.Meter = &j.meter
		p := &cloudProgress{}
		p.ui, _ = j.o.UI.(bitrixcloud.Progress)
		t := time.Now()
		res, err := bitrixcloud.Run(ctx, bitrixcloud.Options{Root: root, Work: filepath.Join(j.o.Dest, chunk.StateDir, "cloud"),
			Hosts: hosts, Fetch: fo, Progress: p})
		err = wrapDeadline(ctx, err)
		ev := chunk.Event{Event: EventCloudEnd, Seconds: time.Since(t).Seconds(), Bytes: p.pulled.Load()}
		if res != nil {
			ev.Message = fmt.Sprintf("%d files listed: %d fetched (%s), %d already there, %d skipped (caches), %d missing",
				res.Listed, res.Fetched, units.FormatBytes(res.Bytes), res.Present, res.Skipped, res.Missing)
			if err == nil || errors.Is(err, bitrixcloud.ErrMissing) {
				j.o.Logf("cloud: %s", ev.Message)
			}
		}
		if err != nil {
			ev.Message += "; " + oneLine(err.Error())
		}
		j.journal.Log(ev)
		return err
	})
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

func (p *cloudProgress) CloudProgress(files, bytes int64) {
	for cur := p.pulled.Load(); bytes > cur && !p.pulled.CompareAndSwap(cur, bytes); cur = p.pulled.Load() {
	}
	if p.ui != nil {
		p.ui.CloudProgress(files, bytes)
	}
}
