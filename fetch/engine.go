package fetch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/destdir"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/internal/retry"
	"github.com/haul-dev/haul/internal/units"
)

// engine moves the pieces of one set into DEST.
type engine struct {
	opts *Options
	src  source.Source

	mu      sync.Mutex
	st      *chunk.State
	store   *chunk.Store
	runs    []*partRun
	changed chan struct{} // closed and replaced on every change, under mu
	stop    error         // why the workers stop early (nil while running)
	pulled  atomic.Int64  // bytes pulled in this call (Summary.Pulled); opts.Meter counts the run
	// nudge asks for a commit before the interval: backlog, the pieces
	// written and not yet committed, is full.
	nudge   chan struct{}
	backlog int
	answer  time.Duration // a request's time to its headers, smoothed (endgame.go)
	// first is the first run that may have a piece to hand out: runs
	// before it have none until an event that lowers it (reopen). open is
	// the first run not settled; settled runs stay so within a run.
	first, open int
	// flying holds the runs with pieces in flight (steal looks only
	// there); touched the runs with something for the next commit.
	flying, touched map[*partRun]bool

	saveMu  sync.Mutex
	renames destdir.Renames // proven parts' renames, made durable before the records that say so
	names   []string        // the parts' names (destdir.PartNames) while the set has len(names) parts
	// hashed names the parts whose piece hashes this process computed
	// from their files before the run (markBadPieces): recheck trusts them.
	hashed map[string]bool
	// repair mode: verification failures are final at once (the copy at
	// the repair source will not get better by fetching it again).
	repair bool
	// setTries counts this run's re-fetches of suspects of a failed set
	// decode (prove.go: nextSuspect).
	setTries int
	// acc are the accounts of the sources closed before (mirrors.go), and
	// accBase the bytes pulled when the current one was opened.
	acc     []source.Account
	accBase int64
	follows destdir.Followers // big parts proven while they come
}

// commitInterval is how often written pieces and the progress inside
// pieces in flight become durable: a kill -9 loses about this much of
// each connection's transfer, and the state is written at most this
// often whatever the number of pieces.
const commitInterval = 100 * time.Millisecond

// maxBacklog bounds the bytes written and not yet committed (in pieces,
// 8 at the least: backlogLimit): a worker waits for a commit beyond it, so
// that a disk slow to fsync holds up the transfer rather than gathering
// open files and unsynced data.
const maxBacklog = 256 << 20

func (e *engine) backlogLimit() int { return int(max(8, maxBacklog/max(e.st.PieceSize, 1))) }

// partRun is the live side of one part while the engine runs.
type partRun struct {
	p   *chunk.Part
	idx int // in engine.runs
	n   int // pieces
	f   *os.File
	wmu sync.Mutex // one write into f at a time (writeAt)
	// doneN counts the pieces in p.Done; cursor is the first piece that
	// may be missing and not in flight (lowered when one becomes so).
	doneN, cursor int
	inflight      map[int]bool
	flights       map[int]*flight        // the pieces in inflight, with their spans
	written       map[int][]byte         // piece → digest, written but not yet fsynced
	stopped       map[int]chunk.Progress // progress of pieces that left flight unfinished, not yet durable
	pieceRefs     []string               // per-piece SHA-256 from a manifest, nil when none
	dirty         bool                   // p changed beyond its pieces: the next commit records it whole
	verifying     bool
	// whole is set when the server ignores Range for this object: it is
	// then fetched in one stream (streaming) by one worker.
	whole, streaming bool
	follow           *destdir.Follower // proves the part while it comes
}

// object is the part's object as listed (prepare keeps its fields so).
func (r *partRun) object() source.Object {
	return source.Object{Name: r.p.Name, Size: r.p.Size, ETag: r.p.ETag, ModTime: r.p.ModTime(), URL: r.p.URL(), Encoding: r.p.Encoding()}
}

// missing reports whether piece i is neither durable nor written.
// Callers hold e.mu.
func (r *partRun) missing(i int) bool {
	_, w := r.written[i]
	return !r.p.Done.Has(i) && !w
}

// anyMissing reports whether some piece is still to be fetched.
func (r *partRun) anyMissing() bool { return r.doneN+len(r.written) < r.n }

