package source

import (
	"errors"

	"github.com/haul-dev/haul/internal/retry"
)

// Errors a source answers with. Those a person must fix are permanent
// (retry.Permanent); ErrUnavailable is transient; ErrChanged sends the
// engine back to listing; every other network failure is returned as it
// is and retry.Classify sorts it.
var (
	// ErrChanged means the object at the source is not the version first
	// seen (ETag, or size and mtime, differ). The part restarts from zero.
	ErrChanged = errors.New("object changed at the source")
	// ErrNotFound means the source, bucket or object does not exist.
	ErrNotFound = retry.Mark(retry.Permanent, errors.New("not found"))
	// ErrAuth means credentials were refused or are missing.
	ErrAuth = retry.Mark(retry.Permanent, errors.New("access denied"))
	// ErrBadSource means the SOURCE argument cannot be understood.
	ErrBadSource = retry.Mark(retry.Permanent, errors.New("bad source"))
	// ErrUnavailable marks an answer that says the server cannot serve
	// now: HTTP 5xx or 429, S3 InternalError or SlowDown.
	ErrUnavailable = retry.Mark(retry.Transient, errors.New("the server is unavailable"))
	// ErrRangeIgnored is what a source answers a read of part of an
	// object when its server ignores Range and sends the whole object
	// (HTTP 200): the engine then fetches it in one stream.
	ErrRangeIgnored = errors.New("the server ignores Range requests")
)

// Permanent marks err as not worth retrying (404, 403, malformed
// responses that persist).
func Permanent(err error) error { return retry.Mark(retry.Permanent, err) }

// IsPermanent reports whether retrying err is pointless.
func IsPermanent(err error) bool { return retry.IsPermanent(err) }

// ProtocolError is a server answer that is well-formed HTTP but not the
// bytes asked for (wrong Content-Range, an encoded body, a wrong length).
// Retrying may help; if it keeps happening the part is broken, not the
// network down (retry.Data).
type ProtocolError struct{ Err error }

func (e *ProtocolError) Error() string { return e.Err.Error() }
func (e *ProtocolError) Unwrap() error { return e.Err }

// RetryClass implements retry.Classed.
func (e *ProtocolError) RetryClass() retry.Class { return retry.Data }

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
