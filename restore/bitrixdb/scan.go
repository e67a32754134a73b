package bitrixdb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Lexical states of the statement scanner.
const (
	stCode         = iota // SQL text
	stSingle              // inside '...'
	stDouble              // inside "..."
	stBacktick            // inside `...`
	stLineComment         // after "-- " or "#", to the end of the line
	stBlockComment        // inside /* ... */
)

// headKeep is how much of an oversized statement is kept for the message.
const headKeep = 256

// statement is one statement of the dump.
type statement struct {
	// text runs from its first byte that is not blank or a comment to
	// before the ';' that ends it. It is valid until the next call of next.
	text []byte
	// start is the offset in the joined dump where the statement's bytes
	// (leading comments included) begin; end the offset after its
	// terminating newline, where the next one begins.
	start, end int64
	// size is the length of text; when tooLarge, text holds only the first
	// bytes and size the whole length.
	size     int64
	tooLarge bool
}

// scanner splits the joined dump into statements the way restore.php
// does, with a real lexer: a statement ends where a line ends in ';' that
// stands outside quotes, backticks and comments. Inside quotes a backslash
// escapes the next byte (mysqli_real_escape_string's \0 \n \r \\ \' \" \Z),
// and a doubled quote (”) is two adjacent strings to the lexer, which
// comes to the same. So ';', "),(" and escaped newlines in values are
// data, never ends. Only the statement being read is held in memory; a
// statement longer than limit is counted, not kept.
type scanner struct {
	r     *bufio.Reader
	off   int64 // offset of the next byte r returns
	buf   []byte
	limit int // 0: no limit
}

func newScanner(r io.Reader, off int64, limit int) *scanner {
	return newScannerSize(r, off, limit, 1<<20)
}

// newScannerSize reads through a buffer of size bytes: lines longer than
// it arrive in pieces (tests use a tiny one to cut tokens everywhere).
func newScannerSize(r io.Reader, off int64, limit, size int) *scanner {
	return &scanner{r: bufio.NewReaderSize(r, size), off: off, limit: limit}
}

// errTruncated is wrapped with the offset when the dump ends inside a
// statement.
var errTruncated = errors.New("the dump ends inside a statement")

// next returns the next statement, or io.EOF when only blanks and
// comments are left.
func (s *scanner) next() (statement, error) {
	if cap(s.buf) > 64<<20 {
		s.buf = nil // do not keep a huge buffer for the rest of the import
	}
	s.buf = s.buf[:0]
	st := statement{start: s.off}
	lx := lexer{state: stCode, first: -1, semi: -1}
	var dropped int64
	for {
		line, err := s.r.ReadSlice('\n')
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			return statement{}, err
		}
		s.buf = append(s.buf, line...)
		s.off += int64(len(line))
		done := err == nil || err == io.EOF
		lx.run(s.buf, done)
		if done {
			e := len(s.buf)
			if e > 0 && s.buf[e-1] == '\n' {
				e--
				if e > 0 && s.buf[e-1] == '\r' {
					e--
				}
			}
			if lx.semi >= 0 && lx.semi == e-1 && lx.first >= 0 {
				st.end = s.off
				text := bytes.TrimRight(s.buf[lx.first:lx.semi], " \t\r\n")
				st.size = int64(len(text)) + dropped
				st.tooLarge = dropped > 0 || (s.limit > 0 && len(text) > s.limit)
				if st.tooLarge && len(text) > headKeep {
					text = text[:headKeep]
				}
				st.text = text
				return st, nil
			}
			if err == io.EOF {
				if lx.first < 0 {
					return statement{}, io.EOF
				}
				return statement{}, fmt.Errorf("%w (it starts at byte %d and has no ';' at the end of a line)", errTruncated, st.start)
			}
		}
		// An oversized statement is only counted: drop what has been
		// scanned beyond its head, keeping the lexer's place.
		if s.limit > 0 && lx.first >= 0 && len(s.buf)-lx.first > s.limit {
			keep := lx.first + headKeep
			if lx.i > keep+(1<<20) {
				n := lx.i - keep
				copy(s.buf[keep:], s.buf[lx.i:])
				s.buf = s.buf[:len(s.buf)-n]
				dropped += int64(n)
				lx.i = keep
				lx.semi = -1
			}
		}
	}
}

// lexer is the scanner's state over its buffer.
type lexer struct {
	state int
	i     int // next byte to look at
	first int // first byte of the statement proper, -1 before it
	semi  int // the last ';' seen in code, -1 if none
}

// run advances over b. Until the line is complete (done) it stops two
// bytes short of the end, so that "--" and "/*" can look ahead.
func (lx *lexer) run(b []byte, done bool) {
	n := len(b)
	stop := n
	if !done {
		stop = n - 2
	}
	i := lx.i
	for i < stop {
		c := b[i]
		switch lx.state {
		case stCode:
			switch c {
			case ' ', '\t', '\r', '\n':
			case '\'':
				lx.state = stSingle
			case '"':
				lx.state = stDouble
			case '`':
				lx.state = stBacktick
			case '#':
				lx.state = stLineComment
				i++
				continue
			case '-':
				if i+1 < n && b[i+1] == '-' && (i+2 >= n || b[i+2] == ' ' || b[i+2] == '\t' || b[i+2] == '\n' || b[i+2] == '\r') {
					lx.state = stLineComment
					i += 2
					continue
				}
			case '/':
				// "/*!" is a versioned comment the server runs: code.
				if i+1 < n && b[i+1] == '*' && (i+2 >= n || b[i+2] != '!') {
					lx.state = stBlockComment
					i += 2
					continue
				}
			case ';':
				lx.semi = i
			}
			if lx.first < 0 && c != ' ' && c != '\t' && c != '\r' && c != '\n' {
				lx.first = i
			}
			i++
		case stSingle, stDouble:
			q := byte('\'')
			if lx.state == stDouble {
				q = '"'
			}
			// The fast path: run to the next quote or backslash.
			j := i
			for j < stop && b[j] != q && b[j] != '\\' {
				j++
			}
			i = j
			if i >= stop {
				break
			}
			if b[i] == '\\' {
				if i+1 >= n {
					// The escaped byte is not here yet (only at EOF).
					i++
					break
				}
				i += 2
				continue
			}
			lx.state = stCode
			i++
		case stBacktick:
			if c == '`' {
				lx.state = stCode
			}
			i++
		case stLineComment:
			if c == '\n' {
				lx.state = stCode
			}
			i++
		case stBlockComment:
			if c == '*' && i+1 < n && b[i+1] == '/' {
				lx.state = stCode
				i += 2
				continue
			}
			i++
		}
	}
	lx.i = i
}
