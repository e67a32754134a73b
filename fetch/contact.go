package fetch

import (
	"context"
	"errors"
	"fmt"

	"github.com/haul-dev/haul/fetch/contact"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/source/open"
	"github.com/haul-dev/haul/internal/retry"
)

// contactFor loads the record of opts' sources (package contact) once per
// run; nil when there is nothing to record: no DEST, a local source, or
// sources that do not parse (opening them says why).
func (o *Options) contactFor() *contact.Contact {
	if o.contact != nil || o.Dest == "" {
		return o.contact
	}
	t, err := open.TargetOf(o.Sources, o.Open)
	if err != nil || t.ID == "" {
		return nil
	}
	o.contact = contact.Load(o.Dest, t)
	return o.contact
}

// openSources opens the SOURCE arguments, trying again while the link or
// the server is down: --retries times for a source reached before, once
// more at most for one never reached that cannot be reached at all (the
// contact rule: exit 1, not 75).
func openSources(ctx context.Context, opts *Options) (*source.Opened, error) {
	if opts.Source != nil {
		return &source.Opened{Source: opts.Source}, nil
	}
	c := opts.contactFor()
	worth := func(err error, attempt int) bool {
		if c == nil {
			return retry.Classify(err) == retry.Transient
		}
		return c.Worth(err, attempt)
	}
	p := opts.policy("", worth, func(err error, attempt int) string {
		limit := opts.Retries
		if c.First() && retry.ReachOf(err) != retry.Reached {
			limit = contact.FirstTries
		}
		return fmt.Sprintf("%v; retrying (%d/%d)", err, attempt, limit)
	})
	var op *source.Opened
	err := retry.Do(ctx, p, func(int) error {
		var err error
		op, err = open.OpenSources(ctx, opts.Sources, opts.Open)
		return err
	})
	if err == nil {
		op.Source = opts.withMirrors(ctx, op)
		return op, c.Opened()
	}
	if ex := (*retry.ExhaustedError)(nil); errors.As(err, &ex) {
		return nil, fmt.Errorf("%w: %d attempts: %v", ErrNetworkDown, ex.Attempts, ex.Err)
	}
	if ctx.Err() != nil || c == nil {
		return nil, err
	}
	return nil, c.OpenFailed(err)
}

// contactEnd records how the run ended (after settle: ErrNetworkDown is
// known) and gives up when the source has failed for longer than
// opts.GiveUpAfter.
func (o *Options) contactEnd(sum *Summary, err error) error {
	var pulled int64
	if sum != nil {
		pulled = sum.Pulled
	}
	return o.contact.End(err, errors.Is(err, ErrNetworkDown), pulled, o.GiveUpAfter)
}