func (r *partRun) settled() bool {
	switch r.p.Status {
	case chunk.Verified, chunk.Unverified, chunk.Broken, chunk.Missing:
		return true
	}
	return false
}

func (r *partRun) allDone() bool { return r.doneN >= r.n }

func (e *engine) dir() destdir.Dir { return destdir.Dir(e.opts.Dest) }

func (e *engine) partialPath(name string) string { return e.dir().PartialPath(name) }

func (e *engine) finalPath(name string) string { return e.dir().FinalPath(name) }

// signal wakes every waiting worker. Callers hold e.mu.
func (e *engine) signal() {
	close(e.changed)
	e.changed = make(chan struct{})
}

// reopen says that run r may have pieces to hand out again from piece i
// on (one left flight, a proof sent pieces back). Callers hold e.mu.
func (e *engine) reopen(r *partRun, i int) {
	r.cursor = min(r.cursor, max(i, 0))
	e.first = min(e.first, r.idx)
}

func (e *engine) touch(r *partRun) { e.touched[r] = true } // callers hold e.mu

// save writes a snapshot of the whole state, which empties the log.
// Parts are encoded one by one under e.mu.
func (e *engine) save() error {
	e.saveMu.Lock()
	defer e.saveMu.Unlock()
	if e.store == nil {
		e.store = chunk.NewStore(e.opts.Dest)
		e.store.Barrier = func() error { return e.renames.Sync(e.dir()) }
	}
	if err := e.store.SnapshotLocked(e.st, &e.mu); err != nil {
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
// written pieces and the progress inside pieces in flight about once a
// second, and verifies parts as they complete, one per core at a time,
// until every part is settled or the run must stop.
func (e *engine) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	verifyQ := make(chan *partRun, len(e.runs))
	e.nudge = make(chan struct{}, 1)
	e.mu.Lock()
	e.first, e.open, e.backlog = 0, 0, 0
	e.flying, e.touched = map[*partRun]bool{}, map[*partRun]bool{}
	for _, r := range e.runs {
		if !r.settled() && r.allDone() { // an empty part is complete at once
			r.verifying = true
			verifyQ <- r
		}
	}
	e.mu.Unlock()

	var workers sync.WaitGroup
	for w := 0; w < e.workers(); w++ {
		workers.Go(func() { e.worker(ctx) })
	}
	stopCommit := make(chan struct{})
	commitDone := make(chan struct{})
	go func() {
		defer close(commitDone)
		if err := e.committer(stopCommit, verifyQ); err != nil {
			e.halt(err)
		}
	}()
	var verifiers sync.WaitGroup
	for range max(1, min(runtime.GOMAXPROCS(0), len(e.runs))) {
		verifiers.Go(func() { e.verifier(ctx, verifyQ) })
	}
	// Shutdown order: workers, then the committer's last commit (which
	// records the progress of the pieces they left and may still queue
	// parts), then the verifiers.
	workers.Wait()
	close(stopCommit)
	<-commitDone
	close(verifyQ)
	verifiers.Wait()
	for _, r := range e.runs {
		e.follows.Stop(&r.follow)
	}

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
		return e.interrupted(ctx)
	}
	return stop
}

