package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

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
	_ Source       = (*sftpSource)(nil)
	_ RemoteHasher = (*sftpSource)(nil)
)

// errSourceClosed is returned by calls after Close.
var errSourceClosed = errors.New("source closed")

// openSFTP opens sftp://[USER@]HOST[:PORT]/PATH (or ssh://…). PATH naming
// a directory selects every file in it; otherwise its last element is a
// name prefix in its parent directory. A path starting with /~/ is
// relative to the login directory.
func openSFTP(ctx context.Context, u *url.URL, opts SSHOptions) (*Opened, error) {
	d, err := sshdial.New(u, sshdial.Options{Identity: opts.Identity, KnownHosts: opts.KnownHosts,
		AcceptNewHostKey: opts.AcceptNewHostKey, ConfigFile: opts.ConfigFile, Passphrase: opts.Passphrase})
	if err != nil {
		return nil, sshError(err)
	}
	rp := sftpPathOf(u)
	s := &sftpSource{dialer: d, size: max(1, opts.Connections), dialing: make(chan struct{}, 1)}
	s.fillSize.Store(sftpMaxPacket)
	disp := url.URL{Scheme: strings.ToLower(u.Scheme), User: url.User(d.User()), Host: d.HostPort(), Path: u.Path}
	s.display = disp.String()

	var prefix string
	err = s.do(ctx, func(c *sftpConn) error {
		clean := path.Clean(rp)
		fi, err := await(ctx, func() (os.FileInfo, error) { return c.sftp.Stat(clean) }, nil)
		if err == nil && fi.IsDir() {
			s.dir, prefix = clean, ""
			return nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if strings.HasSuffix(rp, "/") {
			return fmt.Errorf("no such directory %s: %w", clean, ErrNotFound)
		}
		dir := path.Dir(clean)
		di, err := await(ctx, func() (os.FileInfo, error) { return c.sftp.Stat(dir) }, nil)
		if errors.Is(err, os.ErrNotExist) || (err == nil && !di.IsDir()) {
			return fmt.Errorf("no such directory %s: %w", dir, ErrNotFound)
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
	return &Opened{Source: s, Prefix: prefix}, nil
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

// close ends the connection; requests waiting on it fail at once.
func (c *sftpConn) close() {
	c.shut.Store(true)
	c.once.Do(func() {
		_ = c.sftp.Close()
		_ = c.ssh.Close()
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
	for attempt := 0; ; attempt++ {
		c, fresh, err := s.acquire(ctx)
		if err != nil {
			return err
		}
		err = op(c)
		s.release(c)
		if err == nil || ctx.Err() != nil || !(retry.IsNetwork(err) || c.dead()) {
			return err
		}
		c.close()
		if fresh || attempt > 0 {
			return err
		}
	}
}

// wrap words an error for the caller: missing files are ErrNotFound and
// denied ones ErrAuth, both permanent.
func (s *sftpSource) wrap(op string, err error) error {
	var hk *sshdial.HostKeyError
	err = sshError(err)
	switch {
	case errors.As(err, &hk):
		return Permanent(err) // its message is complete on its own
	case errors.Is(err, os.ErrNotExist) && !errors.Is(err, ErrNotFound):
		return Permanent(fmt.Errorf("%s: %s: %v: %w", s.display, op, err, ErrNotFound))
	case errors.Is(err, os.ErrPermission):
		return Permanent(fmt.Errorf("%s: %s: %v: %w", s.display, op, err, ErrAuth))
	case errors.Is(err, ErrNotFound) || errors.Is(err, ErrAuth):
		return Permanent(fmt.Errorf("%s: %s: %w", s.display, op, err))
	}
	return fmt.Errorf("%s: %s: %w", s.display, op, err)
}

// sshError maps the SSH dialler's sentinels to the sources' own, keeping
// the message.
func sshError(err error) error {
	switch {
	case errors.Is(err, sshdial.ErrConfig):
		return Also(err, ErrBadSource)
	case errors.Is(err, sshdial.ErrAuth):
		return Also(err, ErrAuth)
	case errors.Is(err, sshdial.ErrNoHost):
		return Also(err, ErrNotFound)
	}
	return err
}

func (s *sftpSource) remotePath(name string) string {
	return path.Join(s.dir, name)
}

// List returns the regular files in the directory (symlinks followed).
func (s *sftpSource) List(ctx context.Context) ([]Object, error) {
	var objs []Object
	err := s.do(ctx, func(c *sftpConn) error {
		infos, err := await(ctx, func() ([]os.FileInfo, error) { return c.sftp.ReadDirContext(ctx, s.dir) }, nil)
		if err != nil {
			return err
		}
		objs = objs[:0]
		for _, fi := range infos {
			name := fi.Name()
			if fi.Mode()&os.ModeSymlink != 0 {
				p := s.remotePath(name)
				fi, err = await(ctx, func() (os.FileInfo, error) { return c.sftp.Stat(p) }, nil)
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
			objs = append(objs, Object{Name: name, Size: fi.Size(), ModTime: fi.ModTime()})
		}
		return nil
	})
	if err != nil {
		return nil, s.wrap("list "+s.dir, err)
	}
	return objs, nil
}

// sameVersion reports whether fi is still the object first seen. SFTP
// (version 3) gives whole-second modification times.
func sameVersion(fi os.FileInfo, obj Object) bool {
	if fi.Size() != obj.Size {
		return false
	}
	return obj.ModTime.IsZero() || fi.ModTime().Unix() == obj.ModTime.Unix()
}

// ReadRange returns bytes [off, off+n) of obj. The file is checked to
// have obj's size and mtime when opened and again after the last byte, so
// a replaced or rewritten file fails with ErrChanged instead of mixing
// versions. Every count is checked: the reader yields exactly n bytes or
// an error.
func (s *sftpSource) ReadRange(ctx context.Context, obj Object, off, n int64) (io.ReadCloser, error) {
	if off < 0 || n < 0 || off+n > obj.Size {
		return nil, Permanent(fmt.Errorf("%s: read %s: range [%d, %d) outside its %d bytes", s.display, obj.Name, off, off+n, obj.Size))
	}
	p := s.remotePath(obj.Name)
	var (
		f  *sftp.File
		fc *sftpConn
	)
	err := s.do(ctx, func(c *sftpConn) error {
		file, err := await(ctx, func() (*sftp.File, error) { return c.sftp.Open(p) },
			func(f *sftp.File) { _ = f.Close() })
		if err != nil {
			return err
		}
		fi, err := await(ctx, file.Stat, nil)
		if err != nil {
			go file.Close()
			return err
		}
		if !sameVersion(fi, obj) {
			go file.Close()
			return fmt.Errorf("size %d, mtime %s now: %w", fi.Size(), fi.ModTime().UTC().Format("2006-01-02T15:04:05Z"), ErrChanged)
		}
		f, fc = file, c
		s.hold(c) // until the reader's Close
		return nil
	})
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("read %s", obj.Name), err)
	}
	return &sftpReader{ctx: ctx, src: s, c: fc, f: f, obj: obj, off: off, end: off + n,
		buf: make([]byte, min(n, sftpChunk)), size: s.fillSize.Load()}, nil
}

// sftpReader streams one range, up to sftpChunk at a time.
type sftpReader struct {
	ctx context.Context
	src *sftpSource
	c   *sftpConn // held busy in the pool until Close
	f   *sftp.File
	obj Object

	off, end int64  // next byte to fetch, end of the range
	buf      []byte // fetch buffer
	data     []byte // fetched, not yet returned
	err      error  // returned once data is drained
	// size is how much the next fetch asks for; took is how long the last
	// fetch took and filled when it ended (zero before the first).
	size   int64
	took   time.Duration
	filled time.Time
	// pending is set when a fetch was abandoned (ctx ended) while it still
	// uses f and buf: Close lets it finish before closing f.
	pending chan struct{}
	closed  bool
}

// errShortFile means the file ended before the range did.
var errShortFile = errors.New("file ended early")

func (r *sftpReader) Read(p []byte) (int, error) {
	for len(r.data) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.off >= r.end {
			r.err = r.finish()
			continue
		}
		r.fill()
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// fill fetches the next chunk, or sets r.err.
func (r *sftpReader) fill() {
	if !r.filled.IsZero() {
		r.size = nextFillSize(r.size, r.took, time.Since(r.filled))
		r.src.fillSize.Store(r.size)
	}
	b := r.buf[:min(int64(len(r.buf)), r.size, r.end-r.off)]
	start := time.Now()
	type result struct {
		n   int
		err error
	}
	ch := make(chan result, 1)
	done := make(chan struct{})
	off := r.off
	go func() {
		defer close(done)
		n, err := readFullAt(r.f, b, off)
		ch <- result{n, err}
	}()
	select {
	case res := <-ch:
		r.filled = time.Now()
		r.took = r.filled.Sub(start)
		r.data = b[:res.n]
		r.off += int64(res.n)
		if res.err != nil {
			r.err = r.fail(res.err)
		}
	case <-r.ctx.Done():
		r.pending = done
		r.err = r.ctx.Err()
	}
}

// nextFillSize is the read size after one that asked for size bytes, took
// took to arrive, and took the caller drain to consume (see
// sftpShrinkRatio). It stays within [sftpMaxPacket, sftpChunk].
func nextFillSize(size int64, took, drain time.Duration) int64 {
	switch {
	case drain > sftpShrinkRatio*took:
		size /= 2
	case drain < took:
		size *= 2
	}
	return min(max(size, sftpMaxPacket), sftpChunk)
}

// readFullAt fills b from offset off. pkg/sftp may answer short: its
// concurrent ReadAt reports a short packet as io.EOF, and a server may cap
// a read below what was asked; so keep asking for the rest while bytes
// come, and call it the end of the file only when none do.
func readFullAt(f io.ReaderAt, b []byte, off int64) (int, error) {
	got := 0
	for got < len(b) {
		k, err := f.ReadAt(b[got:], off+int64(got))
		if k < 0 || k > len(b)-got {
			return got, fmt.Errorf("sftp: read returned %d bytes for %d asked", k, len(b)-got)
		}
		got += k
		if got == len(b) {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return got, err
		}
		if k == 0 {
			return got, errShortFile
		}
	}
	return got, nil
}

// fail words a read error; a broken connection is closed so that the
// retry reconnects.
func (r *sftpReader) fail(err error) error {
	if errors.Is(err, errShortFile) {
		err = fmt.Errorf("%w (ended before byte %d of %d)", ErrChanged, r.end, r.obj.Size)
	} else if retry.IsNetwork(err) {
		r.c.close()
	}
	return r.src.wrap(fmt.Sprintf("read %s at %d", r.obj.Name, r.off), err)
}

// finish checks, after the last byte, that the file is still the version
// the range was pinned to.
func (r *sftpReader) finish() error {
	fi, err := await(r.ctx, r.f.Stat, nil)
	if err != nil {
		return r.fail(err)
	}
	if !sameVersion(fi, r.obj) {
		return r.src.wrap("read "+r.obj.Name, fmt.Errorf("changed while being read: %w", ErrChanged))
	}
	return io.EOF
}

// Close releases the remote file handle in the background: closing waits
// for any read still in flight, which only a live connection finishes.
func (r *sftpReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.src.release(r.c)
	pending, f := r.pending, r.f
	go func() {
		if pending != nil {
			<-pending
		}
		_ = f.Close()
	}()
	return nil
}

// await runs fn, which blocks on the connection and knows no context, and
// returns when it does or when ctx ends. In the latter case fn goes on in
// the background until the connection answers or dies (keepalive, Close),
// and drop, if not nil, releases what it returns.
func await[T any](ctx context.Context, fn func() (T, error), drop func(T)) (T, error) {
	var (
		mu        sync.Mutex
		abandoned bool
	)
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fn()
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			if err == nil && drop != nil {
				go drop(v)
			}
			return
		}
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	select {
	case r := <-ch:
		return r.v, r.err
	default:
		abandoned = true
		var zero T
		return zero, ctx.Err()
	}
}
