package sftp_test

// An encrypted key is unlocked once per source, against real OpenSSH
// servers: a reconnect after a dropped link, a pool of connections and
// every hop of a ProxyJump chain take the key unlocked for the first
// login instead of asking for its passphrase again.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/source/open"
)

// passphrases answers prompts from a table of key files, and counts the
// prompts for each.
type passphrases struct {
	mu    sync.Mutex
	pass  map[string]string
	asked map[string]int
}

func newPassphrases(pass map[string]string) *passphrases {
	return &passphrases{pass: pass, asked: map[string]int{}}
}

func (p *passphrases) ask(keyFile string) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked[keyFile]++
	pass, ok := p.pass[keyFile]
	if !ok {
		return nil, fmt.Errorf("no passphrase for %s in the test", keyFile)
	}
	return []byte(pass), nil
}

func (p *passphrases) times(keyFile string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.asked[keyFile]
}

// readRetrying reads obj whole, trying again (as fetch's workers do)
// when a connection turns out dead.
func readRetrying(src source.Source, obj source.Object) (got []byte, err error) {
	for try := 0; try < 3; try++ {
		if got, err = sftpRead(context.Background(), src, obj, 0, obj.Size); err == nil {
			return got, nil
		}
	}
	return nil, err
}

// TestSFTPReconnectAsksPassphraseOnce: the link drops after a login with
// an encrypted key; the reconnect logs in with the key unlocked for the
// first login, without asking again.
func TestSFTPReconnectAsksPassphraseOnce(t *testing.T) {
	var key string
	pp := newPassphrases(nil)
	proxy, src, obj, data := proxiedPart(t, 2<<20, 41, func(f *sshFixture) {
		key, _ = f.d.NewUserKey(t, "enc_reconnect", "reconnect passphrase", true)
		pp.pass = map[string]string{key: "reconnect passphrase"}
		f.opts.SSH.Identity = key
		f.opts.SSH.Passphrase = pp.ask
	})
	// The link drops under the connection that listed the files.
	proxy.cut()
	if got, err := readRetrying(src, obj); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after the link dropped: %v", err)
	}
	proxy.mu.Lock()
	accepted := proxy.accepted
	proxy.mu.Unlock()
	if accepted != 2 {
		t.Errorf("%d connections, want 2 (the first and the reconnect)", accepted)
	}
	if n := pp.times(key); n != 1 {
		t.Errorf("passphrase asked for %d times over a reconnect, want once", n)
	}
}

// TestSFTPProxyJumpEncryptedKeysAskedOnce: a chain of two jump hops that
// both log in with one encrypted key, to a target with another; a pool
// of four connections, then all of them killed and dialled again. Each
// key file is asked for once, however many logins use it.
func TestSFTPProxyJumpEncryptedKeysAskedOnce(t *testing.T) {
	l := newJumpLab(t)
	data := l.write(t, "p", 4<<20, 42)
	jumpKey, _ := l.jump.NewUserKey(t, "enc_jump", "jump passphrase", true)
	targetKey, _ := l.target.NewUserKey(t, "enc_target", "target passphrase", true)
	pp := newPassphrases(map[string]string{jumpKey: "jump passphrase", targetKey: "target passphrase"})
	// Only the encrypted keys: no IdentityFile that needs no passphrase.
	host := func(alias, hostName string, port int, user, key string) string {
		return fmt.Sprintf("Host %s\n    HostName %s\n    Port %d\n    User %s\n    IdentityFile %s\n    IdentitiesOnly yes\n", alias, hostName, port, user, key)
	}
	cfg := host("backup", l.target.Host, l.target.Port, l.target.User, targetKey) + "    ProxyJump bastion,bastion2\n" +
		host("bastion", l.jump.Host, l.jump.Port, l.jump.User, jumpKey) +
		host("bastion2", l.jump.Host, l.jump.Port, l.jump.User, jumpKey)
	if err := os.WriteFile(l.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	l.opts.SSH.Passphrase = pp.ask
	l.opts.SSH.Connections = 4

	op, err := l.open(t)
	if err != nil {
		t.Fatal(err)
	}
	obj := sftpList(t, op.Source)["p"]
	drainReaders(t, openReaders(t, op.Source, obj, 4), data)
	if got := l.target.Logins(t); got != 4 {
		t.Errorf("%d logins to the target for 4 busy readers, want 4", got)
	}
	if got := l.jump.Logins(t); got != 8 {
		t.Errorf("%d logins to the jump server, want 8 (two hops for each of 4 connections)", got)
	}

	// Every connection dies; the next reads dial the chain again.
	if n := l.target.KillSessions(t); n != 4 {
		t.Fatalf("killed %d connections, want the pool's 4", n)
	}
	if got, err := readRetrying(op.Source, obj); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after the connections were killed: %v", err)
	}
	if got := l.target.Logins(t); got < 5 {
		t.Fatalf("%d logins to the target: no connection was dialled after the kill", got)
	}
	for _, k := range []string{jumpKey, targetKey} {
		if n := pp.times(k); n != 1 {
			t.Errorf("passphrase of %s asked for %d times, want once", k, n)
		}
	}
}

// TestSFTPPassphraseWrongThenRight: a mistyped passphrase is asked for
// again, as before, and the key the second answer unlocked serves the
// whole pool. Three wrong answers end in a refused login that names the
// key and not the passphrase.
func TestSFTPPassphraseWrongThenRight(t *testing.T) {
	f := newSSHFixture(t)
	data := f.write(t, "p", 2<<20, 43)
	const pass = "right passphrase"
	key, _ := f.d.NewUserKey(t, "enc_typo", pass, true)
	f.opts.SSH.Identity = key
	f.opts.SSH.Connections = 4

	t.Run("wrong then right", func(t *testing.T) {
		var asked atomic.Int32
		f.opts.SSH.Passphrase = func(string) ([]byte, error) {
			if asked.Add(1) == 1 {
				return []byte("wrong passphrase"), nil
			}
			return []byte(pass), nil
		}
		op := f.open(t, f.url(f.dir+"/"))
		obj := sftpList(t, op.Source)["p"]
		drainReaders(t, openReaders(t, op.Source, obj, 4), data)
		if got := f.d.Logins(t); got != 4 {
			t.Errorf("%d SSH connections for 4 busy readers, want 4", got)
		}
		if n := asked.Load(); n != 2 {
			t.Errorf("passphrase asked for %d times, want 2 (the wrong answer and the right one)", n)
		}
	})

	t.Run("always wrong", func(t *testing.T) {
		var asked atomic.Int32
		f.opts.SSH.Passphrase = func(string) ([]byte, error) {
			asked.Add(1)
			return []byte("hunter2 typo"), nil
		}
		_, err := open.Open(context.Background(), f.url(f.dir+"/"), f.opts)
		if !errors.Is(err, source.ErrAuth) || !source.IsPermanent(err) {
			t.Fatalf("%v, want a permanent ErrAuth", err)
		}
		for _, want := range []string{key, "wrong passphrase, 3 tries"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message lacks %q: %v", want, err)
			}
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), pass) {
			t.Error("a passphrase is in the message")
		}
		t.Logf("message: %v", err)
		if n := asked.Load(); n != 3 {
			t.Errorf("passphrase asked for %d times, want 3", n)
		}
	})
}
