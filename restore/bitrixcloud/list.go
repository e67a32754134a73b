package bitrixcloud

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Entry is one line of a cloud file list.
type Entry struct {
	Line int    // 1-based line number in the list
	Date string // "YYYY-MM-DD HH:MM:SS", as listed
	Size int64  // the listed size: the proof of a downloaded file
	// Path is the object's path at the CDN hosts ("BUCKET/iblock/…"):
	// the URL is HOST/Path.
	Path string
	// Save is where the file goes under upload/: Path without its first
	// element, as restore.php computes it.
	Save string
}

// maxLine bounds a line of the list; a longer one is a format error.
const maxLine = 64 << 10

// lineReader reads a list line by line, as restore.php does: a line that
// starts with `<?php` (the guard of restore_cloud.php) and a blank line
// are passed over; every other line must parse.
type lineReader struct {
	name string
	r    *bufio.Reader
	n    int
}

func newLineReader(name string, r io.Reader) *lineReader {
	return &lineReader{name: name, r: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next entry, or io.EOF.
func (lr *lineReader) next() (Entry, error) {
	for {
		line, err := lr.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			lr.n++
			return Entry{}, &FormatError{List: lr.name, Line: lr.n, Text: string(line) + "…"}
		}
		if err != nil && (err != io.EOF || len(line) == 0) {
			if err == io.EOF {
				return Entry{}, io.EOF
			}
			return Entry{}, fmt.Errorf("read %s: %w", lr.name, err)
		}
		lr.n++
		if bytes.HasPrefix(line, []byte("<?php")) {
			continue
		}
		s := strings.Trim(string(line), " \t\n\r\x00\x0b") // PHP's trim()
		if s == "" {
			continue
		}
		e, ok := parseLine(s)
		if !ok {
			return Entry{}, &FormatError{List: lr.name, Line: lr.n, Text: s}
		}
		e.Line = lr.n
		return e, nil
	}
}

// parseLine reads `YYYY-MM-DD HH:MM:SS<blanks>SIZE<blanks>PATH`
// (restore.php's `#^(\d{4}-\d{2}-\d{2} [\d:]{8})[ \t]+(\d+)[ \t]+(.+)$#`).
func parseLine(s string) (Entry, bool) {
	if len(s) < 19 || !dateTime(s[:19]) {
		return Entry{}, false
	}
	rest := s[19:]
	rest, ok := cutBlanks(rest)
	if !ok {
		return Entry{}, false
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	size, err := strconv.ParseInt(rest[:i], 10, 64)
	if i == 0 || err != nil {
		return Entry{}, false
	}
	p, ok := cutBlanks(rest[i:])
	if !ok || p == "" {
		return Entry{}, false
	}
	save := p
	// `#^[^/]+/#`: the first element (the bucket) and its slash.
	if j := strings.IndexByte(p, '/'); j > 0 {
		save = p[j+1:]
	}
	return Entry{Date: s[:19], Size: size, Path: p, Save: save}, true
}

// dateTime matches `\d{4}-\d{2}-\d{2} [\d:]{8}`.
func dateTime(s string) bool {
	for i := 0; i < 19; i++ {
		c := s[i]
		switch {
		case i == 4 || i == 7:
			if c != '-' {
				return false
			}
		case i == 10:
			if c != ' ' {
				return false
			}
		case i > 10:
			if (c < '0' || c > '9') && c != ':' {
				return false
			}
		default:
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

// cutBlanks removes the one or more spaces or tabs s must start with.
func cutBlanks(s string) (string, bool) {
	t := strings.TrimLeft(s, " \t")
	return t, len(t) < len(s)
}

// skipped reports whether restore.php passes over a file it lists:
// `#^[^/]*(cache/|tmp/|test.txt)#` on the path under upload/ (caches,
// temporary files, the cloud's test file).
func skipped(save string) bool {
	first := strings.IndexByte(save, '/')
	if first >= 0 {
		head := save[:first]
		if strings.HasSuffix(head, "cache") || strings.HasSuffix(head, "tmp") {
			return true
		}
	} else {
		first = len(save)
	}
	// `[^/]*test.txt`: "test", any one byte, "txt", starting in the first
	// element.
	for i := 0; i <= first && i+8 <= len(save); i++ {
		if save[i:i+4] == "test" && save[i+5:i+8] == "txt" {
			return true
		}
	}
	return false
}

// unsafePath says why save must not be written under upload/, or "".
// The path is hostile input: only relative names of plain elements are
// taken.
func unsafePath(save string) string {
	switch {
	case strings.HasPrefix(save, "/"):
		return "an absolute path"
	case strings.ContainsAny(save, "\\\x00"):
		return "a backslash or NUL in the name"
	case strings.HasSuffix(save, "/"):
		return "names a directory, not a file"
	}
	for _, el := range strings.Split(save, "/") {
		switch el {
		case "..":
			return "a `..` element"
		case ".", "":
			return "an empty or `.` element"
		}
	}
	return ""
}
