package fetch

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/haul-dev/haul/chunk"
)

// engine moves the pieces of one set into DEST.
type engine struct {
	opts *Options
	src  Source

	mu      sync.Mutex
	st      *chunk.State
	runs    []*partRun
	changed chan struct{} // closed and replaced on every change, under mu
	stop    error         // why the workers stop early (nil while running)
	pulled  int64
	// nudge asks the committer for a commit now; commitsStarted and
	// commitsDone number the commits (under mu), so a worker can wait
	// until the piece it wrote is durable.
	nudge          chan struct{}
	commitsStarted uint64
	commitsDone    uint64
	answer         time.Duration // a request's time to its headers, smoothed (endgame.go)

	saveMu sync.Mutex
	// hashed names the parts whose piece hashes this process computed
	// from their files before the run (markBadPieces): recheck trusts them.
	hashed map[string]bool
	// repair mode: verification failures are final at once (the copy at
	// the repair source will not get better by fetching it again).
	repair bool
}

// partRun is the live side of one part while the engine runs.
type partRun struct {
	p         *chunk.Part
	obj       Object
	n         int // pieces
	f         *os.File
	inflight  map[int]bool
	flights   map[int]*flight // the pieces in inflight, with their spans
	written   map[int]string  // piece → sha256, written but not yet fsynced
	verifying bool
	pieceRefs []string // per-piece SHA-256 from a manifest, nil when none
	// whole is set when the server ignores Range for this object: it is
	// then fetched in one stream (streaming) by one worker.
	whole, streaming bool
}

// missing reports whether piece i is neither durable nor written.
// Callers hold e.mu.
func (r *partRun) missing(i int) bool {
	_, w := r.written[i]
	return !r.p.Done.Has(i) && !w
}

// anyMissing reports whether some piece is still to be fetched.
func (r *partRun) anyMissing() bool {
	for i := 0; i < r.n; i++ {
		if r.missing(i) {
			return true
		}
	}
	return false
}

func (r *partRun) settled() bool {
	switch r.p.Status {
	case chunk.Verified, chunk.Unverified, chunk.Broken, chunk.Missing:
		return true
	}
	return false
}

func (r *partRun) allDone() bool { return r.p.Done.Count(r.n) == r.n }

func (e *engine) partialPath(name string) string { return filepath.Join(e.opts.Dest, name+".partial") }

func (e *engine) finalPath(name string) string { return filepath.Join(e.opts.Dest, name) }

// signal wakes every waiting worker. Callers hold e.mu.
func (e *engine) signal() {
	close(e.changed)
	e.changed = make(chan struct{})
}

// save writes the state durably. The marshal happens under e.mu.
func (e *engine) save() error {
	e.saveMu.Lock()
	defer e.saveMu.Unlock()
	e.mu.Lock()
	snapshot := *e.st
	parts := make([]*chunk.Part, len(e.st.Parts))
	for i, p := range e.st.Parts {
		cp := *p
		cp.Done = slices.Clone(p.Done)
		cp.Hashes = slices.Clone(p.Hashes)
		parts[i] = &cp
	}
	snapshot.Parts = parts
	e.mu.Unlock()
	if err := chunk.Save(e.opts.Dest, &snapshot); err != nil {
		return fmt.Errorf("save state in %s: %w", e.opts.Dest, err)
	}
	return nil
}

type job struct {
	r  *partRun
	i  int
	fl *flight // the piece's flight, and the span this job fetches
	sp *span
}

