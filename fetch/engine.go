package fetch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/internal/retry"
)

// engine moves the pieces of one set into DEST.
type engine struct {
	opts *Options
	src  source.Source

	mu      sync.Mutex
	st      *chunk.State
	runs    []*partRun
	changed chan struct{} // closed and replaced on every change, under mu
	stop    error         // why the workers stop early (nil while running)
	pulled  atomic.Int64  // bytes pulled in this call (Summary.Pulled); opts.Meter counts the run
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
	obj       source.Object
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

func (e *engine) dir() destDir { return destDir(e.opts.Dest) }

func (e *engine) partialPath(name string) string { return e.dir().partialPath(name) }

func (e *engine) finalPath(name string) string { return e.dir().finalPath(name) }

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
	case errors.Is(err, source.ErrRangeIgnored):
		if !r.whole {
			r.whole = true
			e.opts.Progress.Event(Event{Kind: chunk.EventWarning, Part: r.p.Name, Message: fmt.Sprintf("the server of %s ignores Range requests: fetching it in one stream", r.p.Name)})
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
		r.p.Status = chunk.Broken
		r.p.Error = err.Error()
		if e.repair {
			r.p.Error = e.badCopy(err)
		}
		e.opts.Progress.Event(Event{Kind: chunk.EventPartBroken, Part: r.p.Name, Message: fmt.Sprintf("part %s is broken: %s", r.p.Name, r.p.Error)})
	default:
		if e.stop == nil {
			e.stop = fmt.Errorf("%w: %v", ErrNetworkDown, err)
		}
	}
}
