package restore

import (
	"bufio"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/haul-dev/haul/integrity"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

const bufSize = 1 << 20

// decoder yields the decompressed stream of a set. Its errors are already
// *integrity.FormatError when the archive is damaged, naming the part and
// the offset in it; I/O errors pass through as they are.
type decoder interface {
	io.Reader
	// inPos is how many bytes of the parts have been consumed (an offset in
	// the Join).
	inPos() int64
	close()
}

// posReader is a buffered reader over a section of the Join that knows
// the exact offset of the next byte it hands out: decoders that read byte
// by byte (gzip, bzip2) get it directly, so their errors are exact.
type posReader struct {
	sec section
	br  *bufio.Reader
}

func newPosReader(j *Join, off, end int64) *posReader {
	r := &posReader{sec: section{j: j, off: off, end: end}}
	r.br = bufio.NewReaderSize(&r.sec, bufSize)
	return r
}

// reset points the reader at another section, keeping its buffer.
func (r *posReader) reset(off, end int64) {
	r.sec.off, r.sec.end = off, end
	r.br.Reset(&r.sec)
}

func (r *posReader) pos() int64 { return r.sec.off - int64(r.br.Buffered()) }

// formatErr turns a decoder's error into an *integrity.FormatError located
// at pos, unless it is an I/O error or already located.
func formatErr(j *Join, format string, pos int64, err error) error {
	var fe *integrity.FormatError
	var je *joinError
	if err == nil || errors.As(err, &fe) || errors.As(err, &je) {
		return err
	}
	part, off := j.Locate(pos)
	err = describe(err)
	if msg := err.Error(); strings.HasPrefix(msg, format+": ") {
		err = &describedError{strings.TrimPrefix(msg, format+": "), err}
	}
	return &integrity.FormatError{Format: format, Part: part, Offset: off, Err: err}
}

// describedError gives a short message to a library error and keeps it
// for errors.Is.
type describedError struct {
	msg string
	err error
}

func (e *describedError) Error() string { return e.msg }
func (e *describedError) Unwrap() error { return e.err }

// describe shortens the errors of the decoders ("gzip: invalid checksum")
// to what follows the format name in a FormatError ("checksum error").
func describe(err error) error {
	var ce flate.CorruptInputError
	var se bzip2.StructuralError
	switch {
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, zstd.ErrCRCMismatch):
		return &describedError{"checksum error", err}
	case errors.Is(err, gzip.ErrHeader):
		return &describedError{"bad member header", err}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &describedError{"unexpected end of data (truncated)", io.ErrUnexpectedEOF}
	case errors.As(err, &ce):
		return &describedError{"corrupt data", err}
	case errors.As(err, &se):
		return &describedError{"corrupt data (" + string(se) + ")", err}
	}
	return err
}

// plainDecoder is an uncompressed tar: the bytes of the parts.
type plainDecoder struct{ r *posReader }

func (d *plainDecoder) Read(p []byte) (int, error) {
	n, err := d.r.br.Read(p)
	return n, err
}
func (d *plainDecoder) inPos() int64 { return d.r.pos() }
func (d *plainDecoder) close()       {}

// gzipDecoder reads a sequence of gzip members one by one, so that it knows
// where each began (a checksum error names the member's start too) and can
// tell a clean end from damage. Trailing zero bytes after the last member
// (tape padding) are accepted, as gzip(1) does.
type gzipDecoder struct {
	j      *Join
	r      *posReader
	z      *gzip.Reader
	inMem  bool  // inside a member
	start  int64 // where the current member began
	n      int   // members read from the current section
	format string
}

func newGzipDecoder(j *Join, r *posReader, format string) *gzipDecoder {
	return &gzipDecoder{j: j, r: r, format: format}
}

// resetSection makes the decoder read another section (a Bitrix volume).
func (d *gzipDecoder) resetSection(off, end int64) {
	d.r.reset(off, end)
	d.inMem, d.n = false, 0
}

