package integrity

import (
	"errors"
	"fmt"
)

// ErrMismatch is wrapped by every MismatchError.
var ErrMismatch = errors.New("checksum mismatch")

// ErrFormat is wrapped by every FormatError.
var ErrFormat = errors.New("format error")

// ErrReferenceFile is wrapped by every SumFileError.
var ErrReferenceFile = errors.New("malformed reference file")

// Causes a FormatError wraps. Match them with errors.Is.
var (
	// ErrNotGzip: the part does not start with a gzip member header.
	ErrNotGzip = errors.New("not gzip data")
	// ErrChecksum: a gzip member's CRC32 or ISIZE does not match its data.
	ErrChecksum = errors.New("checksum error")
	// ErrCorrupt: the compressed data cannot be decoded.
	ErrCorrupt = errors.New("corrupt compressed data")
	// ErrTruncated: the data ends inside a member (or is empty).
	ErrTruncated = errors.New("truncated")
	// ErrTrailingData: bytes that are not a gzip member follow the last one.
	ErrTrailingData = errors.New("trailing data after the last gzip member")
	// ErrBitrixHeader: the volume does not start with a Bitrix header as
	// SPEC describes (empty first member with FEXTRA, BX at byte 16).
	ErrBitrixHeader = errors.New("no Bitrix volume header")
	// ErrBitrixSize: the tar bytes in the volume differ from its BX field,
	// or are not whole 512-byte blocks.
	ErrBitrixSize = errors.New("volume size does not match its BX field")
)

// Causes a SumFileError wraps for haul manifests.
var (
	// ErrManifestVersion: the manifest is of a version this haul cannot read.
	ErrManifestVersion = errors.New("unsupported haul manifest version")
	// ErrManifestTruncated: the manifest has no end line; it was cut short.
	ErrManifestTruncated = errors.New("haul manifest has no end line (cut short?)")
)

// ErrNotComparable is returned by CompareSum when the digest and the
// reference are of different algorithms, or the reference is unusable.
var ErrNotComparable = errors.New("digest and reference not comparable")

// ErrCheckerDone is returned by Checker.Write after Result or Close.
var ErrCheckerDone = errors.New("checker already finished")

// MismatchError says a part's bytes do not match a reference.
type MismatchError struct {
	Part string // part name
	Ref  string // reference label, e.g. "sha256:SHA256SUMS"; "size" for a size mismatch
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

// SumFileError says a reference file (a coreutils sum file or a haul
// manifest) cannot be read as one. Line is 1-based; 0 when the problem is
// the file as a whole (a manifest cut short, say).
type SumFileError struct {
	File string // the file's base name, as given to the parser
	Line int
	Err  error
}

func (e *SumFileError) Error() string {
	if e.Line <= 0 {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s line %d: %v", e.File, e.Line, e.Err)
}

func (e *SumFileError) Unwrap() []error { return []error{ErrReferenceFile, e.Err} }

func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}
