// Package retry decides "try again or give up" for the whole program, in
// one place: Classify sorts an error into one of four classes, and Do runs
// an operation under a Policy (attempts, capped jittered backoff, which
// errors are worth another try). Every retry loop in haul calls Do; the
// transfer engine, the sources and the SSH dialler ask Classify, and the
// CLI's exit codes follow from the errors the engine returns (errors.Is).
package retry

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

	"github.com/pkg/sftp"
)

// Class is what an error means for trying again.
type Class int

const (
	// Unknown is none of the others: a local failure, a certificate that
	// does not verify, a host name that does not resolve.
	Unknown Class = iota
	// Permanent errors stay whatever is retried: not found, access
	// denied, a bad argument (Mark(Permanent, …)).
	Permanent
	// Data errors are in the bytes or the server's answers, not in the
	// link: a wrong Content-Range, a piece that does not match its
	// manifest. Retrying may help; when it keeps failing the part is
	// broken (exit 3), not the network down.
	Data
	// Transient errors are the link or the server failing for now:
	// refused or reset connections, timeouts, HTTP 5xx or 429, a body cut
	// short. Trying again later may work.
	Transient
	// Connection errors say a connection that was open broke (EOF, a
	// closed socket, SFTP's connection lost): the next try dials again.
	Connection
)

var classNames = [...]string{"unknown", "permanent", "data", "transient", "connection"}

func (c Class) String() string {
	if c >= 0 && int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// Classed is an error that states its own class (a source's protocol
// error says Data); Classify asks the outermost one in the chain.
type Classed interface {
	error
	RetryClass() Class
}

// marked is an error with a class set by its maker.
type marked struct {
	class Class
	err   error
}

func (m *marked) Error() string     { return m.err.Error() }
func (m *marked) Unwrap() error     { return m.err }
func (m *marked) RetryClass() Class { return m.class }

// Mark returns err classified as c whatever it wraps (nil stays nil). A
// sentinel made with Mark keeps its class through every %w that wraps it.
func Mark(c Class, err error) error {
	if err == nil {
		return nil
	}
	return &marked{class: c, err: err}
}

// Classify sorts err. The first Classed error found (outermost first,
// marks included) wins; else
// the kind of network failure decides. A cancelled context is Unknown:
// callers check their context themselves.
func Classify(err error) Class {
	var c Classed
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return Unknown
	case errors.As(err, &c):
		return c.RetryClass()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		if dns.IsTimeout || dns.IsTemporary {
			return Transient
		}
		return Unknown // a name that does not resolve needs a person
	}
	var cert *tls.CertificateVerificationError
	if errors.As(err, &cert) {
		return Unknown
	}
	var op *net.OpError
	var ne net.Error
	switch {
	case errors.As(err, &op), errors.As(err, &ne) && ne.Timeout(),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return Transient
	case errors.Is(err, sftp.ErrSSHFxConnectionLost), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.EPIPE), errors.As(err, &ne):
		return Connection
	}
	return Unknown
}

// IsPermanent reports whether retrying err is pointless.
func IsPermanent(err error) bool { return Classify(err) == Permanent }

// IsNetwork reports whether err is the link or the server failing (a
// transient or a broken connection), so that running again later may work.
func IsNetwork(err error) bool {
	c := Classify(err)
	return c == Transient || c == Connection
}

// Backoff gives the wait before try number attempt+1 (attempt is 1-based).
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

// FastBackoff is the backoff of tests and the demo, whose faults are
// their own: milliseconds.
var FastBackoff = ExpBackoff(5*time.Millisecond, 50*time.Millisecond)

// Policy says how often and when to try again.
type Policy struct {
	// Attempts is the most tries in all; below 1 means 1.
	Attempts int
	// Backoff is the wait between tries; nil means DefaultBackoff.
	Backoff Backoff
	// Retry reports whether the failure of try attempt is worth another
	// try; nil means IsNetwork.
	Retry func(err error, attempt int) bool
	// OnRetry, if not nil, is told of each failure that will be tried
	// again, before the wait (the engine's retry events).
	OnRetry func(err error, attempt int)
}

// ExhaustedError is the last failure of an operation that was tried
// Attempts times and failed each time with an error worth retrying.
type ExhaustedError struct {
	Attempts int
	Err      error
}

func (e *ExhaustedError) Error() string { return fmt.Sprintf("%d attempts: %v", e.Attempts, e.Err) }
func (e *ExhaustedError) Unwrap() error { return e.Err }

// Do runs op (with the try's number, from 1) until it succeeds, fails
// with an error p.Retry refuses (returned as it is), or has been tried
// p.Attempts times (an *ExhaustedError). Waits end with ctx, whose error
// is then returned; ctx is checked before the first try as well.
func Do(ctx context.Context, p Policy, op func(attempt int) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	retry, backoff := p.Retry, p.Backoff
	if retry == nil {
		retry = func(err error, _ int) bool { return IsNetwork(err) }
	}
	if backoff == nil {
		backoff = DefaultBackoff
	}
	for attempt := 1; ; attempt++ {
		err := op(attempt)
		if err == nil || ctx.Err() != nil || !retry(err, attempt) {
			return err
		}
		if attempt >= max(1, p.Attempts) {
			return &ExhaustedError{Attempts: attempt, Err: err}
		}
		if p.OnRetry != nil {
			p.OnRetry(err, attempt)
		}
		t := time.NewTimer(backoff(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}
