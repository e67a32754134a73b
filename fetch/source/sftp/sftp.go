package sftp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/internal/retry"
	"github.com/haul-dev/haul/internal/sshdial"
)

const (
	// sftpMaxPacket is the payload size of one SFTP read request: the
	// 32 KiB every server must accept. Larger requests may be answered
	// short; pkg/sftp's concurrent ReadAt takes a short answer for the end
	// of the file, so we stay at the size that is never shortened and
	// still check every count ourselves.
	sftpMaxPacket = 32 * 1024
	// sftpChunk is the most one ReadRange asks for at a time: pkg/sftp
	// splits it into sftpChunk/sftpMaxPacket requests in flight at once,
	// which keeps a long link busy, and the bytes reach the caller (and
	// its progress and stall accounting) every sftpChunk.
	sftpChunk = 256 * 1024
	// A reader asks for less while its caller is much slower than the
	// link (a --bwlimit paces it): whatever it asks for crosses the link
	// at once, so -j readers asking sftpChunk each would burst j×256 KiB
	// past the cap. It halves its ask when the caller took more than
	// sftpShrinkRatio times as long to take the bytes as the link took to
	// bring them, and doubles it when the caller took them faster than
	// the link brought them. Between the two it holds, so the time the
	// link sits idle while the caller drains stays a small share.
	sftpShrinkRatio = 16
)

// sftpSource reads parts over SFTP through a pool of SSH connections: a
// read takes the least busy live one, and when every one is busy and the
// pool is below its size, one more is dialled. On a link that caps each
// TCP connection (or where one TCP window bounds the rate), -j transfers
// then move over -j connections, as rclone's --sftp-connections does. A
// connection that dies is dropped; the next call dials again. Every dial
// shares keys, so an encrypted key's passphrase is asked for once per
// source, not once per connection.
type sftpSource struct {
	dialer  *sshdial.Dialer
	dir     string // remote directory: absolute, or relative to the login directory
	display string
	size    int // the most connections the pool holds
	// timeout (--timeout) bounds every request on a connection: one the
	// server does not answer in time fails with errNoAnswer and its
	// connection is dropped.
	timeout time.Duration

	// dialing is a one-slot lock held while dialling: connections are
	// made one at a time, so a burst of them never meets sshd's
	// MaxStartups.
	dialing chan struct{}
	// fillSize is the read size readers last settled on (see
	// sftpShrinkRatio); new readers start from it.
	fillSize atomic.Int64

	mu    sync.Mutex
	conns []*sftpConn
	// growAfter holds off extra connections after one failed to come up
	// while others work (a server or firewall limiting connections).
	growAfter time.Time
	closed    bool
}

var (
	_ source.Source       = (*sftpSource)(nil)
	_ source.RemoteHasher = (*sftpSource)(nil)
	_ source.NoSplitter   = (*sftpSource)(nil)
)

// errSourceClosed is returned by calls after Close.
var errSourceClosed = errors.New("source closed")

// openSFTP opens sftp://[USER@]HOST[:PORT]/PATH (or ssh://…). PATH naming
// a directory selects every file in it; otherwise its last element is a
// name prefix in its parent directory. A path starting with /~/ is
// relative to the login directory.
func Open(ctx context.Context, u *url.URL, opts source.SSHOptions) (*source.Opened, error) {
	d, err := sshdial.New(u, sshdial.Options{Identity: opts.Identity, KnownHosts: opts.KnownHosts,
		AcceptNewHostKey: opts.AcceptNewHostKey, ConfigFile: opts.ConfigFile, Passphrase: opts.Passphrase, Timeout: opts.Timeout})
	if err != nil {
		return nil, sshError(err)
	}
	rp := sftpPathOf(u)
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = source.DefaultTimeout
	}
	s := &sftpSource{dialer: d, size: max(1, opts.Connections), dialing: make(chan struct{}, 1), timeout: timeout}
	s.fillSize.Store(sftpMaxPacket)
	disp := url.URL{Scheme: strings.ToLower(u.Scheme), User: url.User(d.User()), Host: d.HostPort(), Path: u.Path}
	s.display = disp.String()

	var prefix string
	err = s.do(ctx, func(c *sftpConn) error {
		clean := path.Clean(rp)
		fi, err := await(ctx, s.timeout, func() (os.FileInfo, error) { return c.sftp.Stat(clean) }, nil)
		if err == nil && fi.IsDir() {
			s.dir, prefix = clean, ""
			return nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if strings.HasSuffix(rp, "/") {
			return fmt.Errorf("no such directory %s: %w", clean, source.ErrNotFound)
		}
		dir := path.Dir(clean)
		di, err := await(ctx, s.timeout, func() (os.FileInfo, error) { return c.sftp.Stat(dir) }, nil)
		if errors.Is(err, os.ErrNotExist) || (err == nil && !di.IsDir()) {
			return fmt.Errorf("no such directory %s: %w", dir, source.ErrNotFound)
		}
		if err != nil {
			return err
		}
		s.dir, prefix = dir, path.Base(clean)
		return nil
	})
	if err != nil {
		s.Close()
		return nil, s.wrap("open", err)
	}
	return &source.Opened{Source: s, Prefix: prefix}, nil
}

