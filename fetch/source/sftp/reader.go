// Reading a range: the pinned version check, the adaptive fill size, and
// calls that know no context made to end with one.

package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/pkg/sftp"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/internal/retry"
)

// sameVersion reports whether fi is still the object first seen. SFTP
// (version 3) gives whole-second modification times.
func sameVersion(fi os.FileInfo, obj source.Object) bool {
	if fi.Size() != obj.Size {
		return false
	}
	return obj.ModTime.IsZero() || fi.ModTime().Unix() == obj.ModTime.Unix()
}

// ReadRange returns bytes [off, off+n) of obj. The file is checked to
// have obj's size and mtime when opened and again after the last byte, so
// a replaced or rewritten file fails with ErrChanged instead of mixing
// versions. Every count is checked: the reader yields exactly n bytes or
// an error.
func (s *sftpSource) ReadRange(ctx context.Context, obj source.Object, off, n int64) (io.ReadCloser, error) {
	if off < 0 || n < 0 || off+n > obj.Size {
		return nil, source.Permanent(fmt.Errorf("%s: read %s: range [%d, %d) outside its %d bytes", s.display, obj.Name, off, off+n, obj.Size))
	}
	p := s.remotePath(obj.Name)
	var (
		f  *sftp.File
		fc *sftpConn
	)
	err := s.do(ctx, func(c *sftpConn) error {
		file, err := await(ctx, s.timeout, func() (*sftp.File, error) { return c.sftp.Open(p) },
			func(f *sftp.File) { _ = f.Close() })
		if err != nil {
			return err
		}
		fi, err := await(ctx, s.timeout, file.Stat, nil)
		if err != nil {
			go file.Close()
			return err
		}
		if !sameVersion(fi, obj) {
			go file.Close()
			return fmt.Errorf("size %d, mtime %s now: %w", fi.Size(), fi.ModTime().UTC().Format("2006-01-02T15:04:05Z"), source.ErrChanged)
		}
		f, fc = file, c
		s.hold(c) // until the reader's Close
		return nil
	})
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("read %s", obj.Name), err)
	}
	return &sftpReader{ctx: ctx, src: s, c: fc, f: f, obj: obj, off: off, end: off + n,
		buf: make([]byte, min(n, sftpChunk)), size: s.fillSize.Load()}, nil
}

// sftpReader streams one range, up to sftpChunk at a time.
type sftpReader struct {
	ctx context.Context
	src *sftpSource
	c   *sftpConn // held busy in the pool until Close
	f   *sftp.File
	obj source.Object

	off, end int64  // next byte to fetch, end of the range
	buf      []byte // fetch buffer
	data     []byte // fetched, not yet returned
	err      error  // returned once data is drained
	// size is how much the next fetch asks for; took is how long the last
	// fetch took and filled when it ended (zero before the first).
	size   int64
	took   time.Duration
	filled time.Time
	// pending is set when a fetch was abandoned (ctx ended) while it still
	// uses f and buf: Close lets it finish before closing f.
	pending chan struct{}
	closed  bool
}

// errShortFile means the file ended before the range did.
var errShortFile = errors.New("file ended early")

