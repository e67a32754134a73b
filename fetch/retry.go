package fetch

import (
	"context"
	"errors"
	"fmt"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/integrity"
	"github.com/haul-dev/haul/internal/retry"
)

// errPieceMismatch is a piece whose digest differs from its manifest's:
// the bytes are bad (retry.Data), not the link.
var errPieceMismatch = retry.Mark(retry.Data, errors.New("does not match the manifest"))

// policy is the run's retry policy for one operation: opts.Retries
// attempts with opts.Backoff, each retry reported as an chunk.EventRetry
// (part may be ""); ok says which failures are worth another try.
func (o *Options) policy(part string, ok func(err error, attempt int) bool, say func(err error, attempt int) string) retry.Policy {
	return retry.Policy{
		Attempts: o.Retries,
		Backoff:  o.Backoff,
		Retry:    ok,
		OnRetry: func(err error, attempt int) {
			o.Progress.Event(Event{Kind: chunk.EventRetry, Part: part, Message: say(err, attempt)})
		},
	}
}

// retryTransient runs f, the opening or listing of a source, until it
// succeeds or fails for good. Transient failures are tried opts.Retries
// times with backoff; then the error wraps ErrNetworkDown (exit 75: run
// again later), since a server that is down at the start of a cron run is
// no more a person's problem than one that goes down in the middle.
func retryTransient(ctx context.Context, opts *Options, f func() error) error {
	transient := func(err error, _ int) bool { return retry.Classify(err) == retry.Transient }
	err := retry.Do(ctx, opts.policy("", transient, func(err error, attempt int) string {
		return fmt.Sprintf("%v; retrying (%d/%d)", err, attempt, opts.Retries)
	}), func(int) error { return f() })
	if ex := (*retry.ExhaustedError)(nil); errors.As(err, &ex) {
		return fmt.Errorf("%w: %d attempts: %v", ErrNetworkDown, ex.Attempts, ex.Err)
	}
	return err
}

// settle is what every exported entry point returns: err, and when it is
// the link or a server failing (retry.IsNetwork) that escaped the retries
// (a dial in `haul manifest`), it also matches ErrNetworkDown, with its
// message unchanged, so the CLI maps it to exit 75 with errors.Is alone.
// Errors that say what is wrong with the data keep their meaning.
func settle(err error) error {
	if err == nil || errors.Is(err, ErrNetworkDown) || errors.Is(err, ErrInterrupted) || errors.Is(err, ErrIncomplete) ||
		errors.Is(err, integrity.ErrMismatch) || errors.Is(err, integrity.ErrFormat) || !retry.IsNetwork(err) {
		return err
	}
	return source.Also(err, ErrNetworkDown)
}
