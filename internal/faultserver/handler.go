// Answering one request: the plan of faults for it, and the body.

package faultserver

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

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

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
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
func (s *Server) planFaults(name string, size int64, rangeAsked bool, p *plan) {
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
func (s *Server) sendBody(w http.ResponseWriter, r *http.Request, f *os.File, name string, p *plan) {
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
				connLim = rate.NewLimiter(rate.Limit(bps), Burst(bps))
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
func (s *Server) applyFlips(name string, p *plan, sent int64, b []byte) {
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
func (s *Server) resetConn(w http.ResponseWriter) {
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
