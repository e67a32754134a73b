package testenv

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// FaultServer serves the files under a directory over HTTP on 127.0.0.1,
// with GET/HEAD, single byte ranges, strong ETags, Last-Modified and the
// conditional headers If-Match, If-None-Match, If-Range,
// If-Unmodified-Since and If-Modified-Since. Faults are switched on with
// FaultOptions at creation or at any time with Set, and every byte of
// response body it writes is counted.
//
// It does not depend on package testing: `haul demo` and benchmarks use it
// as well as tests.
type FaultServer struct {
	dir     string
	root    *os.Root
	ln      net.Listener
	srv     *http.Server
	baseURL string

	ctx      context.Context // cancelled by Close: ends stalls and rate waits
	cancel   context.CancelFunc
	handlers sync.WaitGroup
	served   chan struct{}
	close    sync.Once

	mu     sync.Mutex // guards st, rng, flips, counts
	st     faultState
	rng    *rand.Rand
	flips  []Flip
	counts FaultCounts

	connRate  atomic.Int64                 // bytes/s per response, 0 = unlimited
	totalRate atomic.Int64                 // bytes/s over all responses, 0 = unlimited
	total     atomic.Pointer[rate.Limiter] // nil when totalRate is 0

	requests atomic.Int64
	active   atomic.Int64
	bytes    atomic.Int64
	files    sync.Map // name → *atomic.Int64
}

// When selects the requests a fault applies to. The zero When selects every
// request the fault can apply to. The conditions combine: a request is
// selected when it matches Name, is an Every-th one, passes the Prob draw,
// and fewer than Max were selected before.
//
// Requests are counted per fault, and only those the fault can apply to
// (GET answers with a body of the right kind: ShiftContentRange counts only
// 206 answers, ResetAfter only bodies longer than its offset). FailWith
// counts every request, HEAD too; a request it fails is not seen by the
// other faults.
type When struct {
	// Name limits the fault to one file (its path under the root, as in
	// URL); "" means every file.
	Name string
	// Every selects only every Every-th counted request (the Every-th,
	// 2×Every-th, …); 0 or 1 selects each.
	Every int
	// Max caps how many requests the fault is applied to; 0 is no cap.
	Max int
	// Prob selects a request with this probability, drawn from the
	// server's seeded random source; 0 means always.
	Prob float64
}

type rule struct {
	when    When
	seen    int
	applied int
}

func newRule(w When) *rule { return &rule{when: w} }

// pick reports whether the fault applies to this request. Callers hold mu
// and call it only for requests the fault can apply to.
func (r *rule) pick(name string, rng *rand.Rand) bool {
	if r == nil || (r.when.Name != "" && r.when.Name != name) {
		return false
	}
	r.seen++
	if r.when.Every > 1 && r.seen%r.when.Every != 0 {
		return false
	}
	if r.when.Max > 0 && r.applied >= r.when.Max {
		return false
	}
	if r.when.Prob > 0 && rng.Float64() >= r.when.Prob {
		return false
	}
	r.applied++
	return true
}

type offsetRule struct {
	rule
	n int64
}

type stallRule struct {
	rule
	after int64
	d     time.Duration
}

type failRule struct {
	rule
	code int
}

type flipSpot struct {
	off   int64
	times int
	done  int
}

// faultState is the switchable configuration, guarded by FaultServer.mu.
type faultState struct {
	connRate, totalRate int64
	seed                *uint64

	fail        *failRule
	ignoreRange *rule
	shiftCR     *offsetRule
	shiftBody   *offsetRule
	gzip        *rule
	short       *offsetRule
	reset       *offsetRule
	stall       *stallRule
	flipRandom  *rule
	flipSpots   map[string][]*flipSpot
}

// FaultOption configures a FaultServer; pass it to NewFaultServer or Set.
// Setting a fault again replaces it (and restarts its request counting),
// except FlipBits, which adds spots.
type FaultOption func(*faultState)

// ConnRate caps each response body at bps bytes per second (0: no cap).
// HTTP/1.1 serves one response at a time per connection, so this is the
// per-connection cap of a slow link.
func ConnRate(bps int64) FaultOption {
	return func(s *faultState) { s.connRate = max(bps, 0) }
}

// TotalRate caps all response bodies together at bps bytes per second (0:
// no cap), like the uplink of a slow server.
func TotalRate(bps int64) FaultOption {
	return func(s *faultState) { s.totalRate = max(bps, 0) }
}