// sftpPathOf is the remote path a URL names: "/~/x" and "/~" are relative
// to the login directory, as are an empty path and "/~/".
func sftpPathOf(u *url.URL) string {
	p := u.Path
	switch {
	case p == "" || p == "/~" || p == "/~/":
		return "."
	case strings.HasPrefix(p, "/~/"):
		return p[len("/~/"):]
	}
	return p
}

// String is sftp://user@host:port/path, with no secret in it.
func (s *sftpSource) String() string { return s.display }

// NoSplit keeps the endgame from splitting spans over SFTP: a split
// span's reader has its next fill (up to sftpChunk, in pkg/sftp requests
// already in flight) asked for past the split, so the server would read
// those bytes twice, and a resumed run would no longer read exactly what
// was not saved (cmd/haul's TestSSHFetchKill9 holds it to that).
func (s *sftpSource) NoSplit() bool { return true }

// Close closes every connection and drops the unlocked keys. Calls after
// Close fail.
func (s *sftpSource) Close() error {
	s.mu.Lock()
	conns := s.conns
	s.conns, s.closed = nil, true
	s.mu.Unlock()
	s.dialer.Forget()
	for _, c := range conns {
		c.close()
	}
	return nil
}

// sftpConn is one SSH connection with its SFTP session.
type sftpConn struct {
	ssh  *ssh.Client
	sftp *sftp.Client
	done chan struct{} // closed when the SSH connection has ended
	once sync.Once
	shut atomic.Bool // close was called
	busy int         // operations and open readers using it; under sftpSource.mu
}

