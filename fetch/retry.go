package fetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
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

// errRangeIgnored is what a source answers a read of part of an object
// when its server ignores Range and sends the whole object (HTTP 200).
var errRangeIgnored = errors.New("the server ignores Range requests")

// errUnavailable marks an answer that says the server cannot serve now:
// HTTP 5xx or 429, S3 InternalError or SlowDown.
var errUnavailable = errors.New("the server is unavailable")

// isTransient reports whether err is the link or the server failing for
// now — refused or reset connections, timeouts, 5xx answers — so that
// trying again later may work. A host name that does not resolve is not.
func isTransient(err error) bool {
	if err == nil || IsPermanent(err) {
		return false
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.IsTimeout || dns.IsTemporary
	}
	var cert *tls.CertificateVerificationError
	if errors.As(err, &cert) {
		return false // a certificate that does not verify needs a person
	}
	var op *net.OpError
	var ne net.Error
	return errors.As(err, &op) || (errors.As(err, &ne) && ne.Timeout()) ||
		errors.Is(err, errUnavailable) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// retryTransient runs f, the opening or listing of a source, until it
// succeeds or fails for good. Transient failures are tried opts.Retries
// times with backoff; then the error wraps ErrNetworkDown (exit 75: run
// again later), since a server that is down at the start of a cron run is
// no more a person's problem than one that goes down in the middle.
func retryTransient(ctx context.Context, opts *Options, f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		if !isTransient(err) || ctx.Err() != nil {
			return err
		}
		if attempt >= opts.Retries {
			return fmt.Errorf("%w: %d attempts: %v", ErrNetworkDown, attempt, err)
		}
		opts.Progress.Event(Event{Kind: EventRetry, Message: fmt.Sprintf("%v; retrying (%d/%d)", err, attempt, opts.Retries)})
		if err := sleep(ctx, opts.Backoff(attempt)); err != nil {
			return err
		}
	}
}