// Seed reseeds the random source used by When.Prob and FlipRandom, so a
// run can be repeated. The default seed is 1.
func Seed(seed uint64) FaultOption {
	return func(s *faultState) { s.seed = &seed }
}

// FailWith answers selected requests (GET and HEAD) with the status code
// (500, 503, …) and no file data. When{Max: k} fails the first k requests.
func FailWith(code int, w When) FaultOption {
	return func(s *faultState) { s.fail = &failRule{rule: rule{when: w}, code: code} }
}

// IgnoreRange answers selected range requests with 200 and the whole file,
// as a server without range support does.
func IgnoreRange(w When) FaultOption {
	return func(s *faultState) { s.ignoreRange = newRule(w) }
}

// ShiftContentRange makes selected 206 answers claim a Content-Range moved
// by delta bytes while sending the bytes that were asked for.
func ShiftContentRange(delta int64, w When) FaultOption {
	return func(s *faultState) { s.shiftCR = &offsetRule{rule: rule{when: w}, n: delta} }
}

// ShiftBody makes selected answers send the bytes delta further on in the
// file (or delta back when that would run past its end) under correct
// headers. Answers covering the whole file cannot be shifted.
func ShiftBody(delta int64, w When) FaultOption {
	return func(s *faultState) { s.shiftBody = &offsetRule{rule: rule{when: w}, n: delta} }
}

// GzipBody sends selected bodies gzip-compressed on the fly with
// Content-Encoding: gzip and no Content-Length, whatever the request's
// Accept-Encoding says. A 206 keeps the Content-Range of the uncompressed
// bytes.
func GzipBody(w When) FaultOption {
	return func(s *faultState) { s.gzip = newRule(w) }
}

// ShortBody makes selected answers promise the full Content-Length, send
// missing bytes fewer (at least one fewer) and close the connection.
func ShortBody(missing int64, w When) FaultOption {
	return func(s *faultState) { s.short = &offsetRule{rule: rule{when: w}, n: max(missing, 1)} }
}

// ResetAfter resets the connection (TCP RST) of selected answers after
// after bytes of body; after 0 resets right after the headers. Bodies of
// at most after bytes are not affected.
func ResetAfter(after int64, w When) FaultOption {
	return func(s *faultState) { s.reset = &offsetRule{rule: rule{when: w}, n: max(after, 0)} }
}

// StallAfter makes selected answers stop sending for d after after bytes of
// body, then go on (unless the client has gone or the server is closed).
func StallAfter(after int64, d time.Duration, w When) FaultOption {
	return func(s *faultState) {
		s.stall = &stallRule{rule: rule{when: w}, after: max(after, 0), d: d}
	}
}

// FlipBits flips the lowest bit of the bytes at the given offsets of file
// name the first times times each byte is sent; later sends are correct,
// so a re-fetch gets good bytes. Calls add up.
func FlipBits(name string, times int, offsets ...int64) FaultOption {
	return func(s *faultState) {
		if s.flipSpots == nil {
			s.flipSpots = make(map[string][]*flipSpot)
		}
		for _, off := range offsets {
			s.flipSpots[name] = append(s.flipSpots[name], &flipSpot{off: off, times: times})
		}
	}
}

// FlipRandom flips one random bit of one random byte in each selected body
// (drawn from the seeded random source). Use When.Max to bound the number
// of flips and Flips to learn where they were.
func FlipRandom(w When) FaultOption {
	return func(s *faultState) { s.flipRandom = newRule(w) }
}

// Flip records one damaged byte sent by a FaultServer.
type Flip struct {
	Name   string // file, as in URL
	Offset int64  // offset in the file of the damaged byte
	Mask   byte   // the bits flipped (XOR)
}

// FaultCounts tells how often each fault really happened.
type FaultCounts struct {
	Failed            int64 // answers with a FailWith status
	IgnoredRange      int64 // 200 answers to range requests
	WrongContentRange int64 // 206 answers with a shifted Content-Range
	WrongBody         int64 // answers with shifted bytes
	Gzipped           int64 // gzip-encoded answers
	Short             int64 // bodies cut short
	Resets            int64 // connections reset mid-body
	Stalls            int64 // stalls started
	Flips             int64 // bytes flipped
}