func (c *sftpConn) dead() bool {
	if c.shut.Load() {
		return true
	}
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// closeWait is how long close lets the SFTP session end in order before
// it cuts the SSH connection.
const closeWait = 2 * time.Second

// close ends the connection; requests waiting on it fail at once. The
// SFTP session is closed first, so that the server ends it in order (its
// sftp-server sees the end of input and exits); a server that stopped
// reading could hold that message up, so the SSH connection is cut after
// closeWait at the latest, which also ends the session's close.
func (c *sftpConn) close() {
	c.shut.Store(true)
	c.once.Do(func() {
		done := make(chan struct{})
		go func() {
			_ = c.sftp.Close()
			close(done)
		}()
		t := time.NewTimer(closeWait)
		select {
		case <-done:
		case <-t.C:
		}
		t.Stop()
		_ = c.ssh.Close()
		<-done
	})
}

// sftpRegrow is how long the pool stays at the connections it has after
// an extra one failed to come up.
const sftpRegrow = time.Minute

// acquire returns a connection for one operation, counted busy until
// release. It takes the least busy live connection, or dials one more
// when there is none, or when every one is busy and the pool is below
// its size; one dial at a time. fresh reports a connection dialled by
// this call.
func (s *sftpSource) acquire(ctx context.Context) (c *sftpConn, fresh bool, err error) {
	if c, err := s.take(true); c != nil || err != nil {
		return c, false, err
	}
	select {
	case s.dialing <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	defer func() { <-s.dialing }()
	// Another worker may have dialled, or a connection come free, while
	// we waited.
	if c, err := s.take(true); c != nil || err != nil {
		return c, false, err
	}
	c, err = s.dial(ctx)
	if err != nil {
		var hk *sshdial.HostKeyError
		if ctx.Err() != nil || errors.As(err, &hk) {
			return nil, false, err
		}
		// An extra connection failed while others work (a server or
		// firewall that limits them): share those, try later.
		shared, serr := s.take(false)
		if shared == nil && serr == nil {
			return nil, false, err
		}
		s.mu.Lock()
		s.growAfter = time.Now().Add(sftpRegrow)
		s.mu.Unlock()
		return shared, false, serr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.close()
		return nil, false, errSourceClosed
	}
	c.busy = 1
	s.conns = append(s.conns, c)
	return c, true, nil
}

// take drops dead connections and returns the least busy live one,
// counted busy; or nil when one should be dialled: there is none, or
// (mayGrow) every one is busy and the pool may grow.
func (s *sftpSource) take(mayGrow bool) (*sftpConn, error) {
	var dead []*sftpConn
	defer func() {
		for _, c := range dead {
			c.close()
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errSourceClosed
	}
	var best *sftpConn
	live := s.conns[:0]
	for _, c := range s.conns {
		if c.dead() {
			dead = append(dead, c)
			continue
		}
		live = append(live, c)
		if best == nil || c.busy < best.busy {
			best = c
		}
	}
	clear(s.conns[len(live):])
	s.conns = live
	if best == nil || mayGrow && best.busy > 0 && len(live) < s.size && !time.Now().Before(s.growAfter) {
		return nil, nil
	}
	best.busy++
	return best, nil
}

// hold counts one more user of c, which already has one.
func (s *sftpSource) hold(c *sftpConn) {
	s.mu.Lock()
	c.busy++
	s.mu.Unlock()
}

// release ends one use of c.
func (s *sftpSource) release(c *sftpConn) {
	s.mu.Lock()
	c.busy--
	s.mu.Unlock()
}

func (s *sftpSource) dial(ctx context.Context) (*sftpConn, error) {
	client, err := s.dialer.Dial(ctx)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { client.Close() })
	sc, err := sftp.NewClient(client,
		sftp.MaxPacketChecked(sftpMaxPacket),
		sftp.UseConcurrentReads(true),
	)
	if !stop() {
		if sc != nil {
			sc.Close()
		}
		client.Close()
		return nil, ctx.Err()
	}
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("start the SFTP subsystem on %s (is sftp enabled in sshd_config?): %w", s.dialer.Addr(), err)
	}
	c := &sftpConn{ssh: client, sftp: sc, done: make(chan struct{})}
	go func() {
		_ = client.Wait()
		close(c.done)
	}()
	go func() {
		// The SFTP session can end alone (the server's sftp-server
		// died): then the connection is useless too.
		_ = sc.Wait()
		c.close()
	}()
	return c, nil
}

// do runs op on a connection of the pool. If op fails because a
// connection that had been idle turned out dead, it runs once more on
// another.
func (s *sftpSource) do(ctx context.Context, op func(c *sftpConn) error) error {
	var broken, fresh bool // of the last try
	err := retry.Do(ctx, retry.Policy{
		Attempts: 2,
		Backoff:  func(int) time.Duration { return 0 },
		// Only a connection that had been idle and turned out dead is
		// worth another try, at once and on another connection.
		Retry: func(error, int) bool { return broken && !fresh },
	}, func(int) error {
		c, f, err := s.acquire(ctx)
		broken, fresh = false, f
		if err != nil {
			return err
		}
		err = op(c)
		s.release(c)
		if err != nil && ctx.Err() == nil && (retry.IsNetwork(err) || c.dead()) {
			// A connection that stopped answering is dropped too, but
			// not tried again at once: the caller's retry (with its
			// backoff) decides.
			broken = !errors.Is(err, errNoAnswer)
			c.close()
		}
		return err
	})
	var ex *retry.ExhaustedError
	if errors.As(err, &ex) {
		return ex.Err
	}
	return err
}

// wrap words an error for the caller: missing files are ErrNotFound and
// denied ones ErrAuth, both permanent.
func (s *sftpSource) wrap(op string, err error) error {
	var hk *sshdial.HostKeyError
	err = sshError(err)
	switch {
	case errors.As(err, &hk):
		return source.Permanent(err) // its message is complete on its own
	case errors.Is(err, os.ErrNotExist) && !errors.Is(err, source.ErrNotFound):
		return source.Permanent(fmt.Errorf("%s: %s: %v: %w", s.display, op, err, source.ErrNotFound))
	case errors.Is(err, os.ErrPermission):
		return source.Permanent(fmt.Errorf("%s: %s: %v: %w", s.display, op, err, source.ErrAuth))
	case errors.Is(err, source.ErrNotFound) || errors.Is(err, source.ErrAuth):
		return source.Permanent(fmt.Errorf("%s: %s: %w", s.display, op, err))
	}
	return fmt.Errorf("%s: %s: %w", s.display, op, err)
}

// sshError maps the SSH dialler's sentinels to the sources' own, keeping
// the message.
func sshError(err error) error {
	switch {
	case errors.Is(err, sshdial.ErrConfig):
		return source.Also(err, source.ErrBadSource)
	case errors.Is(err, sshdial.ErrAuth):
		return source.Also(err, source.ErrAuth)
	case errors.Is(err, sshdial.ErrNoHost):
		return source.Also(err, source.ErrNotFound)
	}
	return err
}

func (s *sftpSource) remotePath(name string) string {
	return path.Join(s.dir, name)
}

// List returns the regular files in the directory (symlinks followed).
func (s *sftpSource) List(ctx context.Context) ([]source.Object, error) {
	var objs []source.Object
	err := s.do(ctx, func(c *sftpConn) error {
		infos, err := await(ctx, s.timeout, func() ([]os.FileInfo, error) { return c.sftp.ReadDirContext(ctx, s.dir) }, nil)
		if err != nil {
			return err
		}
		objs = objs[:0]
		for _, fi := range infos {
			name := fi.Name()
			if fi.Mode()&os.ModeSymlink != 0 {
				p := s.remotePath(name)
				fi, err = await(ctx, s.timeout, func() (os.FileInfo, error) { return c.sftp.Stat(p) }, nil)
				if errors.Is(err, os.ErrNotExist) {
					continue // dangling link
				}
				if err != nil {
					return err
				}
			}
			if !fi.Mode().IsRegular() || strings.HasSuffix(name, ".partial") {
				continue
			}
			objs = append(objs, source.Object{Name: name, Size: fi.Size(), ModTime: fi.ModTime()})
		}
		return nil
	})
	if err != nil {
		return nil, s.wrap("list "+s.dir, err)
	}
	return objs, nil
}
