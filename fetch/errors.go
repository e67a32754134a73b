package fetch

import (
	"errors"

	"github.com/haul-dev/haul/internal/retry"
)

var (
	// ErrChanged means the object at the source is not the version first
	// seen (ETag, or size and mtime, differ). The part restarts from zero.
	ErrChanged = errors.New("object changed at the source")
	// ErrNotFound means the source, bucket or object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAuth means credentials were refused or are missing.
	ErrAuth = errors.New("access denied")
	// ErrBadSource means the SOURCE argument cannot be understood.
	ErrBadSource = errors.New("bad source")
)

// PermanentError wraps an error that retrying will not cure (404, 403,
// malformed responses that persist). Retry logic stops at once on it.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as not worth retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether retrying err is pointless.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p) || retry.IsPermanent(err) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrAuth) || errors.Is(err, ErrBadSource)
}

// Also returns err, which errors.Is finds to be target too: a source
// maps a lower layer's sentinel to its own. The message is err's.
func Also(err, target error) error {
	if err == nil {
		return nil
	}
	return &also{err: err, target: target}
}

type also struct{ err, target error }

func (a *also) Error() string   { return a.err.Error() }
func (a *also) Unwrap() []error { return []error{a.err, a.target} }

var (
	// ErrIncomplete means parts stay broken or missing after retries.
	ErrIncomplete = errors.New("broken or missing parts remain")
	// ErrInterrupted means the run stopped early (signal, deadline) with
	// its state saved; running again continues.
	ErrInterrupted = errors.New("interrupted")
	// ErrNetworkDown means transfers kept failing at the network level
	// after every retry; running again later continues.
	ErrNetworkDown = errors.New("the network stays down after retries; state saved, run again later")
	// ErrDest means DEST cannot be used (not writable, no space).
	ErrDest = errors.New("DEST unusable")
	// errRelist sends Fetch back to listing after a part changed.
	errRelist = errors.New("a part changed at the source")
)
