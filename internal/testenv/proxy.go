package testenv

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/haul-dev/haul/internal/faultserver"
	"golang.org/x/time/rate"
)

// CappedProxy forwards TCP connections from 127.0.0.1 to a target and
// paces what the target sends back on each connection to a fixed rate,
// like a link that shapes every TCP connection but not their sum (the case
// where -j connections are worth -j times one). What clients send passes
// unpaced.
type CappedProxy struct {
	// Addr is the proxy's "127.0.0.1:PORT", Port its port.
	Addr string
	Port int

	l        net.Listener
	target   string
	bps      int64
	accepted atomic.Int64
	wg       sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// StartCappedProxy listens on 127.0.0.1 and forwards each connection to
// target, the target's bytes paced to bytesPerSec per connection. It stops
// when the test ends, closing every connection it forwards.
func StartCappedProxy(t testing.TB, target string, bytesPerSec int64) *CappedProxy {
	t.Helper()
	if bytesPerSec <= 0 {
		t.Fatalf("testenv: capped proxy: %d bytes/s, want more than 0", bytesPerSec)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: capped proxy: %v", err)
	}
	p := &CappedProxy{Addr: l.Addr().String(), Port: l.Addr().(*net.TCPAddr).Port,
		l: l, target: target, bps: bytesPerSec, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// Accepted returns how many connections the proxy has taken so far.
func (p *CappedProxy) Accepted() int { return int(p.accepted.Load()) }

func (p *CappedProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		p.wg.Add(1)
		go p.forward(c)
	}
}

// forward joins client c to a new connection to the target until either
// side ends, then closes both.
func (p *CappedProxy) forward(c net.Conn) {
	defer p.wg.Done()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, s) {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_, _ = io.Copy(s, c)
		p.untrack(c, s)
	}()
	p.pace(c, s)
	p.untrack(c, s)
}

// pace copies src to dst at most p.bps bytes a second, in writes of the
// limiter's burst (a fiftieth of a second), so the stream stays smooth.
func (p *CappedProxy) pace(dst, src net.Conn) {
	lim := rate.NewLimiter(rate.Limit(p.bps), faultserver.Burst(p.bps))
	buf := make([]byte, lim.Burst())
	for {
		n, err := src.Read(buf)
		if n > 0 {
			// A wait is one burst at most: nothing to cancel.
			if lim.WaitN(context.Background(), n) != nil {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// track records a forwarded pair so that close can cut it; it closes the
// pair and reports false when the proxy is already closed.
func (p *CappedProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

// untrack closes a pair (again, harmlessly) and forgets it.
func (p *CappedProxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *CappedProxy) close() {
	p.mu.Lock()
	p.closed = true
	p.l.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
