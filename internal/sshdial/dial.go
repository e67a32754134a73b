// Dialling: the handshake through every ProxyJump hop, its deadline, and
// keepalives.

package sshdial

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/haul-dev/haul/internal/retry"
	"github.com/haul-dev/haul/internal/testhook"
)

// dialSSH connects and authenticates, through the target's ProxyJump
// hosts if it has any: it connects to the first, opens a direct-tcpip
// channel through it to the next and runs that host's SSH handshake over
// the channel, and so on to the target. Every hop is checked against its
// own known_hosts entry and logs in with its own config. Closing the
// returned client closes the jump connections under it.
//
// A refused login wraps ErrAuth, a host key problem is a *HostKeyError,
// both permanent; network failures (refused, unreachable, timed out, cut)
// are returned as they are, and retrying them makes sense. Messages name
// the hop that failed.
//
// Every hop takes its encrypted keys from keys, so that a key file asked
// for once (by this dial or an earlier one sharing keys) is not asked for
// again.
func dialSSH(ctx context.Context, t *sshTarget, hk *hostKeyChecker, opts Options, keys *keyCache) (*ssh.Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(hk.jumps) != len(t.jumps) {
		return nil, permanent(fmt.Errorf("ssh %s: the host key checker has %d jump hosts, the target %d (a bug in haul)", t.alias, len(hk.jumps), len(t.jumps)))
	}
	var jumps []*ssh.Client
	for i, j := range t.jumps {
		c, err := dialHop(ctx, j, hk.jumps[i], opts, keys, t.jumps[:i], jumps, true)
		if err != nil {
			closeClients(jumps)
			return nil, err
		}
		jumps = append(jumps, c)
	}
	c, err := dialHop(ctx, t, hk, opts, keys, t.jumps, jumps, false)
	if err != nil {
		closeClients(jumps)
		return nil, err
	}
	return c, nil
}

// closeClients closes clients, last first.
func closeClients(cs []*ssh.Client) {
	for i := len(cs) - 1; i >= 0; i-- {
		_ = cs[i].Close()
	}
}

// hopName names a connection in messages: "ssh USER@HOST:PORT", for a
// jump host "ssh jump host ALIAS (USER@HOST:PORT)", and for a target
// reached through jump hosts "ssh USER@HOST:PORT via A,B".
func hopName(t *sshTarget, isJump bool) string {
	switch {
	case isJump:
		return fmt.Sprintf("ssh jump host %s (%s@%s)", t.alias, t.user, t.addr())
	case len(t.jumps) > 0:
		var names []string
		for _, j := range t.jumps {
			names = append(names, j.alias)
		}
		return fmt.Sprintf("ssh %s@%s via %s", t.user, t.addr(), strings.Join(names, ","))
	}
	return fmt.Sprintf("ssh %s@%s", t.user, t.addr())
}

