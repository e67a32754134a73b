package fetch

import (
	"context"
	"errors"
	"fmt"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/destdir"
)

// Verify re-reads and proves every complete part on disk, and decodes the
// set with opts.SetCheck when parts stay unproven: destdir.Verify, whose
// stop is ErrInterrupted. Only opts.Dest, SetCheck and SetCheckLabel count.
func Verify(ctx context.Context, opts Options) (_ *destdir.Report, err error) {
	defer func() { err = settle(err) }()
	rep, err := destdir.Verify(ctx, opts.Dest, opts.SetCheck, opts.SetCheckLabel)
	if errors.Is(err, destdir.ErrStopped) {
		return nil, interrupted(ctx)
	}
	return rep, err
}

// LoadChecked is destdir.LoadChecked (for `haul status`, which holds no
// lock), its errors settled as every entry point's.
func LoadChecked(ctx context.Context, dest string) (*chunk.State, []chunk.Change, error) {
	st, changes, err := destdir.LoadChecked(ctx, dest)
	return st, changes, settle(err)
}

// CheckDest is destdir.Check without a fetch's view (keep); the caller
// holds DEST's lock.
func CheckDest(ctx context.Context, dest string) ([]chunk.Change, error) {
	changes, err := destdir.Check(ctx, dest, false)
	return changes, settle(err)
}

// recheckDest is CheckDest for an engine's run, with its events.
func (e *engine) recheckDest(ctx context.Context, keep bool) error {
	changes, err := destdir.Check(ctx, e.opts.Dest, keep)
	err = settle(err)
	for _, c := range changes {
		kind, msg := chunk.EventPartBroken, fmt.Sprintf("part %s: %s", c.Part, c.Why)
		if c.Status == chunk.Missing {
			kind = chunk.EventPartMissing
		}
		if c.Status == chunk.Partial {
			msg += "; fetching the pieces that differ again"
		}
		e.opts.Progress.Event(Event{Kind: kind, Part: c.Part, Message: msg})
	}
	return err
}