// interrupted is the error of a fetch that ctx stopped. It says what the
// state keeps, every byte of which the next run does not pull again.
func (e *engine) interrupted(ctx context.Context) error {
	e.mu.Lock()
	kept, inPieces := e.st.Kept()
	e.mu.Unlock()
	return fmt.Errorf("%w (%v); state saved with %s of unfinished parts (%s of it inside unfinished pieces): run the same command again to continue",
		ErrInterrupted, context.Cause(ctx), units.FormatBytes(kept), units.FormatBytes(inPieces))
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
// worker should end. It resumes where the last hand-out stopped (first,
// cursor), so a hand-out costs no scan of the pieces handed out before.
func (e *engine) next(ctx context.Context) (job, bool) {
	for {
		e.mu.Lock()
		if e.stop != nil || ctx.Err() != nil {
			e.mu.Unlock()
			return job{}, false
		}
		for e.open < len(e.runs) && e.runs[e.open].settled() {
			e.open++
		}
		settled := e.open == len(e.runs)
		e.first = max(e.first, e.open)
		for ; e.first < len(e.runs); e.first++ {
			if j, ok := e.handOut(e.runs[e.first]); ok {
				e.mu.Unlock()
				return j, true
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

// handOut returns a job of run r, if it has one now. Callers hold e.mu.
func (e *engine) handOut(r *partRun) (job, bool) {
	if r.settled() || r.verifying {
		return job{}, false
	}
	if r.whole {
		// One stream, once no piece of the part is in flight.
		if !r.streaming && len(r.inflight) == 0 && r.anyMissing() {
			r.streaming = true
			return job{r: r, i: wholeJob}, true
		}
		return job{}, false
	}
	for ; r.cursor < r.n; r.cursor++ {
		if r.missing(r.cursor) && !r.inflight[r.cursor] {
			return e.newFlight(r, r.cursor), true
		}
	}
	return job{}, false
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
		e.finish(ctx, j, sum, err)
		e.awaitRoom(ctx)
	}
}

// awaitRoom waits while the commit backlog is full (or the run stops).
func (e *engine) awaitRoom(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for e.backlog >= e.backlogLimit() && e.stop == nil && ctx.Err() == nil {
		ch := e.changed
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		e.mu.Lock()
	}
}

// finish records the outcome of one piece: written (the next commit
// makes it durable), or back to missing with the progress it made kept
// for the next flight and the next commit.
func (e *engine) finish(ctx context.Context, j job, sum []byte, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := j.r
	defer e.signal()
	if err != nil {
		if pr, ok := e.headProgress(r, j.i, j.fl); ok && !errors.Is(err, errPieceMismatch) {
			if r.stopped == nil {
				r.stopped = map[int]chunk.Progress{}
			}
			r.stopped[j.i] = pr
			e.touch(r)
		}
	}
	if err != nil || r.whole { // a stream waits for the part's last piece
		e.reopen(r, j.i)
	}
	delete(r.inflight, j.i)
	if delete(r.flights, j.i); len(r.flights) == 0 {
		delete(e.flying, r)
		r.flights, r.inflight = nil, nil // 100,000 parts: no empty maps kept
	}
	switch {
	case err == nil:
		e.written(r, j.i, sum)
	case errors.Is(err, source.ErrRangeIgnored):
		if !r.whole {
			r.whole = true
			e.opts.Progress.Event(Event{Kind: chunk.EventWarning, Part: r.p.Name, Message: fmt.Sprintf("the server of %s ignores Range requests: fetching it in one stream", r.p.Name)})
		}
	default:
		e.failed(ctx, r, err)
	}
}

// written records a piece written to the part file for the next commit.
// Callers hold e.mu.
func (e *engine) written(r *partRun, i int, sum []byte) {
	if r.written == nil {
		r.written = map[int][]byte{}
	}
	if _, ok := r.written[i]; !ok {
		e.backlog++
	}
	r.written[i] = sum
	e.touch(r)
	if r.p.Status == chunk.Pending {
		r.p.Status = chunk.Partial
	}
	if e.backlog >= e.backlogLimit()/2 { // the commit's fsync overlaps the next writes
		select {
		case e.nudge <- struct{}{}:
		default: // a commit is already asked for
		}
	}
}

// finishWhole records the outcome of a whole-object stream.
func (e *engine) finishWhole(ctx context.Context, r *partRun, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	defer e.signal()
	r.streaming = false
	e.reopen(r, 0)
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
	case errors.Is(err, source.ErrChanged):
		e.opts.Progress.Event(Event{Kind: chunk.EventPartChanged, Part: r.p.Name, Message: fmt.Sprintf("part %s changed at the source during the run; starting it again", r.p.Name)})
		if e.stop == nil {
			e.stop = errRelist
		}
	case source.IsPermanent(err):
		if e.stop == nil {
			e.stop = err
		}
	case retry.Classify(err) == retry.Data:
		e.touch(r)
		r.dirty = true
		r.p.Status = chunk.Broken
		r.p.Error = e.explain(r.p.Name, err.Error())
		if e.repair {
			r.p.Error = e.explain(r.p.Name, e.badCopy(err))
		}
		e.opts.Progress.Event(Event{Kind: chunk.EventPartBroken, Part: r.p.Name, Message: fmt.Sprintf("part %s is broken: %s", r.p.Name, r.p.Error)})
	default:
		if e.stop == nil {
			e.stop = fmt.Errorf("%w: %v", ErrNetworkDown, err)
		}
	}
}
