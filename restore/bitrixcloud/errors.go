package bitrixcloud

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrFormat means a line of the list is not `DATE TIME SIZE PATH`:
	// restore.php stops there too. Nothing is downloaded (exit 1).
	ErrFormat = errors.New("not a line of a Bitrix cloud file list")
	// ErrUnsafe means a path in the list would leave upload/ (absolute,
	// `..`), or a file's place under upload/ is a link or not a plain
	// file or directory: nothing is written there (exit 1).
	ErrUnsafe = errors.New("unsafe path")
	// ErrMissing means files stay missing after every host and retry:
	// they are listed in MissingError.Log (exit 3).
	ErrMissing = errors.New("files of the Bitrix cloud list are missing")
)

// FormatError is a line of the list that cannot be read.
type FormatError struct {
	List string
	Line int
	Text string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%s line %d: %q is not `YYYY-MM-DD HH:MM:SS SIZE PATH` (fix or remove the line, or run with --no-cloud)", e.List, e.Line, clip(e.Text))
}

func (e *FormatError) Unwrap() error { return ErrFormat }

// UnsafeError names the paths of the list haul refused to write, and why.
type UnsafeError struct {
	List  string
	Paths []string // "line N: PATH: why", at most maxNamed
	Count int
}

func (e *UnsafeError) Error() string {
	more := ""
	if e.Count > len(e.Paths) {
		more = fmt.Sprintf(" and %d more", e.Count-len(e.Paths))
	}
	return fmt.Sprintf("%s: %d unsafe paths refused, nothing written for them (%s%s); check who made the list", e.List, e.Count, strings.Join(e.Paths, "; "), more)
}

func (e *UnsafeError) Unwrap() error { return ErrUnsafe }

// MissingError says how many listed files are not in upload/ after the
// run, and where they are listed.
type MissingError struct {
	Count int
	Log   string // DIR/bitrix/restore_cloud_404.php
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("%d files of the Bitrix cloud list are missing at every CDN host (listed in %s); run again to retry them, give another host with --bitrix-cdn, or skip them with --no-cloud", e.Count, e.Log)
}

func (e *MissingError) Unwrap() error { return ErrMissing }

// maxNamed bounds the paths an error names.
const maxNamed = 5

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
