// The endgame: when no piece is left to hand out, an idle connection
// takes the second half of the in-flight span that would end last, so
// that the last pieces of a run do not finish one by one, each at one
// connection's rate, while the link stands half empty.
//
// A split closes the owner's response early, and the bytes already on
// the way to it are pulled for nothing: about the rate times the round
// trip on a slow link, but up to the socket buffers on a fast one, where
// a split gains nothing anyway. So only spans that still need a while
// at the rate they have shown are split: a few times the time a request
// takes to answer, which the engine measures.

package fetch

import (
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/source"
)

// span is a byte range of a piece that one worker fetches. A split lowers
// end; mu orders that with the owner's writes, so no byte is written by
// two workers and the owner stops at the new end.
type span struct {
	mu       sync.Mutex
	pos, end int64 // absolute offsets in the part: next byte to write, end
	from     int64 // pos at start, for the rate
	start    time.Time
	// waiting is set while the span waits for its read to be answered;
	// noSplit while it is read from a copy whose reads must not be split
	// (source.NoSplitter, per read).
	waiting, noSplit bool
}

func newSpan(off, end int64) *span {
	return &span{pos: off, end: end, from: off, start: time.Now()}
}

// asking marks the span as waiting for its read to be answered (or, with
// false, no longer): it is not split meanwhile, as it shows no rate yet
// and a source with copies may still be choosing where to read it.
func (s *span) asking(v bool) {
	s.mu.Lock()
	s.waiting = v
	s.mu.Unlock()
}

// answered starts the span's rate afresh once its read is answered (the
// wait for a connection or an answer is no rate of the copy reading it);
// noSplit is whether this read must not be split.
func (s *span) answered(noSplit bool) {
	s.mu.Lock()
	s.waiting, s.noSplit = false, noSplit
	s.start, s.from = time.Now(), s.pos
	s.mu.Unlock()
}

func (s *span) left() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end - s.pos
}