func (d *gzipDecoder) Read(p []byte) (int, error) {
	for {
		if !d.inMem {
			end, err := d.nextMember()
			if end || err != nil {
				return 0, err
			}
		}
		n, err := d.z.Read(p)
		if err == io.EOF {
			d.inMem = false
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err != nil {
			return n, d.fail(err)
		}
		return n, nil
	}
}

// nextMember starts the next member; end is true at a clean end of data.
func (d *gzipDecoder) nextMember() (end bool, err error) {
	d.start = d.r.pos()
	b, perr := d.r.br.Peek(1)
	if perr == io.EOF && d.n > 0 {
		return true, io.EOF
	}
	if perr == nil && b[0] == 0 && d.n > 0 {
		return d.trailingZeros()
	}
	if d.z == nil {
		d.z = new(gzip.Reader)
	}
	if err := d.z.Reset(d.r.br); err != nil {
		d.z = nil // a failed Reset leaves no decompressor: Close would panic
		if d.n == 0 && errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return false, d.fail(err)
	}
	d.z.Multistream(false)
	d.inMem = true
	d.n++
	return false, nil
}

func (d *gzipDecoder) trailingZeros() (bool, error) {
	for {
		b, err := d.r.br.Peek(min(d.r.br.Buffered(), 64<<10))
		if len(b) == 0 {
			if _, err = d.r.br.Peek(1); err == io.EOF {
				return true, io.EOF
			}
			if err != nil {
				return false, d.fail(err)
			}
			continue
		}
		for i, c := range b {
			if c != 0 {
				_, _ = d.r.br.Discard(i)
				return false, d.fail(errors.New("garbage after the last member"))
			}
		}
		_, _ = d.r.br.Discard(len(b))
		if err != nil && err != bufio.ErrBufferFull {
			return false, d.fail(err)
		}
	}
}

func (d *gzipDecoder) fail(err error) error {
	if errors.Is(err, gzip.ErrChecksum) {
		// The CRC covers the whole member: name every part it touches.
		return spanErr(d.j, d.format, d.start, d.r.pos(), &describedError{"checksum error", err})
	}
	return formatErr(d.j, d.format, d.r.pos(), err)
}

// spanErr locates a failed check that covers [from, to) of the Join. With
// one part in the span the error names it; otherwise it names where the
// check failed and lists the parts in a *SpanError.
func spanErr(j *Join, format string, from, to int64, err error) error {
	parts := j.between(from, to)
	part, off := j.Locate(to)
	if len(parts) == 1 && parts[0] != part {
		// A check found at the very start of the next part.
		part, off = j.Locate(from + 1)
		off--
	}
	return &integrity.FormatError{Format: format, Part: part, Offset: off, Err: &SpanError{Err: err, Parts: parts}}
}

func (d *gzipDecoder) inPos() int64 { return d.r.pos() }
func (d *gzipDecoder) close() {
	if d.z != nil {
		_ = d.z.Close()
	}
}

// streamDecoder wraps the decoders that do their own buffering (zstd, xz,
// bzip2); offsets of their errors are where they had read up to.
type streamDecoder struct {
	j      *Join
	r      *posReader
	rd     io.Reader
	format string
	closer func()
}

func newStreamDecoder(j *Join, r *posReader, format string) (*streamDecoder, error) {
	d := &streamDecoder{j: j, r: r, format: format}
	switch format {
	case "zstd":
		zr, err := zstd.NewReader(r.br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, formatErr(j, format, r.pos(), err)
		}
		d.rd, d.closer = zr, zr.Close
	case "xz":
		xr, err := xz.NewReader(r.br)
		if err != nil {
			return nil, formatErr(j, format, r.pos(), err)
		}
		d.rd = xr
	case "bzip2":
		d.rd = bzip2.NewReader(r.br)
	default:
		return nil, fmt.Errorf("restore: %w: no decoder for %s", ErrUnsupported, format)
	}
	return d, nil
}

func (d *streamDecoder) Read(p []byte) (int, error) {
	n, err := d.rd.Read(p)
	if err != nil && err != io.EOF {
		if isChecksum(err) {
			// Where the frame or block began is not known here: the damage
			// is at or before this point.
			return n, spanErr(d.j, d.format, 0, d.r.pos(), &describedError{"checksum error", err})
		}
		err = formatErr(d.j, d.format, d.r.pos(), err)
	}
	return n, err
}

// isChecksum reports whether a zstd or xz error is a failed checksum.
func isChecksum(err error) bool {
	return errors.Is(err, zstd.ErrCRCMismatch) || strings.Contains(err.Error(), "checksum")
}

func (d *streamDecoder) inPos() int64 { return d.r.pos() }
func (d *streamDecoder) close() {
	if d.closer != nil {
		d.closer()
	}
}
