package multi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"sync/atomic"
	"time"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/source/open"
	"github.com/haul-dev/haul/internal/retry"
)

// member is one copy: the primary or a mirror. The fields after objs are
// guarded by Source.mu.
type member struct {
	src     source.Source
	name    string // for messages, no secret
	conns   int    // the most reads at once; 0: healing reads only
	primary bool
	oo      source.OpenOptions
	base    string   // an http(s) base URL, opened on the first listing
	urls    []string // --mirror-list, opened on the first listing
	prefix  string
	// objs are the parts a mirror serves, by name (nil for the primary,
	// which serves every part of the set).
	objs map[string]source.Object

	busy   int
	reads  map[*read]bool
	rate   float64       // bytes per second per connection, smoothed; 0 = not measured
	answer time.Duration // time to the first byte, smoothed
	fails  int           // failures in a row
	rest   time.Time     // no read for speed before this, after a failure
	bytes  atomic.Int64  // bytes of parts delivered
	// noExec is set once the copy said it runs no commands: it is not
	// asked for hashes again.
	noExec bool
	// hashSem bounds the hash commands run on the copy at once.
	hashSem chan struct{}
}

// list returns the mirror's objects by name, opening a base URL or a URL
// list on first use with the set's part names.
func (m *member) list(ctx context.Context, parts []source.Object) (map[string]source.Object, error) {
	if m.src == nil {
		urls := m.urls
		if m.base != "" {
			for _, p := range parts {
				urls = append(urls, m.base+url.PathEscape(p.Name))
			}
		}
		if len(urls) == 0 {
			return nil, nil
		}
		src, err := openURLs(ctx, urls, m.oo)
		if err != nil {
			return nil, err
		}
		m.src = src
	}
	objs, err := m.src.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]source.Object, len(objs))
	for _, o := range objs {
		out[o.Name] = o
	}
	return out, nil
}

// openURLs opens one URL per part; the URLs that do not open (a part the
// mirror lacks) are left out rather than failing the mirror.
func openURLs(ctx context.Context, urls []string, oo source.OpenOptions) (source.Source, error) {
	op, err := open.OpenSources(ctx, urls, oo)
	if err == nil || len(urls) == 1 {
		if err != nil {
			return nil, err
		}
		return op.Source, nil
	}
	var good []string
	for _, u := range urls {
		if one, err := open.OpenSources(ctx, []string{u}, oo); err == nil {
			one.Source.Close()
			good = append(good, u)
		}
	}
	if len(good) == 0 {
		return nil, err
	}
	op, err = open.OpenSources(ctx, good, oo)
	if err != nil {
		return nil, err
	}
	return op.Source, nil
}

// has reports whether m serves part. Callers hold s.mu.
func (s *Source) has(m *member, part string) bool {
	if m.primary {
		return true
	}
	_, ok := m.objs[part]
	return ok
}

// objectAt is obj as copy m knows it (its URL, its version).
func (s *Source) objectAt(m *member, obj source.Object) (source.Object, bool) {
	if m.primary {
		return obj, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mo, ok := m.objs[obj.Name]
	return mo, ok
}

// ReadRange reads bytes of a part from the copy expected to deliver them
// first (or, for bytes that failed proof, the copy charged least); other
// objects are read from the primary.
func (s *Source) ReadRange(ctx context.Context, obj source.Object, off, n int64) (io.ReadCloser, error) {
	s.mu.Lock()
	_, isPart := s.set[obj.Name]
	s.mu.Unlock()
	if !isPart {
		return s.members[0].src.ReadRange(ctx, obj, off, n)
	}
	s.awaitVets(ctx, obj.Name, off, off+n)
	m, err := s.acquire(ctx, obj.Name, off, n)
	if err != nil {
		return nil, err
	}
	mo, ok := s.objectAt(m, obj)
	if !ok {
		s.done(m, nil, nil)
		return nil, &mirrorError{m.name, fmt.Errorf("part %s was dropped", obj.Name)}
	}
	asked := time.Now()
	rc, err := m.src.ReadRange(ctx, mo, off, n)
	if err != nil {
		s.done(m, nil, err)
		return nil, s.settle(ctx, m, obj.Name, err)
	}
	rd := &read{s: s, m: m, ctx: ctx, part: obj.Name, rc: rc, n: n, start: time.Now(), sample: time.Now(), answer: time.Since(asked)}
	s.mu.Lock()
	m.answer = smooth(m.answer, rd.answer)
	if m.reads == nil {
		m.reads = map[*read]bool{}
	}
	m.reads[rd] = true
	s.served(obj.Name, off, n, m)
	s.mu.Unlock()
	return rd, nil
}

func smooth(old, d time.Duration) time.Duration {
	if old == 0 {
		return d
	}
	return old + (d-old)/4
}

// acquire takes a connection of the copy to read [off, off+n) of part
// from, waiting (bounded) while the best one is busy. Reads waiting for
// the same copy get its connections in the order they came: the engine
// hands out pieces in order and a read that waits holds its piece, so a
// read overtaken again and again would start its piece last and hold the
// end of the run.
func (s *Source) acquire(ctx context.Context, part string, off, n int64) (*member, error) {
	limit := time.Now().Add(s.o.Timeout / 3)
	w := &waiter{}
	s.mu.Lock()
	s.queue = append(s.queue, w)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.queue = slices.DeleteFunc(s.queue, func(x *waiter) bool { return x == w })
		s.wake() // the next in line may take a connection now
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		now := time.Now()
		force := !now.Before(limit)
		m, want, heal := s.choose(part, off, n, now, force)
		w.want = want
		if m != nil && (heal != "" || force || s.inTurn(w, m)) {
			m.busy++
			s.mu.Unlock()
			if heal != "" {
				s.o.Event(part, heal)
			}
			return m, nil
		}
		ch := s.changed
		s.mu.Unlock()
		t := time.NewTimer(max(time.Millisecond, min(time.Until(limit), 100*time.Millisecond)))
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		t.Stop()
	}
}

