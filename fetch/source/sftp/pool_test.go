package sftp_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/source/open"
)

// openReaders opens k readers of obj, each on its own piece, and reads the
// first bytes of each so that all of them are busy at once.
func openReaders(t *testing.T, src source.Source, obj source.Object, k int) []io.ReadCloser {
	t.Helper()
	piece := obj.Size / int64(k)
	var rcs []io.ReadCloser
	for i := range k {
		rc, err := src.ReadRange(context.Background(), obj, int64(i)*piece, piece)
		if err != nil {
			t.Fatalf("reader %d: %v", i, err)
		}
		t.Cleanup(func() { rc.Close() })
		if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
			t.Fatalf("reader %d: %v", i, err)
		}
		rcs = append(rcs, rc)
	}
	return rcs
}

// drainReaders reads the rest of each reader opened by openReaders and
// checks the bytes.
func drainReaders(t *testing.T, rcs []io.ReadCloser, data []byte) {
	t.Helper()
	piece := int64(len(data)) / int64(len(rcs))
	for i, rc := range rcs {
		rest, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("reader %d: %v", i, err)
		}
		off := int64(i)*piece + 1000
		if !bytes.Equal(rest, data[off:int64(i+1)*piece]) {
			t.Fatalf("reader %d: wrong bytes", i)
		}
		rc.Close()
	}
}

// waitGoroutines waits (bounded) until no more goroutines run than before.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSFTPPoolConnections: readers busy at once each get their own SSH
// connection, up to SSHOptions.Connections; beyond that they share the
// least busy. Close ends every connection and every goroutine.
func TestSFTPPoolConnections(t *testing.T) {
	for _, tc := range []struct {
		name          string
		connections   int
		readers, want int
	}{
		{"default-is-one", 0, 3, 1},
		{"one", 1, 3, 1},
		{"four-of-four", 4, 4, 4},
		{"four-shared-by-six", 4, 6, 4},
		{"eight-but-two-readers", 8, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSSHFixture(t)
			data := f.write(t, "p", 3<<20, 21)
			f.opts.SSH.Connections = tc.connections
			before := runtime.NumGoroutine()
			op, err := open.Open(context.Background(), f.url(f.dir+"/"), f.opts)
			if err != nil {
				t.Fatal(err)
			}
			obj := sftpList(t, op.Source)["p"]
			rcs := openReaders(t, op.Source, obj, tc.readers)
			if got := f.d.Logins(t); got != tc.want {
				t.Errorf("%d readers busy at once with Connections %d: %d SSH connections, want %d", tc.readers, tc.connections, got, tc.want)
			}
			drainReaders(t, rcs, data)
			// Idle again: a new read takes a connection there is.
			if got, err := sftpRead(context.Background(), op.Source, obj, 5, 100_000); err != nil || !bytes.Equal(got, data[5:100_005]) {
				t.Fatalf("read on an idle pool: %v", err)
			}
			if got := f.d.Logins(t); got != tc.want {
				t.Errorf("a read on an idle pool dialled: %d SSH connections, want %d", got, tc.want)
			}
			op.Source.Close()
			if _, err := op.Source.List(context.Background()); err == nil {
				t.Error("List after Close: no error")
			}
			// Every session ended (SFTPReads waits for that) and its
			// bytes were asked for, each once.
			if got := f.d.SFTPBytesRead(t); got != 100_000+obj.Size/int64(tc.readers)*int64(tc.readers) {
				t.Errorf("sftp-server read %d bytes", got)
			}
			waitGoroutines(t, before)
		})
	}
}