// NewFaultServer starts serving the files under root on 127.0.0.1. It
// panics if root cannot be opened or no loopback port is free, as
// httptest.NewServer does. Close it when done.
func NewFaultServer(root string, opts ...FaultOption) *FaultServer {
	r, err := os.OpenRoot(root)
	if err != nil {
		panic(fmt.Sprintf("testenv: fault server: %v", err))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = r.Close()
		panic(fmt.Sprintf("testenv: fault server: listen: %v", err))
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &FaultServer{
		dir:     root,
		root:    r,
		ln:      ln,
		baseURL: "http://" + ln.Addr().String(),
		ctx:     ctx,
		cancel:  cancel,
		served:  make(chan struct{}),
		rng:     rand.New(rand.NewPCG(1, 1)),
	}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.handle),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	s.Set(opts...)
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln)
	}()
	return s
}

// Set applies options to the running server. Requests already being
// answered keep the faults they were given; rate caps apply to them from
// their next write on.
func (s *FaultServer) Set(opts ...FaultOption) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range opts {
		o(&s.st)
	}
	if s.st.seed != nil {
		s.rng = rand.New(rand.NewPCG(*s.st.seed, *s.st.seed))
		s.st.seed = nil
	}
	s.syncRatesLocked()
}

// ClearFaults switches every fault and rate cap off. Counters, the record
// of flips and the random source are kept.
func (s *FaultServer) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = faultState{}
	s.syncRatesLocked()
}

// SetConnRate changes the per-response cap (bytes/s, 0: none).
func (s *FaultServer) SetConnRate(bps int64) { s.Set(ConnRate(bps)) }

// SetTotalRate changes the cap over all responses (bytes/s, 0: none).
func (s *FaultServer) SetTotalRate(bps int64) { s.Set(TotalRate(bps)) }

func (s *FaultServer) syncRatesLocked() {
	s.connRate.Store(s.st.connRate)
	if s.totalRate.Swap(s.st.totalRate) == s.st.totalRate {
		return
	}
	if s.st.totalRate <= 0 {
		s.total.Store(nil)
		return
	}
	s.total.Store(rate.NewLimiter(rate.Limit(s.st.totalRate), burstFor(s.st.totalRate)))
}

const bufSize = 64 << 10

// burstFor is the limiter burst, and so the largest write, for a rate: a
// fiftieth of a second of data, so capped streams stay smooth.
func burstFor(bps int64) int {
	return int(min(max(bps/50, 1), bufSize))
}