// waiter is a read waiting in acquire, and the copy it waits for.
type waiter struct{ want *member }

// inTurn reports whether w may take a connection of m: fewer reads that
// came before it wait for m than m has free connections. Callers hold
// s.mu.
func (s *Source) inTurn(w *waiter, m *member) bool {
	ahead := 0
	for _, x := range s.queue {
		if x == w {
			break
		}
		if x.want == m {
			ahead++
		}
	}
	return ahead < m.conns-m.busy
}

// choose picks the copy for a read, nil to wait for a busy one; want is
// the copy it waits for (the one it picks when it waits for none). A read of
// bytes that failed proof goes to the first copy charged least for them,
// whatever its connections. Any other read goes to the copy with the
// earliest expected end (answer time, rate, the wait for a connection);
// with force, to the earliest one with a free connection. Callers hold
// s.mu.
func (s *Source) choose(part string, off, n int64, now time.Time, force bool) (m, want *member, heal string) {
	ps := s.parts[part]
	if ps != nil && ps.blamedIn(off, off+n) {
		m, heal := s.chooseHeal(part, ps, off, n)
		return m, nil, heal
	}
	var best, free, rested *member
	bestT, freeT := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	for _, m := range s.members {
		if m.conns == 0 || !s.has(m, part) {
			continue
		}
		if now.Before(m.rest) {
			if rested == nil || m.rest.Before(rested.rest) {
				rested = m
			}
			continue
		}
		t, ok := s.estimate(m, n, now)
		if t < bestT {
			best, bestT = m, t
		}
		if ok && t < freeT {
			free, freeT = m, t
		}
	}
	switch {
	case best == nil && rested != nil:
		// Every copy rests after failures: the one that rests least.
		if rested.busy < rested.conns {
			return rested, rested, ""
		}
		return nil, rested, ""
	case free != nil && (free == best || force):
		return free, free, ""
	}
	return nil, best, ""
}

// chooseHeal picks the copy to read bytes that failed proof from: the
// first charged least, and among those charged least one whose hash
// matched the references before one not asked (or that could not
// answer) — a matching copy whose bytes then fail on the way is charged
// and gives way to the others, not read until the tries end. A copy whose
// hash differs is not read; when every copy's does, the first charged
// least is read anyway (its proof fails again, and the engine's tries
// end). Callers hold s.mu.
func (s *Source) chooseHeal(part string, ps *partState, off, n int64) (*member, string) {
	var pick, fallback *member
	least, leastAny := math.MaxInt, math.MaxInt
	pickGood := false
	for _, m := range s.members {
		if !s.has(m, part) {
			continue
		}
		p := ps.penalty(m, off, off+n)
		if p < leastAny {
			fallback, leastAny = m, p
		}
		v := ps.vetOf(m, off, off+n)
		good := v == vetGood
		switch {
		case v == vetBad:
		case p < least, p == least && good && !pickGood:
			pick, least, pickGood = m, p, good
		}
	}
	if pick == nil {
		pick = fallback
	}
	if pick == nil {
		return nil, ""
	}
	why := ""
	if pickGood {
		why = ", whose hash matches"
	}
	return pick, fmt.Sprintf("part %s bytes %d-%d failed proof from %s; reading them from %s%s", part, off, off+n-1, ps.blamedBy(off, off+n), pick.name, why)
}

// assumedAnswer is a copy's answer time before one is measured.
const assumedAnswer = 100 * time.Millisecond