func (r *sftpReader) Read(p []byte) (int, error) {
	for len(r.data) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.off >= r.end {
			r.err = r.finish()
			continue
		}
		r.fill()
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// fill fetches the next chunk, or sets r.err.
func (r *sftpReader) fill() {
	if !r.filled.IsZero() {
		r.size = nextFillSize(r.size, r.took, time.Since(r.filled))
		r.src.fillSize.Store(r.size)
	}
	b := r.buf[:min(int64(len(r.buf)), r.size, r.end-r.off)]
	start := time.Now()
	type result struct {
		n   int
		err error
	}
	ch := make(chan result, 1)
	done := make(chan struct{})
	off := r.off
	go func() {
		defer close(done)
		n, err := readFullAt(r.f, b, off)
		ch <- result{n, err}
	}()
	select {
	case res := <-ch:
		r.filled = time.Now()
		r.took = r.filled.Sub(start)
		r.data = b[:res.n]
		r.off += int64(res.n)
		if res.err != nil {
			r.err = r.fail(res.err)
		}
	case <-r.ctx.Done():
		r.pending = done
		r.err = r.ctx.Err()
	}
}

// nextFillSize is the read size after one that asked for size bytes, took
// took to arrive, and took the caller drain to consume (see
// sftpShrinkRatio). It stays within [sftpMaxPacket, sftpChunk].
func nextFillSize(size int64, took, drain time.Duration) int64 {
	switch {
	case drain > sftpShrinkRatio*took:
		size /= 2
	case drain < took:
		size *= 2
	}
	return min(max(size, sftpMaxPacket), sftpChunk)
}

// readFullAt fills b from offset off. pkg/sftp may answer short: its
// concurrent ReadAt reports a short packet as io.EOF, and a server may cap
// a read below what was asked; so keep asking for the rest while bytes
// come, and call it the end of the file only when none do.
func readFullAt(f io.ReaderAt, b []byte, off int64) (int, error) {
	got := 0
	for got < len(b) {
		k, err := f.ReadAt(b[got:], off+int64(got))
		if k < 0 || k > len(b)-got {
			return got, fmt.Errorf("sftp: read returned %d bytes for %d asked", k, len(b)-got)
		}
		got += k
		if got == len(b) {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return got, err
		}
		if k == 0 {
			return got, errShortFile
		}
	}
	return got, nil
}

// fail words a read error; a broken connection is closed so that the
// retry reconnects.
func (r *sftpReader) fail(err error) error {
	if errors.Is(err, errShortFile) {
		err = fmt.Errorf("%w (ended before byte %d of %d)", source.ErrChanged, r.end, r.obj.Size)
	} else if retry.IsNetwork(err) {
		r.c.close()
	}
	return r.src.wrap(fmt.Sprintf("read %s at %d", r.obj.Name, r.off), err)
}

// finish checks, after the last byte, that the file is still the version
// the range was pinned to.
func (r *sftpReader) finish() error {
	fi, err := await(r.ctx, r.src.timeout, r.f.Stat, nil)
	if err != nil {
		return r.fail(err)
	}
	if !sameVersion(fi, r.obj) {
		return r.src.wrap("read "+r.obj.Name, fmt.Errorf("changed while being read: %w", source.ErrChanged))
	}
	return io.EOF
}

// Close releases the remote file handle in the background: closing waits
// for any read still in flight, which only a live connection finishes.
func (r *sftpReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.src.release(r.c)
	pending, f := r.pending, r.f
	go func() {
		if pending != nil {
			<-pending
		}
		_ = f.Close()
	}()
	return nil
}

// errNoAnswer means the server did not answer a request within
// --timeout (it stopped answering mid-listing, on a stat, an open, or
// while hashing): a transient fault, as a stalled HTTP or S3 read is. The
// connection is dropped, not used again.
var errNoAnswer = retry.Mark(retry.Transient, errors.New("the server stopped answering"))

// noAnswer is errNoAnswer saying how long haul waited.
func noAnswer(what string, limit time.Duration) error {
	return fmt.Errorf("%w: %s for %s (--timeout)", errNoAnswer, what, limit)
}

// await runs fn, which blocks on the connection and knows no context, and
// returns when it does, when ctx ends, or after limit (errNoAnswer). In
// the latter cases fn goes on in the background until the connection
// answers or dies (the caller drops it on errNoAnswer), and drop, if not
// nil, releases what it returns.
func await[T any](ctx context.Context, limit time.Duration, fn func() (T, error), drop func(T)) (T, error) {
	var (
		mu        sync.Mutex
		abandoned bool
	)
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fn()
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			if err == nil && drop != nil {
				go drop(v)
			}
			return
		}
		ch <- result{v, err}
	}()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	stalled := false
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
	case <-timer.C:
		stalled = true
	}
	mu.Lock()
	defer mu.Unlock()
	select {
	case r := <-ch:
		return r.v, r.err
	default:
		abandoned = true
		var zero T
		if stalled && ctx.Err() == nil {
			return zero, noAnswer("no answer", limit)
		}
		return zero, ctx.Err()
	}
}
