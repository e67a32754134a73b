package source

import (
	"context"
	"net"
	"time"
)

// DefaultTimeout is OpenOptions.Timeout when none is given (--timeout's
// default).
const DefaultTimeout = 60 * time.Second

// DialFunc is the DialContext of a net.Dialer or an http.Transport.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// IdleDial wraps dial so that every connection it makes fails a read
// that gets no byte for d (a net.Error with Timeout() true: transient
// for internal/retry), and a write that cannot go on for d. Sending
// starts the clock for the answer afresh, so a connection that sat idle
// in a pool does not carry an old deadline into its next request. Every
// wait on the network under it is so bounded: handshakes, response
// headers, listings, reference files, bodies.
func IdleDial(dial DialFunc, d time.Duration) DialFunc {
	if d <= 0 {
		d = DefaultTimeout
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &idleConn{Conn: c, d: d}, nil
	}
}

// idleConn is a connection whose every read and write is bounded.
type idleConn struct {
	net.Conn
	d time.Duration
}

func (c *idleConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.d)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	now := time.Now()
	if err := c.Conn.SetWriteDeadline(now.Add(c.d)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	// The answer to what was just sent has d from now, even for a read
	// already waiting (an HTTP/1 connection's reader waits while idle).
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.d))
	return n, err
}