// run fetches every pending piece with opts.Connections workers, commits
// written pieces about once a second, and verifies each part as it
// completes, until every part is settled or the run must stop.
func (e *engine) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	verifyQ := make(chan *partRun, len(e.runs))
	e.nudge = make(chan struct{}, 1)
	e.mu.Lock()
	for _, r := range e.runs {
		if !r.settled() && r.n > 0 && r.allDone() {
			r.verifying = true
			verifyQ <- r
		}
		if r.n == 0 && !r.settled() { // an empty part is complete at once
			r.verifying = true
			verifyQ <- r
		}
	}
	e.mu.Unlock()

	var workers sync.WaitGroup
	for w := 0; w < e.opts.Connections; w++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			e.worker(ctx)
		}()
	}
	stopCommit := make(chan struct{})
	commitDone := make(chan struct{})
	go func() {
		defer close(commitDone)
		if err := e.committer(stopCommit, verifyQ); err != nil {
			e.halt(err)
		}
	}()
	verifyDone := make(chan struct{})
	go func() {
		defer close(verifyDone)
		e.verifier(ctx, verifyQ)
	}()
	// Shutdown order: workers, then the committer's last commit (which
	// may still queue parts), then the verifier.
	workers.Wait()
	close(stopCommit)
	<-commitDone
	close(verifyQ)
	<-verifyDone

	e.closeFiles()
	if err := e.save(); err != nil {
		return err
	}
	e.mu.Lock()
	stop := e.stop
	e.mu.Unlock()
	if stop == nil && ctx.Err() != nil {
		stop = ctx.Err()
	}
	switch {
	case stop == nil:
		return nil
	case errors.Is(stop, context.Canceled), errors.Is(stop, context.DeadlineExceeded):
		return interrupted(ctx)
	}
	return stop
}

// interrupted is the error of a run that ctx stopped.
func interrupted(ctx context.Context) error {
	return fmt.Errorf("%w (%v); state saved: run the same command again to continue", ErrInterrupted, context.Cause(ctx))
}

// halt stops the workers with err as the reason, keeping the first one.
func (e *engine) halt(err error) {
	e.mu.Lock()
	if e.stop == nil {
		e.stop = err
	}
	e.signal()
	e.mu.Unlock()
}

func (e *engine) closeFiles() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.runs {
		if r.f != nil {
			r.f.Close() // data was fsynced by the committer before any state mentions it
			r.f = nil
		}
	}
}

// next hands out the next piece, earliest part first, or false when the
// worker should end.
func (e *engine) next(ctx context.Context) (job, bool) {
	for {
		e.mu.Lock()
		if e.stop != nil || ctx.Err() != nil {
			e.mu.Unlock()
			return job{}, false
		}
		settled := true
		for _, r := range e.runs {
			if r.settled() {
				continue
			}
			settled = false
			if r.verifying {
				continue
			}
			if r.whole {
				// One stream, once no piece of the part is in flight.
				if !r.streaming && len(r.inflight) == 0 && r.anyMissing() {
					r.streaming = true
					e.mu.Unlock()
					return job{r: r, i: wholeJob}, true
				}
				continue
			}
			for i := 0; i < r.n; i++ {
				if r.missing(i) && !r.inflight[i] {
					j := e.newFlight(r, i)
					e.mu.Unlock()
					return j, true
				}
			}
		}
		var poll *time.Timer
		if !settled {
			j, ok, busy := e.steal()
			if ok {
				e.mu.Unlock()
				return j, true
			}
			if busy {
				// Spans may become worth splitting with no change to
				// wake this worker: look again soon.
				poll = time.NewTimer(splitPoll)
			}
		}
		ch := e.changed
		e.mu.Unlock()
		if settled {
			return job{}, false
		}
		var tick <-chan time.Time // nil: no poll
		if poll != nil {
			tick = poll.C
		}
		select {
		case <-ch:
		case <-tick:
		case <-ctx.Done():
		}
		if poll != nil {
			poll.Stop()
		}
		if ctx.Err() != nil {
			return job{}, false
		}
	}
}

func (e *engine) worker(ctx context.Context) {
	buf := make([]byte, 256<<10)
	for {
		j, ok := e.next(ctx)
		if !ok {
			return
		}
		if j.i == wholeJob {
			e.finishWhole(ctx, j.r, e.fetchWhole(ctx, j.r, buf))
			continue
		}
		sum, err := e.fetchPiece(ctx, j, buf)
		if errors.Is(err, errSpanEnded) {
			continue // another span of the piece is still running
		}
		if commit := e.finish(ctx, j, sum, err); commit > 0 {
			// A piece counts as in flight until it is durable: a kill
			// then loses at most one piece per connection.
			e.awaitCommit(ctx, commit)
		}
	}
}

// awaitCommit waits until commit number seq is done (or the run stops).
func (e *engine) awaitCommit(ctx context.Context, seq uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for e.commitsDone < seq && e.stop == nil && ctx.Err() == nil {
		ch := e.changed
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		e.mu.Lock()
	}
}

