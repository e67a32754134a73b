// Moving bytes: a piece (or a span of it) pulled with retries through the
// rate limiter and the stall watchdog, and a whole object streamed when
// its server ignores Range.

package fetch

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/stall"
	"github.com/haul-dev/haul/internal/retry"
	"github.com/haul-dev/haul/internal/safefs"
)

// fetchPiece pulls span j.sp of piece j into the part file, retrying
// with backoff and resuming inside the span after a cut. The worker of a
// piece's last span returns the piece's digest (Part.PieceHash), or the
// first span failure; the others return errSpanEnded.
func (e *engine) fetchPiece(ctx context.Context, j job, buf []byte) ([]byte, error) {
	r, fl, sp := j.r, j.fl, j.sp
	// h is the piece's digest, fed by the head span's worker; the others
	// feed none (the piece is read back once they are done).
	var h hash.Hash
	var sum []byte
	tries := 0
	// final ends the tries whatever it is: this span ended while another
	// of the piece runs, or another span failed first.
	var final error
	stop := func(err error) bool {
		return errors.Is(err, source.ErrChanged) || source.IsPermanent(err) || errors.Is(err, source.ErrRangeIgnored)
	}
	// A repair source's copy that fails the manifest twice is bad there,
	// not on the way: reading it again only moves bytes. With mirrors,
	// every copy gets its tries (mirrors.go).
	copies := e.copies(r.p.Name)
	badCopy := func(err error, attempt int) bool { // e.copies drops copies whose hash showed other bytes
		return errors.Is(err, errPieceMismatch) && (e.repair && attempt >= 2*copies || attempt >= e.opts.Retries*e.copies(r.p.Name))
	}
	policy := e.opts.policy(r.p.Name, func(err error, attempt int) bool {
		return final == nil && !stop(err) && !badCopy(err, attempt)
	}, func(err error, attempt int) string {
		return fmt.Sprintf("%s piece %d: %v; retrying (%d/%d)", r.p.Name, j.i, err, attempt, e.opts.Retries*copies)
	})
	policy.Attempts *= copies
	err := retry.Do(ctx, policy, func(attempt int) error {
		tries = attempt
		err := e.openPart(r)
		if err == nil && sp == fl.head && h == nil {
			h, err = e.resumeHead(r, fl, buf)
		}
		if err == nil {
			err = e.pull(ctx, r, sp, h, buf)
		}
		if err != nil {
			return err
		}
		last, ferr := e.leave(fl, sp, nil)
		if !last {
			final = errSpanEnded
			return final
		}
		if ferr != nil {
			final = ferr
			return final
		}
		if fl.split || h == nil {
			sum, err = e.readBack(r, fl, buf)
		} else {
			sum = h.Sum(nil)
		}
		if err == nil && (r.pieceRefs == nil || r.pieceRefs[j.i] == hex.EncodeToString(sum)) {
			return nil
		}
		if err == nil {
			// Unwrapped: the retry line and the final error name the
			// part and the piece once.
			err = errPieceMismatch
			e.blame(r.p, fl.off, fl.n, err)
		}
		// The whole piece again, on this worker.
		sp, h = e.again(r, fl)
		return err
	})
	switch {
	case err == nil:
		return sum, nil
	case final != nil:
		return nil, final
	case ctx.Err() != nil:
		return nil, e.quit(fl, sp, ctx.Err())
	}
	var ex *retry.ExhaustedError
	if errors.As(err, &ex) {
		err = ex.Err
	}
	if ex != nil || badCopy(err, tries) && !stop(err) {
		err = fmt.Errorf("%s piece %d (bytes %d-%d): %d attempts: %w", r.p.Name, j.i, fl.off, fl.off+fl.n-1, tries, err)
	}
	return nil, e.quit(fl, sp, err)
}

