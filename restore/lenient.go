package restore

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// lenientTar sits between the decoded stream and archive/tar and repairs,
// in place, the PAX records GNU tar accepts with a warning but
// archive/tar refuses: a malformed time (mtime, atime, ctime: GNU tar
// warns and keeps the ustar value) and a path, linkpath, uname or gname
// holding a NUL (GNU tar reads it as a C string, cut at the NUL).
//
// It follows the block structure archive/tar follows (a header, then its
// data rounded up to 512 bytes; none for the header-only types; a PAX
// "size" record sets the next entry's data size; old GNU sparse headers
// may be followed by extension blocks) and only ever rewrites the data of
// a PAX header whose header block has a valid checksum. A rewritten record
// keeps its length (a malformed time becomes a "comment" record, the
// ignored keyword of POSIX; a cut value gets leading zeros in its length
// field), so every offset of the stream stays what it was and errors
// still point at the right byte. Anything it does not understand passes
// through untouched, and archive/tar reports it as before.
type lenientTar struct {
	r io.Reader

	buf  []byte // header (and PAX data) read ahead, served before r
	off  int    // next byte of buf to serve
	left int64  // bytes of entry data still to pass through before the next header
	ext  bool   // the next block is an old GNU sparse extension block
	size int64  // a PAX size record for the next entry, or -1
	off1 bool   // structure lost: pass everything through

	notes []string // repairs made since the last take
}

const maxPAX = 1 << 20 // archive/tar refuses larger PAX headers anyway

func newLenientTar(r io.Reader) *lenientTar {
	return &lenientTar{r: r, size: -1}
}

// take returns the repairs made so far, for a warning naming the entry
// they belong to, and forgets them.
func (l *lenientTar) take() []string {
	n := l.notes
	l.notes = nil
	return n
}

func (l *lenientTar) Read(p []byte) (int, error) {
	if l.off < len(l.buf) {
		n := copy(p, l.buf[l.off:])
		l.off += n
		return n, nil
	}
	if l.off1 {
		return l.r.Read(p)
	}
	if l.left > 0 {
		if int64(len(p)) > l.left {
			p = p[:l.left]
		}
		n, err := l.r.Read(p)
		l.left -= int64(n)
		return n, err
	}
	if err := l.header(); err != nil {
		return 0, err
	}
	if len(l.buf) == 0 {
		return l.r.Read(p)
	}
	return l.Read(p)
}

// header reads the next block into buf and decides what follows it.
func (l *lenientTar) header() error {
	if cap(l.buf) < 512 {
		l.buf = make([]byte, 512)
	}
	l.buf, l.off = l.buf[:512], 0
	blk := l.buf
	n, err := io.ReadFull(l.r, blk)
	l.buf = l.buf[:n]
	if err != nil {
		l.off1 = true // a short read: archive/tar says what it means
		if n > 0 {
			return nil
		}
		return err
	}
	if l.ext {
		l.ext = blk[504] != 0
		return nil
	}
	if isZero(blk) {
		return nil
	}
	if !checksumOK(blk) {
		l.off1 = true
		return nil
	}
	size, ok := tarNumber(blk[124:136])
	if !ok || size < 0 {
		l.off1 = true
		return nil
	}
	typ := blk[156]
	if l.size >= 0 && typ != 'x' && typ != 'g' && typ != 'L' && typ != 'K' {
		size, l.size = l.size, -1
	}
	switch typ {
	case '1', '2', '3', '4', '5', '6':
		size = 0 // header-only types, whatever the size field says
	case 0:
		if name, _, _ := bytes.Cut(blk[:100], []byte{0}); bytes.HasSuffix(name, []byte("/")) {
			size = 0 // an old-style directory
		}
	case 'S':
		l.ext = blk[482] != 0
	}
	l.left = (size + 511) &^ 511
	if (typ != 'x' && typ != 'g') || size > maxPAX {
		return nil
	}
	data := make([]byte, l.left)
	n, err = io.ReadFull(l.r, data)
	l.buf = append(l.buf, data[:n]...)
	l.left = 0
	if err != nil {
		l.off1 = true
		return nil
	}
	if typ == 'x' {
		l.size = -1 // a later PAX header replaces an earlier one
	}
	l.fixPAX(l.buf[512:512+size], typ == 'x')
	return nil
}