// eta is how long the span still needs at the rate it has shown, 0 while
// it is younger than minAge. Callers hold s.mu.
func (s *span) eta(now time.Time, minAge time.Duration) time.Duration {
	age, done := now.Sub(s.start), s.pos-s.from
	switch {
	case age < minAge:
		return 0
	case done <= 0:
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(float64(s.end-s.pos) / float64(done) * float64(age))
}

// rate is the bytes per second the span has shown, 0 while it is younger
// than minAge. Callers hold s.mu.
func (s *span) rate(now time.Time, minAge time.Duration) float64 {
	age := now.Sub(s.start)
	if age < minAge {
		return 0
	}
	return float64(s.pos-s.from) / age.Seconds()
}

// flight is a piece in flight: one span, or several after splits. It is
// recorded when its last span ends. Fields are guarded by engine.mu.
type flight struct {
	off, n int64
	spans  []*span
	// head is the span that starts at the piece's first byte (or where
	// its durable progress ended), and h the digest of the bytes from the
	// piece's start to head.pos, fed by head's worker under head.mu; nil
	// while a resumed prefix is being read back. They give the progress
	// each commit records (headProgress).
	head *span
	h    hash.Hash
	// resume is the durable progress the flight starts from: its bytes
	// are read back into h before the head span pulls (resumeHead).
	resume chunk.Progress
	saved  int64 // the progress bytes the state holds for the piece
	// split is set once a span of the piece was split: the piece's digest
	// is then read back from the file, as no worker saw all its bytes.
	split bool
	err   error // the first span's failure; the piece fails with it
}

const (
	// minSplit is the fewest bytes a span must have left to be split:
	// each half costs a request.
	minSplit = 8 << 10
	// minSmallSplitTime is the least time a span with fewer than minSplit
	// bytes left must still need to be split (8 KiB at 8 KB/s is 1 s).
	minSmallSplitTime = 500 * time.Millisecond
	// minSplitTime is the least time a span must still need to be split,
	// and at least four answer times (splitTimes).
	minSplitTime = 100 * time.Millisecond
	// minSplitAge is how long a span runs before its rate is trusted, and
	// at least two answer times.
	minSplitAge = 50 * time.Millisecond
	// assumedAnswer is the answer time before one is measured.
	assumedAnswer = 100 * time.Millisecond
	// splitPoll is how often an idle worker looks again for a span to
	// split while spans are too young or too quick to tell.
	splitPoll = 100 * time.Millisecond
)

// newFlight puts piece i of r in flight with one span over all of it.
// Callers hold e.mu.
func (e *engine) newFlight(r *partRun, i int) job {
	off, n := chunk.PieceRange(r.p.Size, e.st.PieceSize, i)
	pr, ok := r.stopped[i]
	if ok {
		delete(r.stopped, i) // this flight's own progress supersedes it
	} else {
		pr, ok = r.p.ProgressOf(i)
	}
	fl := &flight{off: off, n: n}
	if ok && pr.Bytes > 0 && pr.Bytes < n {
		fl.resume, fl.saved = pr, pr.Bytes
	} else {
		fl.h = chunk.NewPieceHash(r.p.PieceHash)
	}
	sp := newSpan(off+fl.resume.Bytes, off+n)
	fl.spans, fl.head = []*span{sp}, sp
	if r.flights == nil {
		r.flights, r.inflight = map[int]*flight{}, map[int]bool{}
	}
	r.flights[i] = fl
	r.inflight[i] = true
	e.flying[r] = true
	e.touch(r)
	return job{r: r, i: i, fl: fl, sp: sp}
}

// headProgress is how far piece i has got from its start: the bytes up
// to its head span's position, and their digest. Callers hold e.mu.
func (e *engine) headProgress(r *partRun, i int, fl *flight) (chunk.Progress, bool) {
	if fl == nil || fl.h == nil || fl.head == nil {
		return chunk.Progress{}, false
	}
	sp := fl.head
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.pos <= fl.off || sp.pos >= fl.off+fl.n {
		return chunk.Progress{}, false
	}
	return chunk.Progress{Piece: i, Bytes: sp.pos - fl.off, Algo: r.p.PieceHash, Sum: fl.h.Sum(nil)}, true
}

// resumeHead returns the digest the head span of fl feeds. For a flight
// that resumes durable progress it first reads that prefix back from the
// part file and checks it against the digest recorded; when it does not
// match (the file changed since), the piece starts from its first byte.
func (e *engine) resumeHead(r *partRun, fl *flight, buf []byte) (hash.Hash, error) {
	e.mu.Lock()
	h, pr := fl.h, fl.resume
	e.mu.Unlock()
	if h != nil {
		return h, nil
	}
	h, ok, err := chunk.ResumeDigest(r.f, fl.off, pr, r.p.PieceHash, buf)
	if err != nil {
		return nil, source.Permanent(fmt.Errorf("%s: %w", e.partialPath(r.p.Name), err))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !ok {
		sp := fl.head
		sp.mu.Lock()
		sp.pos, sp.from = fl.off, fl.off
		sp.mu.Unlock()
		h.Reset()
		fl.saved = 0
	}
	fl.h, fl.resume = h, chunk.Progress{}
	return h, nil
}

// steal splits the span that would end last among the pieces in flight
// and returns a job for its second half. Without a span worth splitting
// it returns false, and busy tells whether spans run that may become
// worth it. Callers hold e.mu.
func (e *engine) steal() (j job, ok, busy bool) {
	if ns, ok := e.src.(source.NoSplitter); ok && ns.NoSplit() {
		return job{}, false, false
	}
	var best job
	var latest time.Duration
	var fastest, bestRate float64
	now := time.Now()
	minAge, minTime := e.splitTimes()
	for r := range e.flying {
		if r.settled() || r.verifying || r.whole {
			continue
		}
		for i, fl := range r.flights {
			if fl.err != nil {
				continue
			}
			for _, sp := range fl.spans {
				sp.mu.Lock()
				left, eta, rate, waiting, whole := sp.end-sp.pos, sp.eta(now, minAge), sp.rate(now, minAge), sp.waiting, sp.noSplit
				sp.mu.Unlock()
				fastest = max(fastest, rate)
				if waiting {
					busy = true // worth a look once answered
					continue
				}
				if whole || left < minSplit && eta < minSmallSplitTime {
					continue
				}
				busy = true
				if eta >= minTime && eta > latest {
					latest, best, bestRate = eta, job{r: r, i: i, fl: fl, sp: sp}, rate
				}
			}
		}
	}
	if best.sp == nil {
		return job{}, false, busy
	}
	sp := best.sp
	sp.mu.Lock()
	left := sp.end - sp.pos
	if left < minSplit/8 || sp.waiting || sp.noSplit { // the owner moved on meanwhile
		sp.mu.Unlock()
		return job{}, false, true
	}
	half := newSpan(sp.pos+splitKeep(left, bestRate, fastest), sp.end)
	sp.end = half.pos
	sp.mu.Unlock()
	best.fl.split = true
	best.fl.spans = append(best.fl.spans, half)
	best.sp = half
	return best, true, true
}

// splitKeep is how many of the left bytes a span's owner keeps when it is
// split: what it delivers, at the rate it shows, while the new span, at
// the fastest rate any span shows (where a source with copies sends it),
// delivers the rest. Half among equals or when a rate is unknown; little
// when the owner is a slow mirror, but at least a sixteenth.
func splitKeep(left int64, owner, fastest float64) int64 {
	if owner <= 0 || fastest <= owner {
		return left / 2
	}
	return max(int64(float64(left)*owner/(owner+fastest)), left/16)
}

// answered records how long a request took to answer (from the request
// to its headers), smoothed over the run.
func (e *engine) answered(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.answer == 0 {
		e.answer = d
		return
	}
	e.answer += (d - e.answer) / 4
}

// splitTimes are the age before a span's rate is trusted and the least
// time it must still need to be split. Callers hold e.mu.
func (e *engine) splitTimes() (minAge, minTime time.Duration) {
	a := e.answer
	if a == 0 {
		a = assumedAnswer
	}
	return max(minSplitAge, 2*a), max(minSplitTime, 4*a)
}

// leave ends span sp of fl, with err when it failed. It reports whether
// it was the piece's last span, and the piece's first failure.
func (e *engine) leave(fl *flight, sp *span, err error) (last bool, ferr error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fl.spans = slices.DeleteFunc(fl.spans, func(s *span) bool { return s == sp })
	if err != nil && fl.err == nil {
		fl.err = err
	}
	return len(fl.spans) == 0, fl.err
}

// again puts the whole of fl back on one new span, for the worker that
// fetches it again after its digest did not match. Callers are the last
// span's worker, so no other span of fl runs.
func (e *engine) again(r *partRun, fl *flight) (*span, hash.Hash) {
	e.mu.Lock()
	defer e.mu.Unlock()
	sp := newSpan(fl.off, fl.off+fl.n)
	fl.spans, fl.head, fl.split, fl.err = []*span{sp}, sp, false, nil
	fl.h = chunk.NewPieceHash(r.p.PieceHash)
	return sp, fl.h
}

// readBack computes the digest of a piece from the part file, once all
// its spans are written.
func (e *engine) readBack(r *partRun, fl *flight, buf []byte) ([]byte, error) {
	h := chunk.NewPieceHash(r.p.PieceHash)
	if _, err := io.CopyBuffer(h, io.NewSectionReader(r.f, fl.off, fl.n), buf); err != nil {
		return nil, source.Permanent(fmt.Errorf("read back %s: %w", e.partialPath(r.p.Name), err))
	}
	return h.Sum(nil), nil
}

// errSpanEnded tells a worker that its span ended and another span of the
// piece, still running, will record the piece.
var errSpanEnded = errors.New("span ended; the piece's last span records it")

// quit ends span sp of fl with err: the piece's first failure when sp was
// its last span, else errSpanEnded.
func (e *engine) quit(fl *flight, sp *span, err error) error {
	if last, ferr := e.leave(fl, sp, err); last {
		return ferr
	}
	return errSpanEnded
}
