package integrity

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
)

// Sizes of the buffers that carry bytes from Write to the decoder.
const (
	gzipFeedSize  = 256 << 10 // bytes per buffer handed to the decoder
	gzipFeedDepth = 4         // buffers queued at most
)

// gzipMagic starts every gzip member: ID1, ID2, CM=deflate.
var gzipMagic = []byte{0x1f, 0x8b, 8}

// errAborted stops the decoder goroutine when its checker is abandoned.
var errAborted = errors.New("check aborted")

// gzipCheck test-decodes a gzip stream pushed to it with write, in a
// goroutine of its own so that decoding overlaps the hashing the caller
// does. The caller must end it with finish or abort; both wait for the
// goroutine to return, so it never outlives its checker.
type gzipCheck struct {
	in   chan []byte
	free chan []byte // spent buffers, for reuse
	quit chan struct{}
	done chan struct{}
	fill []byte // bytes gathered for the next send
	dead bool   // the decoder has returned; further bytes are dropped
	over bool   // finish or abort ran

	// Set by the goroutine before done is closed.
	err     *gzipError // nil when the stream is sound
	members []int64
	out     int64 // decompressed bytes of all members
}

// gzipError is a decode failure at a stream offset: where the decoder
// was when it gave up and, for damage inside a member, which member and
// where it began: the damage lies between there and off.
type gzipError struct {
	off    int64
	err    error
	within bool // inside member number member, which starts at start
	member int
	start  int64
}

// describe returns the error with the member's start located by where.
func (e *gzipError) describe(where func(off int64) string) error {
	if !e.within {
		return e.err
	}
	return fmt.Errorf("%w in member %d (starts %s)", e.err, e.member, where(e.start))
}

func newGzipCheck() *gzipCheck {
	g := &gzipCheck{
		in:   make(chan []byte, gzipFeedDepth),
		free: make(chan []byte, gzipFeedDepth+2),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	go g.run()
	return g
}

// write queues a copy of p for the decoder. It never blocks for longer
// than the decoder needs to drain a buffer, and not at all once the
// decoder has returned.
func (g *gzipCheck) write(p []byte) {
	for len(p) > 0 && !g.dead {
		if g.fill == nil {
			select {
			case b := <-g.free:
				g.fill = b[:0]
			default:
				g.fill = make([]byte, 0, gzipFeedSize)
			}
		}
		n := copy(g.fill[len(g.fill):cap(g.fill)], p)
		g.fill = g.fill[:len(g.fill)+n]
		p = p[n:]
		if len(g.fill) == cap(g.fill) {
			g.send()
		}
	}
}

func (g *gzipCheck) send() {
	b := g.fill
	g.fill = nil
	select {
	case g.in <- b:
	case <-g.done:
		g.dead = true
	}
}

// finish tells the decoder the stream ended and waits for its verdict.
func (g *gzipCheck) finish() {
	if g.over {
		return
	}
	g.over = true
	if len(g.fill) > 0 && !g.dead {
		g.send()
	}
	close(g.in)
	<-g.done
}

// abort stops the decoder without a verdict and waits for it to return.
func (g *gzipCheck) abort() {
	if g.over {
		return
	}
	g.over = true
	close(g.quit)
	<-g.done
}

// chanReader is the decoder's view of the queued buffers.
type chanReader struct {
	g   *gzipCheck
	cur []byte
	off int
	n   int64 // bytes handed out so far
}

func (r *chanReader) Read(p []byte) (int, error) {
	for r.off >= len(r.cur) {
		if r.cur != nil {
			select {
			case r.g.free <- r.cur:
			default:
			}
			r.cur = nil
		}
		select {
		case b, ok := <-r.g.in:
			if !ok {
				return 0, io.EOF
			}
			r.cur, r.off = b, 0
		case <-r.g.quit:
			return 0, errAborted
		}
	}
	n := copy(p, r.cur[r.off:])
	r.off += n
	r.n += int64(n)
	return n, nil
}

// run decodes member after member until the stream ends cleanly at a
// member boundary or something is wrong.
func (g *gzipCheck) run() {
	defer close(g.done)
	src := &chanReader{g: g}
	br := bufio.NewReaderSize(src, 64<<10)
	// pos is the stream offset of the next byte the decoder will take:
	// bufio may read ahead, the decoder itself takes bytes one at a time.
	pos := func() int64 { return src.n - int64(br.Buffered()) }
	fail := func(err error) { g.err = &gzipError{off: pos(), err: err} }
	var z gzip.Reader
	buf := make([]byte, 128<<10)
	for member := 0; ; member++ {
		start := pos()
		// Look before decoding: bytes that cannot begin a member are
		// trailing data (or no gzip at all), however few they are.
		magic, err := br.Peek(len(gzipMagic))
		switch {
		case errors.Is(err, errAborted):
			return
		case len(magic) == 0 && member > 0:
			return // ends exactly at a member boundary
		case len(magic) == 0:
			fail(fmt.Errorf("%w: no gzip member at all", ErrTruncated))
			return
		case !bytes.HasPrefix(gzipMagic, magic):
			if member > 0 {
				fail(ErrTrailingData)
			} else {
				fail(ErrNotGzip)
			}
			return
		}
		err = z.Reset(br)
		switch {
		case err == nil:
		case errors.Is(err, errAborted):
			return
		case errors.Is(err, io.ErrUnexpectedEOF):
			fail(fmt.Errorf("%w inside the header of member %d", ErrTruncated, member))
			return
		default:
			fail(fmt.Errorf("%w: member %d: %v", ErrNotGzip, member, err))
			return
		}
		z.Multistream(false)
		var n int64
		for {
			k, err := z.Read(buf)
			n += int64(k)
			if err == io.EOF {
				break
			}
			if err != nil {
				if errors.Is(err, errAborted) {
					return
				}
				g.err = &gzipError{off: pos(), err: classifyInflate(err), within: true, member: member, start: start}
				return
			}
		}
		g.members = append(g.members, n)
		g.out += n
	}
}

// classifyInflate maps a decoder error inside a member to one of the
// package's causes.
func classifyInflate(err error) error {
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, gzip.ErrChecksum):
		return ErrChecksum
	case errors.Is(err, io.ErrUnexpectedEOF):
		return ErrTruncated
	case errors.As(err, &corrupt):
		return ErrCorrupt
	}
	return fmt.Errorf("%w: %v", ErrCorrupt, err)
}
