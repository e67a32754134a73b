package destdir

import (
	"errors"
	"fmt"
	"strings"

	"github.com/haul-dev/haul/integrity"
)

var (
	// ErrDest means DEST cannot be used (not writable, no space, holding
	// another set).
	ErrDest = errors.New("DEST unusable")
	// ErrNoVerdict is what a SetCheck returns when it cannot test-decode
	// the set (a format it does not know, an encrypted stream): the parts
	// stay unverified rather than proven.
	ErrNoVerdict = errors.New("the set cannot be test-decoded")
	// ErrStopped is what Verify returns when its context ended before a
	// verdict: nothing was saved (package fetch reports it as
	// fetch.ErrInterrupted).
	ErrStopped = errors.New("verify stopped before a verdict")
)

// SuspectError is a SetCheck failure whose cause is in one of several
// parts: a checksum that covers them all (a gzip member's CRC over a stream
// split at arbitrary bytes) failed. Err is the *integrity.FormatError.
type SuspectError struct {
	Parts []string // in set order
	Err   error
}

func (e *SuspectError) Error() string { return e.Err.Error() }
func (e *SuspectError) Unwrap() error { return e.Err }

// Suspects are the parts a failed set decode (err, whose
// *integrity.FormatError is fe) may have its cause in.
func Suspects(err error, fe *integrity.FormatError) []string {
	var se *SuspectError
	if errors.As(err, &se) && len(se.Parts) > 0 {
		return se.Parts
	}
	return []string{fe.Part}
}

// OtherSetError says DEST holds another set than the one asked for
// (exit 1). It matches ErrDest.
type OtherSetError struct {
	Dest     string
	Old, New []string // the sources, redacted
}

func (e *OtherSetError) Error() string {
	return fmt.Sprintf("DEST %s holds another set (from %s), not the one from %s: use another DEST, or give --replace to discard the old set",
		e.Dest, strings.Join(e.Old, " "), strings.Join(e.New, " "))
}

func (e *OtherSetError) Unwrap() error { return ErrDest }