// estimate is when copy m would deliver n bytes if asked now, and whether
// it has a free connection. A mirror not measured yet has one (it is
// measured before it gets more) and is assumed as fast as the fastest.
// Callers hold s.mu.
func (s *Source) estimate(m *member, n int64, now time.Time) (time.Duration, bool) {
	rate, conns := m.rate, m.conns
	if rate == 0 {
		for _, o := range s.members {
			rate = max(rate, o.rate)
		}
		if !m.primary {
			conns = 1
		}
	}
	if rate == 0 {
		rate = 1 << 20 // nothing measured yet: every copy alike
	}
	answer := m.answer
	if answer == 0 {
		answer = assumedAnswer
	}
	t := answer + time.Duration(float64(n)/rate*float64(time.Second))
	if m.busy < conns {
		return t, true
	}
	wait := time.Duration(math.MaxInt64)
	for rd := range m.reads {
		left := float64(rd.n - rd.got.Load())
		wait = min(wait, time.Duration(left/rate*float64(time.Second)))
	}
	if wait == time.Duration(math.MaxInt64) {
		wait = answer
	}
	return wait + t, false
}

// done ends a read of m: its connection is free, its failure (not the
// caller's cancel) makes it rest with a growing pause, a success resets
// that. Its rate is sampled by the read itself.
func (s *Source) done(m *member, rd *read, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m.busy--
	delete(m.reads, rd)
	switch {
	case err == nil:
		m.fails = 0
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
	default:
		m.fails++
		m.rest = time.Now().Add(min(100*time.Millisecond<<min(m.fails, 10), 30*time.Second))
	}
	s.wake()
}

// wake tells the reads waiting for a copy that something changed.
// Callers hold s.mu.
func (s *Source) wake() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// settle is what the engine sees of a copy's failure. The primary's
// errors are the engine's to judge. A mirror's never stop the run: they
// are transient, and a mirror whose part changed, went away or that
// ignores Range is dropped for that part.
func (s *Source) settle(ctx context.Context, m *member, part string, err error) error {
	if m.primary || ctx.Err() != nil || err == nil || err == io.EOF {
		return err
	}
	if errors.Is(err, source.ErrChanged) || source.IsPermanent(err) || errors.Is(err, source.ErrRangeIgnored) {
		s.mu.Lock()
		delete(m.objs, part)
		s.mu.Unlock()
		s.warnOnce(m.name+"\x00drop\x00"+part, part, fmt.Sprintf("mirror %s: part %s: %v; not using it for that part", m.name, part, err))
	}
	return &mirrorError{m.name, err}
}

// mirrorError is a mirror's failure as the engine sees it: transient,
// and nothing the engine reacts to on its own (ErrChanged, ErrNotFound)
// is found in it.
type mirrorError struct {
	mirror string
	err    error
}

func (e *mirrorError) Error() string { return "mirror " + e.mirror + ": " + e.err.Error() }

// RetryClass implements retry.Classed.
func (e *mirrorError) RetryClass() retry.Class { return retry.Transient }

// read is a read of one copy: it counts the bytes for the copy, samples
// its rate every half second, and frees the connection on Close.
type read struct {
	s      *Source
	m      *member
	ctx    context.Context
	part   string
	rc     io.ReadCloser
	n      int64
	got    atomic.Int64
	start  time.Time
	sample time.Time // last rate sample, and the bytes then
	at     int64
	err    error
	closed bool
	answer time.Duration // from asking the copy to its answer
}

// AnswerTime is how long the copy took to answer (source.Answerer).
func (r *read) AnswerTime() time.Duration { return r.answer }

// A read samples its copy's rate every sampleEvery, the first time after
// firstSample: a mirror not measured yet gets one read until it is, so
// the sooner, the sooner it gets its share.
const (
	sampleEvery = 500 * time.Millisecond
	firstSample = 150 * time.Millisecond
)

func (r *read) Read(p []byte) (int, error) {
	k, err := r.rc.Read(p)
	if k > 0 {
		r.got.Add(int64(k))
		r.m.bytes.Add(int64(k))
		if since := time.Since(r.sample); since >= sampleEvery || r.at == 0 && since >= firstSample {
			r.measure()
		}
	}
	if err != nil && err != io.EOF {
		r.err = err
		err = r.s.settle(r.ctx, r.m, r.part, err)
	}
	return k, err
}

// measure folds the rate since the last sample into the copy's.
func (r *read) measure() {
	now := time.Now()
	el := now.Sub(r.sample).Seconds()
	got := r.got.Load()
	if el <= 0 {
		return
	}
	rate := float64(got-r.at) / el
	r.sample, r.at = now, got
	r.s.mu.Lock()
	if r.m.rate == 0 {
		r.m.rate = rate
	} else {
		r.m.rate += (rate - r.m.rate) / 4
	}
	r.s.mu.Unlock()
}

// NoSplit is the copy's: a read of an SFTP copy is not split
// (source.NoSplitter).
func (r *read) NoSplit() bool {
	ns, ok := r.m.src.(source.NoSplitter)
	return ok && ns.NoSplit()
}

func (r *read) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if time.Since(r.sample) >= 50*time.Millisecond || r.m.rate == 0 && r.got.Load() > 0 {
		r.measure()
	}
	err := r.rc.Close()
	r.s.done(r.m, r, r.err)
	return err
}
