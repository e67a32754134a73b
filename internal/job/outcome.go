package job

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch"
	"github.com/haul-dev/haul/fetch/contact"
	"github.com/haul-dev/haul/fetch/destdir"
	"github.com/haul-dev/haul/integrity"
	"github.com/haul-dev/haul/restore"
)

// ExitCode maps the error a job ends with to the SPEC's exit codes, with
// errors.Is and errors.As alone: the engine says "network down" itself
// (fetch.ErrNetworkDown) when internal/retry's classifier calls an error
// the link failing. The journal records it; the CLI exits with it (usage
// errors, which never reach a job, are the CLI's own 2).
func ExitCode(err error) int {
	if code, ok := dbExitCode(err); ok {
		return code
	}
	if code, ok := cloudExitCode(err); ok {
		return code
	}
	var unsafe *restore.UnsafeError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &unsafe), errors.Is(err, restore.ErrPassword), errors.Is(err, restore.ErrNoSpace),
		// Before the 75s: a source never reached, or down for longer than
		// --give-up-after, needs a person although its cause is the network.
		errors.Is(err, contact.ErrUnreachable), errors.Is(err, contact.ErrGaveUp),
		// An unreadable state: the set's SOURCE must be given again to a
		// fetch or run, which rebuild it (chunk.Recover).
		errors.Is(err, chunk.ErrCorruptState):
		return 1
	case errors.Is(err, fetch.ErrInterrupted), errors.Is(err, fetch.ErrNetworkDown), errors.Is(err, chunk.ErrLocked), errors.Is(err, restore.ErrBusy),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return 75
	case errors.Is(err, fetch.ErrIncomplete), errors.Is(err, restore.ErrNotReady),
		errors.Is(err, integrity.ErrMismatch), errors.Is(err, integrity.ErrFormat):
		return 3
	}
	return 1
}

// SetCheck decodes a set split at arbitrary bytes as the structural check
// no single part can carry (fetch.Options.SetCheck): a format restore
// cannot decode gives destdir.ErrNoVerdict, and a failed checksum that spans
// several parts a *destdir.SuspectError naming them. A library caller of
// fetch.Fetch passes it to get the same set-level check the CLI gets.
func SetCheck(ctx context.Context, paths, names []string) error {
	parts := make([]restore.Part, len(paths))
	for i := range paths {
		fi, err := os.Stat(paths[i])
		if err != nil {
			return err
		}
		parts[i] = restore.Part{Name: names[i], Path: paths[i], Size: fi.Size()}
	}
	err := restore.Test(ctx, parts, "")
	var fe *integrity.FormatError
	if err != nil && !errors.As(err, &fe) {
		return fmt.Errorf("%w: %v", destdir.ErrNoVerdict, err) // not a format we can decode: no verdict
	}
	var span *restore.SpanError
	if errors.As(err, &span) && len(span.Parts) > 1 {
		return &destdir.SuspectError{Parts: span.Parts, Err: err}
	}
	return err
}