// finish records the outcome of one piece. For a piece written it asks
// for a commit and returns the number of the commit that will hold it.
func (e *engine) finish(ctx context.Context, j job, sum string, err error) (commit uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := j.r
	delete(r.inflight, j.i)
	delete(r.flights, j.i)
	defer e.signal()
	switch {
	case err == nil:
		return e.written(r, j.i, sum)
	case errors.Is(err, errRangeIgnored):
		if !r.whole {
			r.whole = true
			e.opts.Progress.Event(Event{Kind: EventWarning, Part: r.p.Name, Message: fmt.Sprintf("the server of %s ignores Range requests: fetching it in one stream", r.p.Name)})
		}
	default:
		e.failed(ctx, r, err)
	}
	return 0
}

// written records a piece written to the part file and asks for the
// commit that makes it durable; it returns that commit's number. Callers
// hold e.mu.
func (e *engine) written(r *partRun, i int, sum string) (commit uint64) {
	r.written[i] = sum
	if r.p.Status == chunk.Pending {
		r.p.Status = chunk.Partial
	}
	select {
	case e.nudge <- struct{}{}:
	default: // a commit is already asked for; it starts after this write
	}
	return e.commitsStarted + 1
}

// finishWhole records the outcome of a whole-object stream.
func (e *engine) finishWhole(ctx context.Context, r *partRun, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	defer e.signal()
	r.streaming = false
	if err != nil {
		e.failed(ctx, r, err)
	}
}

// failed decides what a piece or stream that failed after its retries
// means: the object changed (list again), a permanent error (stop), bad
// data (the part is broken), or else the network is down. Callers hold
// e.mu.
func (e *engine) failed(ctx context.Context, r *partRun, err error) {
	switch {
	case ctx.Err() != nil:
	case errors.Is(err, ErrChanged):
		e.opts.Progress.Event(Event{Kind: EventPartChanged, Part: r.p.Name, Message: fmt.Sprintf("part %s changed at the source during the run; starting it again", r.p.Name)})
		if e.stop == nil {
			e.stop = errRelist
		}
	case IsPermanent(err):
		if e.stop == nil {
			e.stop = err
		}
	case isDataError(err):
		r.p.Status = chunk.Broken
		r.p.Error = err.Error()
		if e.repair {
			r.p.Error = e.badCopy(err)
		}
		e.opts.Progress.Event(Event{Kind: EventPartBroken, Part: r.p.Name, Message: fmt.Sprintf("part %s is broken: %s", r.p.Name, r.p.Error)})
	default:
		if e.stop == nil {
			e.stop = fmt.Errorf("%w: %v", ErrNetworkDown, err)
		}
	}
}

// fetchPiece pulls span j.sp of piece j into the part file, retrying
// with backoff and resuming inside the span after a cut. The worker of a
// piece's last span returns the piece's digest (Part.PieceHash), or the
// first span failure; the others return errSpanEnded.
func (e *engine) fetchPiece(ctx context.Context, j job, buf []byte) (string, error) {
	r, fl, sp := j.r, j.fl, j.sp
	// h is the piece's digest while one span covers it from its start.
	h := chunk.NewPieceHash(r.p.PieceHash)
	for attempt := 1; ; attempt++ {
		err := ctx.Err()
		if err == nil {
			err = e.openPart(r)
		}
		if err == nil {
			err = e.pull(ctx, r, sp, h, buf)
		}
		if err == nil {
			last, ferr := e.leave(fl, sp, nil)
			if !last {
				return "", errSpanEnded
			}
			if ferr != nil {
				return "", ferr
			}
			var sum string
			if fl.split {
				sum, err = e.readBack(r, fl, buf)
			} else {
				sum = hex.EncodeToString(h.Sum(nil))
			}
			if err == nil && (r.pieceRefs == nil || r.pieceRefs[j.i] == sum) {
				return sum, nil
			}
			if err == nil {
				err = fmt.Errorf("%s piece %d: %w", r.p.Name, j.i, errPieceMismatch)
			}
			// The whole piece again, on this worker.
			sp = e.again(fl)
			h.Reset()
		}
		stop := ctx.Err() != nil || errors.Is(err, ErrChanged) || IsPermanent(err) || errors.Is(err, errRangeIgnored)
		// A repair source's copy that fails the manifest twice is bad
		// there, not on the way: reading it again only moves bytes.
		badCopy := e.repair && errors.Is(err, errPieceMismatch) && attempt >= 2
		if !stop && (attempt >= e.opts.Retries || badCopy) {
			err = fmt.Errorf("%s bytes %d-%d: %d attempts: %w", r.p.Name, fl.off, fl.off+fl.n-1, attempt, err)
			stop = true
		}
		if stop {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return "", e.quit(fl, sp, err)
		}
		e.opts.Progress.Event(Event{Kind: EventRetry, Part: r.p.Name, Message: fmt.Sprintf("%s piece %d: %v; retrying (%d/%d)", r.p.Name, j.i, err, attempt, e.opts.Retries)})
		if err := sleep(ctx, e.opts.Backoff(attempt)); err != nil {
			return "", e.quit(fl, sp, err)
		}
	}
}