// dialHop connects to t: straight over TCP when via is empty, else
// through a direct-tcpip channel of via's last client (viaHosts are the
// hosts via connected to). When t is the target (isJump false) the
// returned client owns via: closing it, or its connection ending, closes
// them.
func dialHop(ctx context.Context, t *sshTarget, hk *hostKeyChecker, opts Options, keys *keyCache, viaHosts []*sshTarget, via []*ssh.Client, isJump bool) (*ssh.Client, error) {
	where := hopName(t, isJump)
	connectTimeout, handshakeTimeout := t.connectTimeout, sshHandshakeTimeout
	if opts.Timeout > 0 {
		connectTimeout, handshakeTimeout = min(connectTimeout, opts.Timeout), opts.Timeout
	}
	var raw net.Conn
	var err error
	if len(via) == 0 {
		d := net.Dialer{Timeout: connectTimeout}
		raw, err = testhook.DialContext(d.DialContext)(ctx, "tcp", t.addr())
		if err != nil {
			return nil, dialError(where, err)
		}
	} else {
		dctx, cancel := context.WithTimeout(ctx, connectTimeout)
		raw, err = via[len(via)-1].DialContext(dctx, "tcp", t.addr())
		cancel()
		if err != nil {
			return nil, jumpDialError(ctx, where, viaHosts[len(viaHosts)-1].alias, err)
		}
	}
	conn := newActivityConn(raw)
	deadline := &handshakeDeadline{conn: conn, d: handshakeTimeout}

	auth, err := newSSHAuth(t, opts, keys, deadline.pause)
	if err != nil {
		conn.Close()
		return nil, err
	}
	defer auth.close()

	// The rejection is kept per connection: connections of one source
	// share hk and may be dialled at the same time.
	var hkMu sync.Mutex
	var hkErr error
	cfg := &ssh.ClientConfig{
		User: t.user,
		Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			return auth.signers, nil
		})},
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			err := hk.check(host, remote, key)
			hkMu.Lock()
			hkErr = err
			hkMu.Unlock()
			return err
		},
		HostKeyAlgorithms: hk.algorithms(),
		Timeout:           connectTimeout,
	}
	deadline.pause(false)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, t.addr(), cfg)
	stopped := stop()
	deadline.stop()
	if err != nil {
		conn.Close()
		hkMu.Lock()
		rejected := hkErr
		hkMu.Unlock()
		if rejected != nil {
			if len(via) > 0 || isJump {
				rejected = fmt.Errorf("%s: %w", where, rejected)
			}
			return nil, permanent(rejected)
		}
		if !stopped || ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", where, context.Cause(ctx))
		}
		if deadline.expired.Load() {
			return nil, fmt.Errorf("%s: handshake: %w within %s: %w", where, errHandshakeStalled, handshakeTimeout, err)
		}
		if isAuthFailure(err) || auth.getSignErr() != nil && !retry.IsNetwork(err) {
			return nil, auth.failure(where, err)
		}
		return nil, fmt.Errorf("%s: handshake: %w", where, err)
	}
	if !stopped {
		c.Close()
		return nil, fmt.Errorf("%s: %w", where, context.Cause(ctx))
	}
	if !isJump && len(via) > 0 {
		c = &jumpedConn{Conn: c, jumps: via}
	}
	client := ssh.NewClient(c, chans, reqs)
	go keepAlive(client, conn, t.aliveInterval, t.aliveCount)
	if !isJump && len(via) > 0 {
		go func() {
			// The target's connection can end alone (its server left,
			// keepalives found it dead): the jumps go with it.
			_ = client.Wait()
			closeClients(via)
		}()
	}
	return client, nil
}

// jumpedConn is the SSH connection to a target reached through jump
// hosts: closing it closes them too, so that no jump connection outlives
// the connection it carries.
type jumpedConn struct {
	ssh.Conn
	jumps []*ssh.Client
}

func (j *jumpedConn) Close() error {
	err := j.Conn.Close()
	closeClients(j.jumps)
	return err
}

// jumpDialError words a direct-tcpip channel the jump host refused or
// could not connect: a forwarding ban is permanent, a failed connect
// from the jump host may pass.
func jumpDialError(ctx context.Context, where, jump string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", where, context.Cause(ctx))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: jump host %s did not connect it in time: %w", where, jump, err)
	}
	var oc *ssh.OpenChannelError
	if errors.As(err, &oc) {
		switch oc.Reason {
		case ssh.Prohibited:
			return permanent(fmt.Errorf("%s: jump host %s refuses to forward the connection (%s): its sshd needs AllowTcpForwarding yes (and no PermitOpen or permitopen= key restriction that excludes this host): %w",
				where, jump, oc.Message, ErrConfig))
		case ssh.ConnectionFailed:
			return fmt.Errorf("%s: jump host %s could not connect to it (%s; is sshd running there and is the host name right as the jump host resolves it?): %w", where, jump, oc.Message, err)
		}
	}
	return fmt.Errorf("%s: connect through jump host %s: %w", where, jump, err)
}

