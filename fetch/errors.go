package fetch

import "errors"

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
	return errors.As(err, &p) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrAuth) || errors.Is(err, ErrBadSource)
}