// openPart opens (and sizes) NAME.partial on first use.
func (e *engine) openPart(r *partRun) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r.f != nil {
		return nil
	}
	f, err := os.OpenFile(e.partialPath(r.p.Name), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return Permanent(fmt.Errorf("open %s: %w", e.partialPath(r.p.Name), err))
	}
	if fi, err := f.Stat(); err == nil && fi.Size() != r.p.Size {
		if err := f.Truncate(r.p.Size); err != nil {
			f.Close()
			return Permanent(fmt.Errorf("size %s to %d bytes: %w", e.partialPath(r.p.Name), r.p.Size, err))
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
	watch := newStallWatch(e.opts.Timeout, cancel)
	defer watch.stop()
	asked := time.Now()
	rc, err := e.src.ReadRange(rctx, r.obj, off, n)
	if err != nil {
		return watch.explain(err)
	}
	defer rc.Close()
	e.answered(time.Since(asked))
	return e.copySpan(e.limit(rctx, rc), r, sp, h, buf, watch)
}

// copySpan reads the bytes of sp from body into the part file and h. It
// stops at sp.end, which a split may lower while it runs (the response
// is then closed early).
func (e *engine) copySpan(body io.Reader, r *partRun, sp *span, h hash.Hash, buf []byte, watch *stallWatch) error {
	for {
		watch.kick()
		want := sp.left()
		if want <= 0 {
			return nil
		}
		k, rerr := body.Read(buf[:min(int64(len(buf)), want)])
		if k > 0 {
			e.count(r, k)
			sp.mu.Lock()
			w := min(int64(k), sp.end-sp.pos)
			var werr error
			if w > 0 {
				if _, werr = r.f.WriteAt(buf[:w], sp.pos); werr == nil {
					h.Write(buf[:w])
					sp.pos += w
				}
			}
			sp.mu.Unlock()
			if werr != nil {
				return Permanent(fmt.Errorf("write %s: %w (free space in DEST, then run again)", e.partialPath(r.p.Name), werr))
			}
		}
		if rerr == io.EOF {
			if sp.left() > 0 {
				return io.ErrUnexpectedEOF
			}
			return nil
		}
		if rerr != nil {
			return watch.explain(rerr)
		}
	}
}

// count records k bytes pulled over the link for part r.
func (e *engine) count(r *partRun, k int) {
	e.opts.Progress.Pulled(r.p.Name, int64(k))
	e.mu.Lock()
	e.pulled += int64(k)
	e.mu.Unlock()
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
func (e *engine) copyRange(body io.Reader, r *partRun, off, n int64, pos *int64, write bool, h hash.Hash, buf []byte, watch *stallWatch) error {
	for *pos < n {
		watch.kick()
		k, rerr := body.Read(buf[:min(int64(len(buf)), n-*pos)])
		if k > 0 {
			h.Write(buf[:k])
			if write {
				if _, werr := r.f.WriteAt(buf[:k], off+*pos); werr != nil {
					return Permanent(fmt.Errorf("write %s: %w (free space in DEST, then run again)", e.partialPath(r.p.Name), werr))
				}
			}
			*pos += int64(k)
			e.count(r, k)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return watch.explain(rerr)
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
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := e.stream(ctx, r, buf)
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrChanged) || IsPermanent(err) {
			return err
		}
		if attempt >= e.opts.Retries {
			return fmt.Errorf("%s (one stream; the server ignores Range): %d attempts: %w", r.p.Name, attempt, err)
		}
		e.opts.Progress.Event(Event{Kind: EventRetry, Part: r.p.Name, Message: fmt.Sprintf("%s: %v; retrying (%d/%d)", r.p.Name, err, attempt, e.opts.Retries)})
		if err := sleep(ctx, e.opts.Backoff(attempt)); err != nil {
			return err
		}
	}
}

// stream makes one pass over the whole object.
func (e *engine) stream(ctx context.Context, r *partRun, buf []byte) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch := newStallWatch(e.opts.Timeout, cancel)
	defer watch.stop()
	rc, err := e.src.ReadRange(rctx, r.obj, 0, r.p.Size)
	if err != nil {
		return watch.explain(err)
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
		sum := hex.EncodeToString(h.Sum(nil))
		if r.pieceRefs != nil && r.pieceRefs[i] != sum {
			bad = fmt.Errorf("%s piece %d: %w", r.p.Name, i, errPieceMismatch)
			continue // still missing: the next pass fetches it again
		}
		e.mu.Lock()
		e.written(r, i, sum)
		e.signal()
		e.mu.Unlock()
	}
	return bad
}

// stallWatch cancels a transfer that moves no byte for the timeout.
type stallWatch struct {
	t       *time.Timer
	d       time.Duration
	mu      sync.Mutex
	stalled bool
}

func newStallWatch(d time.Duration, cancel context.CancelFunc) *stallWatch {
	w := &stallWatch{d: d}
	w.t = time.AfterFunc(d, func() {
		w.mu.Lock()
		w.stalled = true
		w.mu.Unlock()
		cancel()
	})
	return w
}

func (w *stallWatch) kick() { w.t.Reset(w.d) }

func (w *stallWatch) stop() { w.t.Stop() }

// explain turns the cancellation the watchdog caused into errStalled.
func (w *stallWatch) explain(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stalled {
		return fmt.Errorf("%w (%s)", errStalled, w.d)
	}
	return err
}

// committer makes written pieces durable as soon as they are written:
// fsync the files first, then record the pieces in state.json. Pieces
// written while a commit runs go into the next one (group commit). Parts
// whose pieces are all durable go to the verifier.
func (e *engine) committer(stop <-chan struct{}, verifyQ chan<- *partRun) error {
	t := time.NewTicker(time.Second) // a safety net; nudges do the work
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-e.nudge:
		case <-stop:
			return e.commit(verifyQ)
		}
		if err := e.commit(verifyQ); err != nil {
			return err
		}
	}
}

