package fetch

import (
	"errors"

	"github.com/haul-dev/haul/fetch/destdir"
)

// Run-level errors: what a Fetch, Verify or Repair ends with. The errors
// of a source are in fetch/source; what is retried is decided by
// internal/retry.
var (
	// ErrIncomplete means parts stay broken or missing after retries.
	ErrIncomplete = errors.New("broken or missing parts remain")
	// ErrInterrupted means the run stopped early (signal, deadline) with
	// its state saved; running again continues.
	ErrInterrupted = errors.New("interrupted")
	// ErrNetworkDown means transfers kept failing at the network level
	// after every retry; running again later continues.
	ErrNetworkDown = errors.New("the network stays down after retries; state saved, run again later")
	// ErrDest means DEST cannot be used (not writable, no space, holding
	// another set: *destdir.OtherSetError).
	ErrDest = destdir.ErrDest
	// errRelist sends Fetch back to listing after a part changed.
	errRelist = errors.New("a part changed at the source")
)