// openPart opens (and sizes) NAME.partial on first use.
func (e *engine) openPart(r *partRun) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r.f != nil {
		return nil
	}
	f, fresh, err := e.dir().OpenPartial(r.p.Name)
	if err != nil {
		return source.Permanent(fmt.Errorf("open %s: %w", e.partialPath(r.p.Name), err))
	}
	if fresh && r.p.Done.Count(r.n) > 0 {
		// What was there was a link, not the bytes the state counts.
		f.Close()
		_ = os.Remove(e.partialPath(r.p.Name))
		return source.Permanent(fmt.Errorf("%s was replaced by a link or another file; run again to fetch the part anew: %w", e.partialPath(r.p.Name), safefs.ErrUnsafe))
	}
	if fi, err := f.Stat(); err == nil && fi.Size() != r.p.Size {
		if err := f.Truncate(r.p.Size); err != nil {
			f.Close()
			return source.Permanent(fmt.Errorf("size %s to %d bytes: %w", e.partialPath(r.p.Name), r.p.Size, err))
		}
	}
	r.f = f
	return nil
}

// pull moves the bytes of span sp not yet written into the part file
// through the rate limiter and the stall watchdog, hashing them into h.
func (e *engine) pull(ctx context.Context, r *partRun, sp *span, h hash.Hash, buf []byte) error {
	sp.mu.Lock()
	off, n := sp.pos, sp.end-sp.pos
	sp.mu.Unlock()
	if n <= 0 {
		return nil
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch := stall.New(e.opts.Timeout, cancel)
	defer watch.Stop()
	asked := time.Now()
	sp.asking(true)
	rc, err := e.src.ReadRange(rctx, r.object(), off, n)
	if err != nil {
		sp.asking(false)
		return watch.Explain(err)
	}
	defer rc.Close()
	took := time.Since(asked)
	if a, ok := rc.(source.Answerer); ok {
		took = a.AnswerTime()
	}
	e.answered(took)
	ns, ok := rc.(source.NoSplitter)
	sp.answered(ok && ns.NoSplit())
	return e.copySpan(e.limit(rctx, rc), r, sp, h, buf, watch)
}

// copySpan reads the bytes of sp from body into the part file and h. It
// stops at sp.end, which a split may lower while it runs (the response
// is then closed early).
func (e *engine) copySpan(body io.Reader, r *partRun, sp *span, h hash.Hash, buf []byte, watch *stall.Watch) error {
	fc, _ := body.(source.FileCopier)
	for {
		watch.Kick()
		want := sp.left()
		if want <= 0 {
			return nil
		}
		if fc != nil {
			k, err := r.copyIn(fc, sp, h, buf)
			e.count(r, k)
			switch {
			case errors.Is(err, errors.ErrUnsupported):
				fc = nil // Read serves the rest
			case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
				return source.Permanent(fmt.Errorf("write %s: %w (free space in DEST, then run again)", e.partialPath(r.p.Name), err))
			case err == io.EOF && sp.left() > 0:
				return io.ErrUnexpectedEOF
			case err != nil && err != io.EOF:
				return err
			}
			continue
		}
		k, rerr := body.Read(buf[:min(int64(len(buf)), want)])
		if k > 0 {
			e.count(r, k)
			sp.mu.Lock()
			w := min(int64(k), sp.end-sp.pos)
			var werr error
			if w > 0 {
				if werr = r.writeAt(buf[:w], sp.pos); werr == nil {
					if h != nil {
						h.Write(buf[:w])
					}
					sp.pos += w
				}
			}
			sp.mu.Unlock()
			if werr != nil {
				return source.Permanent(fmt.Errorf("write %s: %w (free space in DEST, then run again)", e.partialPath(r.p.Name), werr))
			}
		}
		if rerr == io.EOF {
			if sp.left() > 0 {
				return io.ErrUnexpectedEOF
			}
			return nil
		}
		if rerr != nil {
			return watch.Explain(rerr)
		}
	}
}

// writeAt writes b at off into the part file, one write at a time: the
// kernel takes the file's lock for every buffered write, and writers
// waiting there spin on a core the proof needs (a quarter of all CPU with
// 8 connections into one part from a fast source).
func (r *partRun) writeAt(b []byte, off int64) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	_, err := r.f.WriteAt(b, off)
	return err
}