// URL returns the URL of file name (a slash-separated path under the root).
func (s *FaultServer) URL(name string) string {
	segs := strings.Split(strings.TrimPrefix(name, "/"), "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return s.baseURL + "/" + strings.Join(segs, "/")
}

// Root returns the directory the server serves.
func (s *FaultServer) Root() string { return s.dir }

// Requests returns how many requests the server has received.
func (s *FaultServer) Requests() int64 { return s.requests.Load() }

// WaitIdle waits until no request is being answered, for at most timeout,
// and reports whether that happened. After a client was killed, it lets
// the server notice before the counters are read: a body write that then
// fails is taken back from them.
func (s *FaultServer) WaitIdle(timeout time.Duration) bool {
	const poll = 5 * time.Millisecond
	for i := int64(0); i <= int64(timeout/poll); i++ {
		if s.active.Load() == 0 {
			return true
		}
		time.Sleep(poll)
	}
	return s.active.Load() == 0
}

// BytesSent returns the response body bytes written to connections (after
// gzip, when that fault is on), over all files. Error pages are not
// counted. A write in progress is counted in full until it fails, so the
// value is never below what clients received, and exact once the server is
// idle (WaitIdle).
func (s *FaultServer) BytesSent() int64 { return s.bytes.Load() }

// FileBytesSent returns the response body bytes written for file name.
func (s *FaultServer) FileBytesSent(name string) int64 {
	if c, ok := s.files.Load(name); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

// ZeroCounters sets the request and byte counters to zero (fault counts and
// flips are kept).
func (s *FaultServer) ZeroCounters() {
	s.requests.Store(0)
	s.bytes.Store(0)
	s.files.Range(func(_, v any) bool {
		v.(*atomic.Int64).Store(0)
		return true
	})
}

// Faults returns how often each fault has happened so far.
func (s *FaultServer) Faults() FaultCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// Flips returns every byte flipped so far, in the order they were sent.
func (s *FaultServer) Flips() []Flip {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Flip(nil), s.flips...)
}

// Close stops the server: it ends stalls and rate waits, closes every
// connection and waits for the handlers to return.
func (s *FaultServer) Close() {
	s.close.Do(func() {
		s.cancel()
		_ = s.srv.Close()
		<-s.served
		s.handlers.Wait()
		_ = s.root.Close()
	})
}

func (s *FaultServer) fileCounter(name string) *atomic.Int64 {
	if c, ok := s.files.Load(name); ok {
		return c.(*atomic.Int64)
	}
	c, _ := s.files.LoadOrStore(name, new(atomic.Int64))
	return c.(*atomic.Int64)
}

// plan is what one GET answer does, decided once under mu.
type plan struct {
	status    int
	start, n  int64 // bytes asked for (the whole file for 200)
	src       int64 // where the sent bytes come from
	crShift   int64
	gzip      bool
	limit     int64 // body bytes sent before the end (n unless short)
	short     bool
	resetAt   int64 // -1: none
	stallAt   int64 // -1: none
	stallFor  time.Duration
	randFlip  int64 // offset in the body, -1: none
	randMask  byte
	flipSpots []*flipSpot
}

func (s *FaultServer) handle(w http.ResponseWriter, r *http.Request) {
	s.handlers.Add(1)
	defer s.handlers.Done()
	s.active.Add(1)
	defer s.active.Add(-1)
	s.requests.Add(1)

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")

	s.mu.Lock()
	failCode := 0
	if f := s.st.fail; f != nil && f.pick(name, s.rng) {
		failCode = f.code
		s.counts.Failed++
	}
	s.mu.Unlock()
	if failCode != 0 {
		http.Error(w, "injected failure", failCode)
		return
	}

	if name == "" {
		http.NotFound(w, r)
		return
	}
	f, err := s.root.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	size := fi.Size()
	mtime := fi.ModTime().UTC().Truncate(time.Second)
	etag := fmt.Sprintf(`"%x-%x"`, size, fi.ModTime().UnixNano())

	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Last-Modified", mtime.Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")

	if code := checkPreconditions(r, etag, mtime); code != 0 {
		if code == http.StatusPreconditionFailed {
			http.Error(w, "precondition failed", code)
		} else {
			w.WriteHeader(code)
		}
		return
	}

	p := plan{status: http.StatusOK, n: size, resetAt: -1, stallAt: -1, randFlip: -1}
	rangeAsked := false
	if rh := r.Header.Get("Range"); rh != "" && rangeApplies(r, etag, mtime) {
		start, end, ok, unsat := parseRange(rh, size)
		switch {
		case unsat:
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			http.Error(w, "range not satisfiable", http.StatusRequestedRangeNotSatisfiable)
			return
		case ok:
			rangeAsked = true
			p.status, p.start, p.n = http.StatusPartialContent, start, end-start+1
		}
	}
	p.src, p.limit = p.start, p.n
	if r.Method == http.MethodGet {
		s.planFaults(name, size, rangeAsked, &p)
	}

	h.Set("Content-Type", "application/octet-stream")
	if p.status == http.StatusPartialContent {
		a := p.start + p.crShift
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, a+p.n-1, size))
	}
	if p.gzip {
		h.Set("Content-Encoding", "gzip")
	} else {
		h.Set("Content-Length", strconv.FormatInt(p.n, 10))
	}
	w.WriteHeader(p.status)
	if r.Method == http.MethodHead {
		return
	}
	s.sendBody(w, r, f, name, &p)
}

