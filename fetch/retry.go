package fetch

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Backoff gives the wait before retry number attempt (1-based).
type Backoff func(attempt int) time.Duration

// ExpBackoff is capped exponential backoff with full jitter in
// [d/2, d], d = min(base·2^(attempt-1), max).
func ExpBackoff(base, max time.Duration) Backoff {
	return func(attempt int) time.Duration {
		d := base
		for i := 1; i < attempt && d < max; i++ {
			d *= 2
		}
		d = min(d, max)
		return d/2 + rand.N(d/2+1)
	}
}

// DefaultBackoff waits 1 s, 2 s, 4 s … up to 30 s between tries.
var DefaultBackoff = ExpBackoff(time.Second, 30*time.Second)

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ProtocolError is a server answer that is well-formed HTTP but not the
// bytes asked for (wrong Content-Range, an encoded body, a wrong length).
// Retrying may help; if it keeps happening the part is broken, not the
// network down.
type ProtocolError struct{ Err error }

func (e *ProtocolError) Error() string { return e.Err.Error() }
func (e *ProtocolError) Unwrap() error { return e.Err }

// errStalled is returned when a transfer moved no byte for --timeout.
var errStalled = errors.New("no data for the stall timeout")

// isDataError reports whether a failed piece points at the part's bytes
// or the server's answers (→ broken part, exit 3) rather than at the link
// (→ network down, exit 75).
func isDataError(err error) bool {
	var pe *ProtocolError
	return errors.As(err, &pe) || errors.Is(err, errPieceMismatch)
}

var errPieceMismatch = errors.New("piece does not match the manifest")