// TestSFTPPoolSessionsKilled: the server side of every pooled connection
// dies mid-read. The open readers fail with a retryable error, without
// hanging; new reads get every byte over connections dialled anew;
// listing and remote hashing go on too.
func TestSFTPPoolSessionsKilled(t *testing.T) {
	f := newSSHFixture(t)
	data := f.write(t, "p", 4<<20, 22)
	f.opts.SSH.Connections = 4
	op := f.open(t, f.url(f.dir+"/"))
	src := op.Source
	obj := sftpList(t, src)["p"]
	rcs := openReaders(t, src, obj, 4)
	if got := f.d.Logins(t); got != 4 {
		t.Fatalf("%d SSH connections for 4 busy readers, want 4", got)
	}
	if n := f.d.KillSessions(t); n != 4 {
		t.Fatalf("killed %d connections, want the pool's 4", n)
	}
	for i, rc := range rcs {
		_, err := io.ReadAll(rc)
		if err == nil {
			t.Fatalf("reader %d: no error across a killed connection", i)
		}
		if source.IsPermanent(err) {
			t.Fatalf("reader %d: permanent error for a killed connection: %v", i, err)
		}
		rc.Close()
	}

	// The pool dials again: four readers busy at once, four new
	// connections, every byte right.
	drainReaders(t, openReaders(t, src, obj, 4), data)
	if got := f.d.Logins(t); got != 8 {
		t.Errorf("%d SSH connections in all; want the 4 killed and 4 new", got)
	}

	if _, err := src.List(context.Background()); err != nil {
		t.Fatalf("list after the kill: %v", err)
	}
	sums, err := src.(source.RemoteHasher).HashPieces(context.Background(), obj, 1<<20, []int{0, 3})
	if err != nil {
		t.Fatalf("remote hashing after the kill: %v", err)
	}
	want := sha256Pieces(data, 1<<20)
	for _, i := range []int{0, 3} {
		if !bytes.Equal(sums[i], want[i]) {
			t.Fatalf("piece %d: remote hash differs", i)
		}
	}
}

// TestSFTPPoolPassphraseAskedOnce: a key whose passphrase had to be typed
// stays unlocked for the source, so the pool still grows to its four
// connections and the passphrase is asked for once.
func TestSFTPPoolPassphraseAskedOnce(t *testing.T) {
	f := newSSHFixture(t)
	data := f.write(t, "p", 2<<20, 23)
	const pass = "pool passphrase"
	key, _ := f.d.NewUserKey(t, "enc_key", pass, true)
	var asked atomic.Int32
	f.opts.SSH.Identity = key
	f.opts.SSH.Connections = 4
	f.opts.SSH.Passphrase = func(string) ([]byte, error) {
		asked.Add(1)
		return []byte(pass), nil
	}
	op := f.open(t, f.url(f.dir+"/"))
	obj := sftpList(t, op.Source)["p"]
	rcs := openReaders(t, op.Source, obj, 4)
	drainReaders(t, rcs, data)
	if got := f.d.Logins(t); got != 4 {
		t.Errorf("%d SSH connections for 4 busy readers with a typed passphrase, want 4", got)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("passphrase asked for %d times, want once", n)
	}
}

// TestSFTPPoolServerRefusesMore: a server (or firewall) that lets only two
// connections in at once: the pool shares those two, and every read
// succeeds.
func TestSFTPPoolServerRefusesMore(t *testing.T) {
	f := newSSHFixture(t)
	data := f.write(t, "p", 3<<20, 24)
	l := startLimitProxy(t, f.d.Addr, 2)
	kh, err := os.OpenFile(f.knownHosts, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(kh, "[127.0.0.1]:%d %s\n", l.Addr().(*net.TCPAddr).Port, f.d.HostKeyPub)
	kh.Close()
	f.opts.SSH.Connections = 4
	op := f.open(t, fmt.Sprintf("sftp://%s@%s%s/", f.d.User, l.Addr(), f.dir))
	obj := sftpList(t, op.Source)["p"]
	rcs := openReaders(t, op.Source, obj, 4)
	drainReaders(t, rcs, data)
	if got := f.d.Logins(t); got != 2 {
		t.Errorf("%d SSH connections logged in, want the 2 let through", got)
	}
}

// startLimitProxy forwards TCP connections to target, at most max at once;
// more are closed at once, before the SSH banner.
func startLimitProxy(t *testing.T, target string, max int) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		open  int
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if open >= max {
				mu.Unlock()
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				mu.Unlock()
				c.Close()
				continue
			}
			open++
			conns = append(conns, c, s)
			mu.Unlock()
			go func() {
				_, _ = io.Copy(s, c)
				s.Close()
			}()
			go func() {
				_, _ = io.Copy(c, s)
				c.Close()
				mu.Lock()
				open--
				mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l
}