// copyIn moves the next bytes of sp, len(buf) at most, from a local file
// into the part file inside the kernel (source.FileCopier), then reads
// them back from the part file into h: the piece's digest is of what the
// part file holds.
func (r *partRun) copyIn(fc source.FileCopier, sp *span, h hash.Hash, buf []byte) (int, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.pos >= sp.end {
		return 0, nil // a split ended the span
	}
	r.wmu.Lock()
	k, err := fc.CopyTo(r.f, sp.pos, int(min(int64(len(buf)), sp.end-sp.pos)))
	r.wmu.Unlock()
	if k > 0 && h != nil {
		if _, rerr := r.f.ReadAt(buf[:k], sp.pos); rerr != nil {
			return 0, source.Permanent(fmt.Errorf("read back %s: %w", r.f.Name(), rerr))
		}
		h.Write(buf[:k])
	}
	sp.pos += int64(k)
	return k, err
}

// count records k bytes pulled over the link for part r.
func (e *engine) count(r *partRun, k int) {
	e.opts.Progress.Pulled(r.p.Name, int64(k))
	e.pulled.Add(int64(k))
	e.opts.Meter.Add(int64(k))
}

func (e *engine) limit(ctx context.Context, rc io.Reader) io.Reader {
	if e.opts.Limiter != nil {
		return e.opts.Limiter.Reader(ctx, rc)
	}
	return rc
}

// copyRange reads bytes [off+*pos, off+n) of the part from body, hashes
// them into h and, with write, writes them into the part file; *pos
// advances with every byte.
func (e *engine) copyRange(body io.Reader, r *partRun, off, n int64, pos *int64, write bool, h hash.Hash, buf []byte, watch *stall.Watch) error {
	for *pos < n {
		watch.Kick()
		k, rerr := body.Read(buf[:min(int64(len(buf)), n-*pos)])
		if k > 0 {
			h.Write(buf[:k])
			if write {
				if werr := r.writeAt(buf[:k], off+*pos); werr != nil {
					return source.Permanent(fmt.Errorf("write %s: %w (free space in DEST, then run again)", e.partialPath(r.p.Name), werr))
				}
			}
			*pos += int64(k)
			e.count(r, k)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return watch.Explain(rerr)
		}
	}
	if *pos < n {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// wholeJob is the piece index of a job that streams a whole object.
const wholeJob = -1

// fetchWhole fetches a part whose server ignores Range in one stream from
// its first byte, writing the pieces still missing and passing over the
// others, with retries. Each piece is recorded as it completes.
func (e *engine) fetchWhole(ctx context.Context, r *partRun, buf []byte) error {
	if err := e.openPart(r); err != nil {
		return err
	}
	err := retry.Do(ctx, e.opts.policy(r.p.Name, func(err error, _ int) bool {
		return !errors.Is(err, source.ErrChanged) && !source.IsPermanent(err)
	}, func(err error, attempt int) string {
		return fmt.Sprintf("%s: %v; retrying (%d/%d)", r.p.Name, err, attempt, e.opts.Retries)
	}), func(int) error { return e.stream(ctx, r, buf) })
	var ex *retry.ExhaustedError
	if errors.As(err, &ex) {
		return fmt.Errorf("%s (one stream; the server ignores Range): %d attempts: %w", r.p.Name, ex.Attempts, ex.Err)
	}
	return err
}

// stream makes one pass over the whole object.
func (e *engine) stream(ctx context.Context, r *partRun, buf []byte) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch := stall.New(e.opts.Timeout, cancel)
	defer watch.Stop()
	rc, err := e.src.ReadRange(rctx, r.object(), 0, r.p.Size)
	if err != nil {
		return watch.Explain(err)
	}
	defer rc.Close()
	body := e.limit(rctx, rc)
	var bad error
	for i := 0; i < r.n; i++ {
		off, n := chunk.PieceRange(r.p.Size, e.st.PieceSize, i)
		e.mu.Lock()
		need := r.missing(i)
		e.mu.Unlock()
		h := chunk.NewPieceHash(r.p.PieceHash)
		var pos int64
		if err := e.copyRange(body, r, off, n, &pos, need, h, buf, watch); err != nil {
			return err
		}
		if !need {
			continue
		}
		sum := h.Sum(nil)
		if r.pieceRefs != nil && r.pieceRefs[i] != hex.EncodeToString(sum) {
			// The retry line names the part.
			bad = fmt.Errorf("piece %d: %w", i, errPieceMismatch)
			e.blame(r.p, off, n, bad)
			continue // still missing: the next pass fetches it again
		}
		e.mu.Lock()
		e.written(r, i, sum)
		e.signal()
		e.mu.Unlock()
	}
	return bad
}