func (e *engine) commit(verifyQ chan<- *partRun) error {
	e.mu.Lock()
	e.commitsStarted++
	seq := e.commitsStarted
	// The pieces stay in r.written until Done holds them, so that no
	// worker takes them for missing in between.
	batch := map[*partRun]map[int]string{}
	for _, r := range e.runs {
		if len(r.written) > 0 {
			batch[r] = maps.Clone(r.written)
		}
	}
	e.mu.Unlock()
	done := func() {
		e.mu.Lock()
		e.commitsDone = seq
		e.signal()
		e.mu.Unlock()
	}
	if len(batch) == 0 {
		done()
		return nil
	}
	for r := range batch {
		if err := r.f.Sync(); err != nil {
			return Permanent(fmt.Errorf("fsync %s: %w", e.partialPath(r.p.Name), err))
		}
	}
	var ready []*partRun
	e.mu.Lock()
	for r, pcs := range batch {
		if len(r.p.Hashes) != r.n {
			r.p.Hashes = make([]string, r.n)
		}
		for i, sum := range pcs {
			r.p.Done.Set(i)
			r.p.Hashes[i] = sum
			delete(r.written, i)
		}
		if r.allDone() && !r.verifying && !r.settled() {
			r.verifying = true
			ready = append(ready, r)
		}
	}
	e.mu.Unlock()
	if err := e.save(); err != nil {
		return err
	}
	done()
	// Verified only once the state says every piece is on disk.
	for _, r := range ready {
		verifyQ <- r // room for every part: each is queued once at a time
	}
	return nil
}
