package restore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/haul-dev/haul/chunk"
)

// Sentinels callers test with errors.Is; the CLI maps them to exit codes.
var (
	// ErrNotReady: some parts are broken, missing or not fully fetched
	// (exit 3). Wrapped by *PartsError.
	ErrNotReady = errors.New("parts not ready")
	// ErrUnsafe: the archive holds an entry that would write outside the
	// target or through a link (exit 1). Wrapped by *UnsafeError.
	ErrUnsafe = errors.New("unsafe archive entry")
	// ErrPassword: the archive is encrypted and the password is wrong or
	// missing (exit 1). Nothing has been written when it is returned.
	ErrPassword = errors.New("wrong or missing password")
	// ErrNoSpace: the target's file system has less free space than the
	// archive needs (exit 1). Wrapped by *NoSpaceError.
	ErrNoSpace = errors.New("not enough free space")
	// ErrNotEmpty: the --into directory exists and is not empty (exit 1).
	ErrNotEmpty = errors.New("target directory is not empty")
	// ErrBusy: another restore is writing the same target right now
	// (exit 75: try again later).
	ErrBusy = errors.New("another restore is running")
	// ErrUnsupported: the set is not an archive haul can unpack (exit 1).
	ErrUnsupported = errors.New("unsupported archive")
)

// PartsError says the set cannot be restored yet because of these parts.
type PartsError struct {
	Dest   string   // the workdir, for the message
	Parts  []string // part names, in set order
	Status []string // Status[i] is the status of Parts[i] (chunk.Broken, chunk.Missing, ...)
}

func (e *PartsError) Error() string {
	var b strings.Builder
	named := make([]string, min(len(e.Parts), maxNamed+1))
	for i := range named {
		named[i] = fmt.Sprintf("%s (%s)", e.Parts[i], e.Status[i])
	}
	fmt.Fprintf(&b, "restore: %d part(s) not ready: %s", len(e.Parts), firstFew(named, len(e.Parts)))
	repair, fetch := false, false
	for _, s := range e.Status {
		switch s {
		case chunk.Broken, chunk.Missing:
			repair = true
		default:
			fetch = true
		}
	}
	dest := e.Dest
	if dest == "" {
		dest = "DEST"
	}
	switch {
	case repair && fetch:
		fmt.Fprintf(&b, "; run: haul repair %s, then let the fetch finish (haul fetch/run again)", dest)
	case repair:
		fmt.Fprintf(&b, "; run: haul repair %s", dest)
	default:
		b.WriteString("; the fetch has not finished: run haul fetch (or haul run) again")
	}
	return b.String()
}

func (e *PartsError) Unwrap() error { return ErrNotReady }

// maxNamed is how many parts a message names one by one.
const maxNamed = 8

// firstFew joins the first maxNamed of names, of total in all, and counts
// the rest: a set of 100,000 parts still makes a line one can read.
func firstFew(names []string, total int) string {
	if total <= maxNamed {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, and %d more", strings.Join(names[:maxNamed], ", "), total-maxNamed)
}

// UnsafeError names an archive entry that restore refused.
type UnsafeError struct {
	Name   string // the entry's name as stored in the archive
	Reason string // e.g. "absolute path", "link target leaves the tree"
}

func (e *UnsafeError) Error() string {
	return fmt.Sprintf("restore: unsafe entry %q: %s; nothing was put in place", e.Name, e.Reason)
}

func (e *UnsafeError) Unwrap() error { return ErrUnsafe }

// NoSpaceError says how much the archive needs and how much is free.
type NoSpaceError struct {
	Dir        string // the file system checked (the parent of --into)
	Need, Free int64
	// Entry, when set, is the entry that would not fit, found from its
	// header before any of it was written.
	Entry string
}

func (e *NoSpaceError) Error() string {
	if e.Entry != "" {
		return fmt.Sprintf("restore: %s has %s free, the entry %s needs %s; free some space or restore elsewhere",
			e.Dir, size(e.Free), e.Entry, size(e.Need))
	}
	return fmt.Sprintf("restore: %s has %s free, the archive needs at least %s; free some space or restore elsewhere",
		e.Dir, size(e.Free), size(e.Need))
}

func (e *NoSpaceError) Unwrap() error { return ErrNoSpace }

// size formats a byte count for messages.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// SpanError is the Err of an *integrity.FormatError when the check that
// failed covers more than the spot where it was found: a gzip member's
// CRC, a zstd frame's or xz block's checksum, a zip entry's CRC. The
// damage is in one of Parts; the FormatError names the first of them
// when there is only one.
type SpanError struct {
	Err   error    // what failed, e.g. "checksum error"
	Parts []string // the parts the failed check covers, in order
}

func (e *SpanError) Error() string {
	switch n := len(e.Parts); {
	case n <= 1:
		return e.Err.Error()
	case n == 2:
		return fmt.Sprintf("%v (it covers %s and %s: the damage is in one of them)", e.Err, e.Parts[0], e.Parts[1])
	default:
		return fmt.Sprintf("%v (it covers the %d parts %s to %s: the damage is in one of them)", e.Err, n, e.Parts[0], e.Parts[n-1])
	}
}

func (e *SpanError) Unwrap() error { return e.Err }