// handshakeDeadline bounds key exchange and authentication on conn,
// except while a passphrase prompt waits for a person. A TCP connection
// takes a deadline; a connection through a jump host is an SSH channel,
// which has none, so a timer closes it instead.
type handshakeDeadline struct {
	conn    net.Conn
	d       time.Duration
	expired atomic.Bool

	mu    sync.Mutex
	timer *time.Timer
}

// pause stops the clock while waiting is true, and starts it afresh
// when it turns false.
func (d *handshakeDeadline) pause(waiting bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if waiting {
		d.stopLocked()
		return
	}
	if d.conn.SetDeadline(time.Now().Add(d.d)) == nil {
		return
	}
	if d.timer == nil {
		d.timer = time.AfterFunc(d.d, func() {
			d.expired.Store(true)
			_ = d.conn.Close()
		})
		return
	}
	d.timer.Reset(d.d)
}

// stop ends the bound: the handshake is over.
func (d *handshakeDeadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopLocked()
}

func (d *handshakeDeadline) stopLocked() {
	_ = d.conn.SetDeadline(time.Time{})
	if d.timer != nil {
		d.timer.Stop()
	}
}

// errHandshakeStalled marks a handshake the server did not answer in
// time: the link or the server failing for now, tried again.
var errHandshakeStalled = retry.Mark(retry.Transient, errors.New("no answer"))

// isAuthFailure tells a refused login from a broken link after the host
// key was accepted. x/crypto/ssh has no typed error for it; this is the
// one place that reads its message.
func isAuthFailure(err error) bool {
	s := err.Error()
	return strings.Contains(s, "unable to authenticate") || strings.Contains(s, "Too many authentication failures")
}

// dialError words a failed TCP connect; an unknown host name is
// permanent, everything else may pass.
func dialError(where string, err error) error {
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns) && dns.IsNotFound:
		return permanent(&noHostError{where: where, name: dns.Name, err: err})
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s: connection refused (is sshd running and listening on that port?): %w", where, err)
	}
	return fmt.Errorf("%s: connect: %w", where, err)
}

// noHostError is a host name that does not resolve. It is ErrNoHost and
// keeps the resolver's *net.DNSError in its chain, so that retry.ReachOf
// (the contact rule: never reached → exit 1, reached before → the
// network down) sees it as it does for HTTP and S3.
type noHostError struct {
	where, name string
	err         error
}

func (e *noHostError) Error() string {
	return fmt.Sprintf("%s: no such host %s: %v", e.where, e.name, ErrNoHost)
}

func (e *noHostError) Unwrap() []error { return []error{ErrNoHost, e.err} }

// activityConn notes when bytes last arrived.
type activityConn struct {
	net.Conn
	last atomic.Int64 // unix nanoseconds
}

func newActivityConn(c net.Conn) *activityConn {
	a := &activityConn{Conn: c}
	a.last.Store(time.Now().UnixNano())
	return a
}

func (a *activityConn) Read(p []byte) (int, error) {
	n, err := a.Conn.Read(p)
	if n > 0 {
		a.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (a *activityConn) silentFor() time.Duration {
	return time.Since(time.Unix(0, a.last.Load()))
}

// keepAlive sends keepalive@openssh.com requests and closes the client
// when nothing at all has come from the server for interval × count, so
// that requests waiting on a dead link fail and their callers reconnect.
// Any byte counts as life: on a slow link a reply can queue behind
// megabytes of file data, and that link is not dead. It ends with the
// connection.
func keepAlive(c *ssh.Client, ac *activityConn, interval time.Duration, count int) {
	done := make(chan struct{})
	go func() {
		_ = c.Wait()
		close(done)
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var reply chan error // the request in flight, nil when none
	for {
		select {
		case <-done:
			return
		case err := <-reply:
			if err != nil {
				_ = c.Close()
				return
			}
			reply = nil
			continue
		case <-tick.C:
		}
		if ac.silentFor() > interval*time.Duration(count) {
			_ = c.Close()
			return
		}
		if reply == nil {
			reply = make(chan error, 1)
			go func(ch chan<- error) {
				_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
				ch <- err
			}(reply)
		}
	}
}