// fixPAX rewrites, in place and at the same length, the records of one
// PAX header that GNU tar accepts and archive/tar does not. It also
// notes the size record of a local (not global) header: it sets the next
// entry's data size.
func (l *lenientTar) fixPAX(recs []byte, local bool) {
	for len(recs) > 0 {
		sp := bytes.IndexByte(recs, ' ')
		if sp <= 0 {
			return
		}
		n, err := strconv.Atoi(string(recs[:sp]))
		if err != nil || n <= sp+1 || n > len(recs) || recs[n-1] != '\n' {
			return
		}
		rec := recs[:n]
		key, val, ok := bytes.Cut(rec[sp+1:n-1], []byte("="))
		if ok {
			l.fixRecord(rec, sp, string(key), val, local)
		}
		recs = recs[n:]
	}
}

func (l *lenientTar) fixRecord(rec []byte, sp int, key string, val []byte, local bool) {
	switch key {
	case "size":
		if v, err := strconv.ParseInt(string(val), 10, 64); err == nil && v >= 0 && local {
			l.size = v
		}
	case "mtime", "atime", "ctime":
		if validPAXTime(string(val)) {
			return
		}
		// GNU tar reads the number the value starts with, if any.
		if n := timePrefix(val); n > 0 {
			l.notes = append(l.notes, fmt.Sprintf("malformed PAX %s %q read as %s (as GNU tar does)", key, val, val[:n]))
			cutRecord(rec, sp, key, val[:n])
			return
		}
		l.notes = append(l.notes, fmt.Sprintf("malformed PAX %s %q ignored (as GNU tar does)", key, val))
		comment(rec)
	case "path", "linkpath", "uname", "gname":
		i := bytes.IndexByte(val, 0)
		if i < 0 {
			return
		}
		l.notes = append(l.notes, fmt.Sprintf("PAX %s %q cut at its NUL byte (as GNU tar does)", key, val))
		cutRecord(rec, sp, key, val[:i])
	}
}

// cutRecord rewrites the record "N key=value\n" (N being sp digits) in
// place with a shorter value, at the same length: the length field gets
// as many leading zeros as the value lost.
func cutRecord(rec []byte, sp int, key string, val []byte) {
	val = bytes.Clone(val) // it lies inside rec
	width := len(rec) - (1 + len(key) + 1 + len(val) + 1)
	head := fmt.Sprintf("%0*d %s=", width, len(rec), key)
	if len(head)+len(val)+1 != len(rec) {
		return
	}
	copy(rec, head)
	copy(rec[len(head):], val)
	rec[len(rec)-1] = '\n'
}

// timePrefix is the length of the [-]digits[.digits] a time value starts
// with, 0 when it starts with no digit.
func timePrefix(v []byte) int {
	i := 0
	if i < len(v) && v[i] == '-' {
		i++
	}
	d := i
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	if i == d {
		return 0
	}
	if i < len(v) && v[i] == '.' {
		i++
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
	}
	return i
}

// comment turns a record into an ignored one of the same length: a
// "comment" (POSIX's keyword for text readers ignore), or when the record
// is too short for that, a one-letter keyword nothing reads.
func comment(rec []byte) {
	sp := bytes.IndexByte(rec, ' ')
	body := rec[sp+1 : len(rec)-1]
	key := "comment="
	if len(body) < len(key) {
		key = "c="
	}
	copy(body, key)
	for i := len(key); i < len(body); i++ {
		body[i] = 'x'
	}
}

// validPAXTime accepts what archive/tar's PAX time parser accepts:
// [-]digits[.digits].
func validPAXTime(s string) bool {
	sec, frac, _ := strings.Cut(s, ".")
	if _, err := strconv.ParseInt(sec, 10, 64); err != nil {
		return false
	}
	for i := 0; i < len(frac); i++ {
		if frac[i] < '0' || frac[i] > '9' {
			return false
		}
	}
	return true
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// checksumOK checks a header block's checksum, signed or unsigned, as
// archive/tar does.
func checksumOK(b []byte) bool {
	want, ok := tarNumber(b[148:156])
	if !ok {
		return false
	}
	var u, s int64
	for i, c := range b {
		if i >= 148 && i < 156 {
			c = ' '
		}
		u += int64(c)
		s += int64(int8(c))
	}
	return want == u || want == s
}

// tarNumber parses a numeric header field: octal, or base-256 when its
// first byte has the high bit set.
func tarNumber(f []byte) (int64, bool) {
	if len(f) > 0 && f[0]&0x80 != 0 {
		if f[0]&0x40 != 0 {
			return 0, false // negative
		}
		var v int64
		for i, c := range f {
			if i == 0 {
				c &= 0x7f
			}
			if v>>55 != 0 {
				return 0, false
			}
			v = v<<8 | int64(c)
		}
		return v, true
	}
	s := strings.Trim(string(f), " \x00")
	if s == "" {
		return 0, true
	}
	v, err := strconv.ParseInt(s, 8, 64)
	return v, err == nil
}
