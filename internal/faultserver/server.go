// Package faultserver is a static file server over HTTP on 127.0.0.1 with
// switchable faults: per-connection and total rate caps, resets, stalls,
// wrong ranges, bodies cut short or gzip-encoded, bits flipped in transit,
// and error answers, each counted. `haul demo` and the benchmarks use it;
// tests reach it through internal/testenv. It does not import package
// testing, so nothing that links it links the test framework.
package faultserver

import (
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Server serves the files under a directory over HTTP on 127.0.0.1,
// with GET/HEAD, single byte ranges, strong ETags, Last-Modified and the
// conditional headers If-Match, If-None-Match, If-Range,
// If-Unmodified-Since and If-Modified-Since. Faults are switched on with
// Options at creation or at any time with Set, and every byte of
// response body it writes is counted.
//
// It does not depend on package testing: `haul demo` and benchmarks use it
// as well as tests.
type Server struct {
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
	counts Counts

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

// faultState is the switchable configuration, guarded by Server.mu.
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

// Option configures a Server; pass it to New or Set.
// Setting a fault again replaces it (and restarts its request counting),
// except FlipBits, which adds spots.
type Option func(*faultState)

// ConnRate caps each response body at bps bytes per second (0: no cap).
// HTTP/1.1 serves one response at a time per connection, so this is the
// per-connection cap of a slow link.
func ConnRate(bps int64) Option {
	return func(s *faultState) { s.connRate = max(bps, 0) }
}

// TotalRate caps all response bodies together at bps bytes per second (0:
// no cap), like the uplink of a slow server.
func TotalRate(bps int64) Option {
	return func(s *faultState) { s.totalRate = max(bps, 0) }
}

// Seed reseeds the random source used by When.Prob and FlipRandom, so a
// run can be repeated. The default seed is 1.
func Seed(seed uint64) Option {
	return func(s *faultState) { s.seed = &seed }
}

// FailWith answers selected requests (GET and HEAD) with the status code
// (500, 503, …) and no file data. When{Max: k} fails the first k requests.
func FailWith(code int, w When) Option {
	return func(s *faultState) { s.fail = &failRule{rule: rule{when: w}, code: code} }
}

// IgnoreRange answers selected range requests with 200 and the whole file,
// as a server without range support does.
func IgnoreRange(w When) Option {
	return func(s *faultState) { s.ignoreRange = newRule(w) }
}

// ShiftContentRange makes selected 206 answers claim a Content-Range moved
// by delta bytes while sending the bytes that were asked for.
func ShiftContentRange(delta int64, w When) Option {
	return func(s *faultState) { s.shiftCR = &offsetRule{rule: rule{when: w}, n: delta} }
}

// ShiftBody makes selected answers send the bytes delta further on in the
// file (or delta back when that would run past its end) under correct
// headers. Answers covering the whole file cannot be shifted.
func ShiftBody(delta int64, w When) Option {
	return func(s *faultState) { s.shiftBody = &offsetRule{rule: rule{when: w}, n: delta} }
}

// GzipBody sends selected bodies gzip-compressed on the fly with
// Content-Encoding: gzip and no Content-Length, whatever the request's
// Accept-Encoding says. A 206 keeps the Content-Range of the uncompressed
// bytes.
func GzipBody(w When) Option {
	return func(s *faultState) { s.gzip = newRule(w) }
}

// ShortBody makes selected answers promise the full Content-Length, send
// missing bytes fewer (at least one fewer) and close the connection.
func ShortBody(missing int64, w When) Option {
	return func(s *faultState) { s.short = &offsetRule{rule: rule{when: w}, n: max(missing, 1)} }
}

// ResetAfter resets the connection (TCP RST) of selected answers after
// after bytes of body; after 0 resets right after the headers. Bodies of
// at most after bytes are not affected.
func ResetAfter(after int64, w When) Option {
	return func(s *faultState) { s.reset = &offsetRule{rule: rule{when: w}, n: max(after, 0)} }
}

// StallAfter makes selected answers stop sending for d after after bytes of
// body, then go on (unless the client has gone or the server is closed).
func StallAfter(after int64, d time.Duration, w When) Option {
	return func(s *faultState) {
		s.stall = &stallRule{rule: rule{when: w}, after: max(after, 0), d: d}
	}
}

// FlipBits flips the lowest bit of the bytes at the given offsets of file
// name the first times times each byte is sent; later sends are correct,
// so a re-fetch gets good bytes. Calls add up.
func FlipBits(name string, times int, offsets ...int64) Option {
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
func FlipRandom(w When) Option {
	return func(s *faultState) { s.flipRandom = newRule(w) }
}

// Flip records one damaged byte sent by a Server.
type Flip struct {
	Name   string // file, as in URL
	Offset int64  // offset in the file of the damaged byte
	Mask   byte   // the bits flipped (XOR)
}

// Counts tells how often each fault really happened.
type Counts struct {
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

// New starts serving the files under root on 127.0.0.1. It
// panics if root cannot be opened or no loopback port is free, as
// httptest.NewServer does. Close it when done.
func New(root string, opts ...Option) *Server {
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
	s := &Server{
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
func (s *Server) Set(opts ...Option) {
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
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = faultState{}
	s.syncRatesLocked()
}

// SetConnRate changes the per-response cap (bytes/s, 0: none).
func (s *Server) SetConnRate(bps int64) { s.Set(ConnRate(bps)) }

// SetTotalRate changes the cap over all responses (bytes/s, 0: none).
func (s *Server) SetTotalRate(bps int64) { s.Set(TotalRate(bps)) }

func (s *Server) syncRatesLocked() {
	s.connRate.Store(s.st.connRate)
	if s.totalRate.Swap(s.st.totalRate) == s.st.totalRate {
		return
	}
	if s.st.totalRate <= 0 {
		s.total.Store(nil)
		return
	}
	s.total.Store(rate.NewLimiter(rate.Limit(s.st.totalRate), Burst(s.st.totalRate)))
}

const bufSize = 64 << 10

// Burst is the limiter burst, and so the largest write, for a rate of bps:
// a fiftieth of a second of data (at most 64 KiB), so capped streams stay
// smooth.
func Burst(bps int64) int {
	return int(min(max(bps/50, 1), bufSize))
}

// URL returns the URL of file name (a slash-separated path under the root).
func (s *Server) URL(name string) string {
	segs := strings.Split(strings.TrimPrefix(name, "/"), "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return s.baseURL + "/" + strings.Join(segs, "/")
}

// Root returns the directory the server serves.
func (s *Server) Root() string { return s.dir }

// Requests returns how many requests the server has received.
func (s *Server) Requests() int64 { return s.requests.Load() }

// WaitIdle waits until no request is being answered, for at most timeout,
// and reports whether that happened. After a client was killed, it lets
// the server notice before the counters are read: a body write that then
// fails is taken back from them.
func (s *Server) WaitIdle(timeout time.Duration) bool {
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
func (s *Server) BytesSent() int64 { return s.bytes.Load() }

// FileBytesSent returns the response body bytes written for file name.
func (s *Server) FileBytesSent(name string) int64 {
	if c, ok := s.files.Load(name); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

// ZeroCounters sets the request and byte counters to zero (fault counts and
// flips are kept).
func (s *Server) ZeroCounters() {
	s.requests.Store(0)
	s.bytes.Store(0)
	s.files.Range(func(_, v any) bool {
		v.(*atomic.Int64).Store(0)
		return true
	})
}

// Faults returns how often each fault has happened so far.
func (s *Server) Faults() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// Flips returns every byte flipped so far, in the order they were sent.
func (s *Server) Flips() []Flip {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Flip(nil), s.flips...)
}

// Close stops the server: it ends stalls and rate waits, closes every
// connection and waits for the handlers to return.
func (s *Server) Close() {
	s.close.Do(func() {
		s.cancel()
		_ = s.srv.Close()
		<-s.served
		s.handlers.Wait()
		_ = s.root.Close()
	})
}

func (s *Server) fileCounter(name string) *atomic.Int64 {
	if c, ok := s.files.Load(name); ok {
		return c.(*atomic.Int64)
	}
	c, _ := s.files.LoadOrStore(name, new(atomic.Int64))
	return c.(*atomic.Int64)
}
