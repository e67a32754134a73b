package integrity

import (
	"errors"
	"fmt"
)

// ErrMismatch is wrapped by every MismatchError.
var ErrMismatch = errors.New("checksum mismatch")

// ErrFormat is wrapped by every FormatError.
var ErrFormat = errors.New("format error")

// MismatchError says a part's bytes do not match a reference.
type MismatchError struct {
	Part string // part name
	Ref  string // reference label, e.g. "sha256:SHA256SUMS"
	Want string // expected digest, hex
	Got  string // computed digest, hex
	// Piece is the index of the first bad piece when known, else -1.
	Piece int
}

func (e *MismatchError) Error() string {
	s := fmt.Sprintf("%s: %s mismatch (want %s, got %s)", e.Part, e.Ref, short(e.Want), short(e.Got))
	if e.Piece >= 0 {
		s += fmt.Sprintf(" at piece %d", e.Piece)
	}
	return s
}

func (e *MismatchError) Unwrap() error { return ErrMismatch }

// FormatError says the archive structure is broken: a gzip CRC, a bad
// header, a truncated stream. Part and Offset locate it in the part file.
type FormatError struct {
	Format string // "gzip", "zstd", "tar", "bitrix", ...
	Part   string // part file name
	Offset int64  // byte offset inside that part
	Err    error
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%s: %v in %s at byte %d", e.Format, e.Err, e.Part, e.Offset)
}

func (e *FormatError) Unwrap() []error { return []error{ErrFormat, e.Err} }

func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}