// planFaults decides which faults this GET answer gets.
func (s *FaultServer) planFaults(name string, size int64, rangeAsked bool, p *plan) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &s.st
	if rangeAsked && st.ignoreRange.pick(name, s.rng) {
		p.status, p.start, p.n, p.src = http.StatusOK, 0, size, 0
		s.counts.IgnoredRange++
	}
	if r := st.shiftCR; r != nil && p.status == http.StatusPartialContent && r.n != 0 && r.pick(name, s.rng) {
		p.crShift = r.n
		s.counts.WrongContentRange++
	}
	if r := st.shiftBody; r != nil && r.n != 0 {
		d := r.n
		if p.start+d < 0 || p.start+d+p.n > size {
			d = -d
		}
		if p.start+d >= 0 && p.start+d+p.n <= size && r.pick(name, s.rng) {
			p.src = p.start + d
			s.counts.WrongBody++
		}
	}
	if st.gzip.pick(name, s.rng) {
		p.gzip = true
		s.counts.Gzipped++
	}
	p.limit = p.n
	if r := st.short; r != nil && p.n > 0 && r.pick(name, s.rng) {
		p.limit = max(p.n-r.n, 0)
		p.short = true
		s.counts.Short++
	}
	if r := st.reset; r != nil && r.n < p.n && r.pick(name, s.rng) {
		p.resetAt = r.n
	}
	if r := st.stall; r != nil && r.after < p.n && r.pick(name, s.rng) {
		p.stallAt, p.stallFor = r.after, r.d
	}
	if p.n > 0 && st.flipRandom.pick(name, s.rng) {
		p.randFlip = s.rng.Int64N(p.n)
		p.randMask = 1 << s.rng.IntN(8)
	}
	for _, sp := range st.flipSpots[name] {
		if sp.off >= p.src && sp.off < p.src+p.n && sp.done < sp.times {
			p.flipSpots = append(p.flipSpots, sp)
		}
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// sendBody writes the planned body: bytes [p.src, p.src+p.limit) of f with
// the planned flips, stalls, rate caps, gzip, short end or reset.
func (s *FaultServer) sendBody(w http.ResponseWriter, r *http.Request, f *os.File, name string, p *plan) {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	cw := &countingWriter{w: w, total: &s.bytes, file: s.fileCounter(name)}
	var out io.Writer = cw
	var gz *gzip.Writer
	if p.gzip {
		gz, _ = gzip.NewWriterLevel(cw, gzip.BestSpeed) // the level is valid
		out = gz
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp

	var connLim *rate.Limiter
	var connBps int64
	var sent int64
	for sent < p.limit {
		if p.stallAt >= 0 && sent >= p.stallAt {
			p.stallAt = -1
			if flushAll(gz, rc) != nil {
				return
			}
			s.mu.Lock()
			s.counts.Stalls++
			s.mu.Unlock()
			if !sleepCtx(ctx, p.stallFor) {
				return
			}
		}
		if p.resetAt >= 0 && sent >= p.resetAt {
			_ = flushAll(gz, rc)
			s.resetConn(w)
			return
		}
		chunk := min(int64(len(buf)), p.limit-sent)
		if p.stallAt >= 0 {
			chunk = min(chunk, p.stallAt-sent)
		}
		if p.resetAt >= 0 {
			chunk = min(chunk, p.resetAt-sent)
		}
		if bps := s.connRate.Load(); bps != connBps {
			connBps, connLim = bps, nil
			if bps > 0 {
				connLim = rate.NewLimiter(rate.Limit(bps), burstFor(bps))
			}
		}
		total := s.total.Load()
		if connLim != nil {
			chunk = min(chunk, int64(connLim.Burst()))
		}
		if total != nil {
			chunk = min(chunk, int64(total.Burst()))
		}
		b := buf[:chunk]
		if _, err := f.ReadAt(b, p.src+sent); err != nil {
			// The file shrank under us: end the answer broken, as a
			// real server would.
			_ = flushAll(gz, rc)
			panic(http.ErrAbortHandler)
		}
		s.applyFlips(name, p, sent, b)
		if connLim != nil && connLim.WaitN(ctx, len(b)) != nil {
			return
		}
		if total != nil && total.WaitN(ctx, len(b)) != nil {
			return
		}
		if _, err := out.Write(b); err != nil {
			return
		}
		if flushAll(gz, rc) != nil {
			return
		}
		sent += chunk
	}
	if p.resetAt >= 0 && sent >= p.resetAt {
		s.resetConn(w)
		return
	}
	if p.short {
		_ = flushAll(gz, rc)
		panic(http.ErrAbortHandler)
	}
	if gz != nil {
		if gz.Close() == nil {
			_ = rc.Flush()
		}
	}
}

// applyFlips damages b, the body bytes [sent, sent+len(b)), where planned.
func (s *FaultServer) applyFlips(name string, p *plan, sent int64, b []byte) {
	end := sent + int64(len(b))
	if p.randFlip >= sent && p.randFlip < end {
		b[p.randFlip-sent] ^= p.randMask
		s.mu.Lock()
		s.flips = append(s.flips, Flip{Name: name, Offset: p.src + p.randFlip, Mask: p.randMask})
		s.counts.Flips++
		s.mu.Unlock()
	}
	if len(p.flipSpots) == 0 {
		return
	}
	lo, hi := p.src+sent, p.src+end
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range p.flipSpots {
		if sp.off < lo || sp.off >= hi || sp.done >= sp.times {
			continue
		}
		sp.done++
		b[sp.off-lo] ^= 1
		s.flips = append(s.flips, Flip{Name: name, Offset: sp.off, Mask: 1})
		s.counts.Flips++
	}
}

// resetConn aborts the connection with a TCP RST. When the connection
// cannot be taken over it is closed by aborting the handler instead.
func (s *FaultServer) resetConn(w http.ResponseWriter) {
	// Counted first: the client may look at the counts as soon as it sees
	// the reset.
	s.mu.Lock()
	s.counts.Resets++
	s.mu.Unlock()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func flushAll(gz *gzip.Writer, rc *http.ResponseController) error {
	if gz != nil {
		if err := gz.Flush(); err != nil {
			return err
		}
	}
	return rc.Flush()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// countingWriter counts the body bytes the connection accepted. It counts
// before writing and takes back what was not written, so the counters never
// show less than a client has received: a test that has just read a body
// sees it counted.
type countingWriter struct {
	w     io.Writer
	total *atomic.Int64
	file  *atomic.Int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	c.total.Add(int64(len(b)))
	c.file.Add(int64(len(b)))
	n, err := c.w.Write(b)
	if n < len(b) {
		c.total.Add(int64(n - len(b)))
		c.file.Add(int64(n - len(b)))
	}
	return n, err
}

// checkPreconditions applies If-Match, If-Unmodified-Since, If-None-Match
// and If-Modified-Since (RFC 9110 §13.2.2) and returns the status to answer
// with, or 0 to go on.
func checkPreconditions(r *http.Request, etag string, mtime time.Time) int {
	if im := r.Header.Get("If-Match"); im != "" {
		if !etagListMatch(im, etag, true) {
			return http.StatusPreconditionFailed
		}
	} else if ius := r.Header.Get("If-Unmodified-Since"); ius != "" {
		if t, err := http.ParseTime(ius); err == nil && mtime.After(t) {
			return http.StatusPreconditionFailed
		}
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		if etagListMatch(inm, etag, false) {
			return http.StatusNotModified
		}
	} else if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		if t, err := http.ParseTime(ims); err == nil && !mtime.After(t) {
			return http.StatusNotModified
		}
	}
	return 0
}

// rangeApplies evaluates If-Range: the Range header counts only when the
// validator still matches (a strong ETag or the exact Last-Modified date).
func rangeApplies(r *http.Request, etag string, mtime time.Time) bool {
	ir := r.Header.Get("If-Range")
	if ir == "" {
		return true
	}
	if strings.HasPrefix(ir, `"`) || strings.HasPrefix(ir, "W/") {
		return ir == etag
	}
	t, err := http.ParseTime(ir)
	return err == nil && t.Equal(mtime)
}

// etagListMatch reports whether the If-Match/If-None-Match list matches
// etag, with strong comparison when strong is set and weak otherwise.
func etagListMatch(list, etag string, strong bool) bool {
	for _, tag := range strings.Split(list, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" {
			return true
		}
		if strong {
			if tag == etag {
				return true
			}
			continue
		}
		if strings.TrimPrefix(tag, "W/") == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}

// parseRange parses a single byte range (bytes=a-b, bytes=a-, bytes=-n)
// against size; end is inclusive. ok is false for anything else (several
// ranges, bad syntax), which is then ignored; unsat is true for a range
// that starts beyond the end.
func parseRange(h string, size int64) (start, end int64, ok, unsat bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, false
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, false
	}
	if a == "" { // suffix: the last b bytes
		n, err := parseDigits(b)
		if err != nil {
			return 0, 0, false, false
		}
		if n == 0 || size == 0 {
			return 0, 0, false, true
		}
		return max(size-n, 0), size - 1, true, false
	}
	start, err := parseDigits(a)
	if err != nil {
		return 0, 0, false, false
	}
	end = size - 1
	if b != "" {
		if end, err = parseDigits(b); err != nil || end < start {
			return 0, 0, false, false
		}
		end = min(end, size-1)
	}
	if start >= size {
		return 0, 0, false, true
	}
	return start, end, true, false
}

var errNotDigits = errors.New("not a decimal number")

func parseDigits(s string) (int64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errNotDigits
	}
	return strconv.ParseInt(s, 10, 64)
}
