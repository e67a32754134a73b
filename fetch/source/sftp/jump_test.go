package sftp_test

// ProxyJump against real OpenSSH servers on 127.0.0.1: a target sshd
// reached through a jump sshd, each with its own user key, so that a hop
// that used the other's config could not log in. The jump server logs at
// DEBUG1 after login, where sshd names every direct-tcpip forward: that
// is the proof the bytes went through it.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/source/open"
	"github.com/haul-dev/haul/internal/sshdial"
	"github.com/haul-dev/haul/internal/testenv"
)

// logForwards makes sshd log at DEBUG1 once a user has logged in: it
// names each direct-tcpip forward there ("target 127.0.0.1 port N").
var logForwards = []string{"Match all", "LogLevel DEBUG1"}

// jumpLab is a target sshd serving a directory, a jump sshd in front of
// it, an ssh config that names them "backup" (ProxyJump bastion) and
// "bastion", and a known_hosts file that trusts both.
type jumpLab struct {
	jump, target *testenv.SSHD
	dir          string
	home         string
	cfg          string
	kh           string
	opts         source.OpenOptions
}

// newJumpLab starts both servers; jumpOpts configure the jump sshd.
func newJumpLab(t *testing.T, jumpOpts ...testenv.SSHDOption) *jumpLab {
	t.Helper()
	l := &jumpLab{home: t.TempDir(), dir: t.TempDir()}
	t.Setenv("HOME", l.home)
	t.Setenv("SSH_AUTH_SOCK", "")
	l.jump = testenv.StartSSHD(t, append([]testenv.SSHDOption{testenv.SSHDConfigLines(logForwards...)}, jumpOpts...)...)
	l.target = testenv.StartSSHD(t)
	l.kh = filepath.Join(t.TempDir(), "known_hosts")
	l.jump.WriteKnownHosts(t, l.kh, false)
	l.target.WriteKnownHosts(t, l.kh, false)
	l.cfg = filepath.Join(t.TempDir(), "ssh_config")
	l.writeConfig(t, "ProxyJump bastion")
	l.opts.SSH = source.SSHOptions{KnownHosts: l.kh, ConfigFile: l.cfg}
	return l
}

// writeConfig writes the ssh config: backup gets the given lines, and
// bastion and bastion2 both reach the jump server.
func (l *jumpLab) writeConfig(t *testing.T, backupLines ...string) {
	t.Helper()
	var b strings.Builder
	b.WriteString(l.target.SSHConfig("backup"))
	for _, line := range backupLines {
		b.WriteString("    " + line + "\n")
	}
	b.WriteString(l.jump.SSHConfig("bastion"))
	b.WriteString(l.jump.SSHConfig("bastion2"))
	// The jump server under its literal address, for "USER@HOST:PORT"
	// hops: its key comes from here, user and port from the hop.
	fmt.Fprintf(&b, "Host %s\n    IdentityFile %s\n", l.jump.Host, l.jump.UserKeyFile)
	if err := os.WriteFile(l.cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// forwardsTo counts the direct-tcpip forwards the jump server opened to
// port on 127.0.0.1.
func (l *jumpLab) forwardsTo(port int) int {
	re := regexp.MustCompile(`direct_tcpip: .*target 127\.0\.0\.1 port ` + fmt.Sprint(port) + `\b`)
	return len(re.FindAllString(l.jump.Log(), -1))
}

func (l *jumpLab) open(t *testing.T) (*source.Opened, error) {
	t.Helper()
	op, err := open.Open(context.Background(), "sftp://backup"+l.dir+"/", l.opts)
	if err == nil {
		t.Cleanup(func() { op.Source.Close() })
	}
	return op, err
}

// readAll lists the source and reads every object whole.
func readAll(t *testing.T, src source.Source) map[string][]byte {
	t.Helper()
	got := map[string][]byte{}
	for name, obj := range sftpList(t, src) {
		b, err := sftpRead(context.Background(), src, obj, 0, obj.Size)
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		got[name] = b
	}
	return got
}

func (l *jumpLab) write(t *testing.T, name string, n int, seed uint64) []byte {
	t.Helper()
	f := &sshFixture{dir: l.dir}
	return f.write(t, name, n, seed)
}

func TestSFTPProxyJump(t *testing.T) {
	l := newJumpLab(t)
	want := map[string][]byte{
		"site.tar.gz":   l.write(t, "site.tar.gz", 1<<20+17, 31),
		"site.tar.gz.1": l.write(t, "site.tar.gz.1", 300_000, 32),
	}
	for _, tc := range []struct {
		name       string
		proxyJump  string
		jumpTarget []int // ports the jump server must have forwarded to
	}{
		{"one jump", "ProxyJump bastion", []int{0}},
		{"chain of two", "ProxyJump bastion,bastion2", []int{1, 0}},
		{"user@host:port hop", "ProxyJump bastion," + l.jump.User + "@" + l.jump.Addr, []int{1, 0}},
		{"ssh:// hop", "ProxyJump ssh://" + l.jump.User + "@" + l.jump.Addr, []int{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l.writeConfig(t, tc.proxyJump)
			ports := map[int]int{0: l.target.Port, 1: l.jump.Port}
			before := map[int]int{}
			for _, p := range tc.jumpTarget {
				before[p] = l.forwardsTo(ports[p])
			}
			op, err := l.open(t)
			if err != nil {
				t.Fatal(err)
			}
			got := readAll(t, op.Source)
			if len(got) != len(want) {
				t.Fatalf("listed %d files, want %d", len(got), len(want))
			}
			for name, data := range want {
				if !bytes.Equal(got[name], data) {
					t.Fatalf("%s: %d bytes differ from the %d on the target", name, len(got[name]), len(data))
				}
			}
			for _, p := range tc.jumpTarget {
				if n := l.forwardsTo(ports[p]) - before[p]; n < 1 {
					t.Fatalf("the jump server forwarded nothing to port %d: the connection did not go through it; its log:\n%s", ports[p], l.jump.Log())
				}
			}
			// Closing the source closes the jump connections under it:
			// the jump server sees every login end.
			op.Source.Close()
			waitAllDisconnected(t, l.jump)
		})
	}
}

var (
	sshdLoginRe = regexp.MustCompile(`Accepted publickey for \S+ from \S+ port (\d+)`)
	sshdGoneRe  = regexp.MustCompile(`(?:Disconnected from|Read error from|Connection closed by|Connection reset by)\b.* port (\d+)`)
)

// waitAllDisconnected waits until the server has seen every client that
// logged in leave.
func waitAllDisconnected(t *testing.T, d *testenv.SSHD) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		log := d.Log()
		open := map[string]bool{}
		for _, m := range sshdLoginRe.FindAllStringSubmatch(log, -1) {
			open[m[1]] = true
		}
		for _, m := range sshdGoneRe.FindAllStringSubmatch(log, -1) {
			delete(open, m[1])
		}
		if len(open) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections to %s still open after the source was closed; its log:\n%s", len(open), d.Addr, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSSHProxyJumpHostKeys(t *testing.T) {
	l := newJumpLab(t)
	l.write(t, "p", 1000, 33)
	onlyTarget := filepath.Join(t.TempDir(), "known_hosts")
	l.target.WriteKnownHosts(t, onlyTarget, false)
	l.opts.SSH.KnownHosts = onlyTarget

	// The jump host's key is unknown: refused, naming the jump host and
	// both fixes.
	_, err := l.open(t)
	var he *sshdial.HostKeyError
	if !errors.Is(err, sshdial.ErrHostKeyUnknown) || !errors.As(err, &he) || !source.IsPermanent(err) {
		t.Fatalf("unknown jump host key: %v", err)
	}
	msg := err.Error()
	t.Logf("message: %s", msg)
	for _, s := range []string{"jump host bastion", l.jump.HostKeyFingerprint, "--accept-new-host-key", fmt.Sprintf("ssh-keyscan -p %d -t ed25519 127.0.0.1", l.jump.Port)} {
		if !strings.Contains(msg, s) {
			t.Errorf("message lacks %q", s)
		}
	}
	if he.Fingerprint != l.jump.HostKeyFingerprint {
		t.Errorf("fingerprint %s, want the jump server's %s", he.Fingerprint, l.jump.HostKeyFingerprint)
	}

	// --accept-new-host-key records it once, and the fetch goes through.
	l.opts.SSH.AcceptNewHostKey = true
	op, err := l.open(t)
	if err != nil {
		t.Fatalf("with accept-new: %v", err)
	}
	if got := readAll(t, op.Source); len(got["p"]) != 1000 {
		t.Fatalf("read %d bytes", len(got["p"]))
	}
	b, _ := os.ReadFile(onlyTarget)
	if n := strings.Count(string(b), l.jump.KnownHostsLine(false)); n != 1 {
		t.Fatalf("known_hosts holds the jump key %d times, want 1:\n%s", n, b)
	}

	// A wrong key for the jump host: refused, with or without accept-new.
	wrong := filepath.Join(t.TempDir(), "known_hosts")
	l.target.WriteKnownHosts(t, wrong, false)
	other := fmt.Sprintf("[127.0.0.1]:%d %s\n", l.jump.Port, l.target.HostKeyPub)
	f, err := os.OpenFile(wrong, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(other)
	f.Close()
	l.opts.SSH.KnownHosts = wrong
	for _, accept := range []bool{false, true} {
		l.opts.SSH.AcceptNewHostKey = accept
		_, err := l.open(t)
		if !errors.Is(err, sshdial.ErrHostKeyChanged) || !strings.Contains(err.Error(), "jump host bastion") {
			t.Fatalf("accept-new=%v: changed jump host key: %v", accept, err)
		}
	}
	if n := l.forwardsTo(l.target.Port); n != 1 {
		t.Errorf("%d forwards to the target, want 1 (a refused jump host must not be used)", n)
	}

	// The target's key is unknown behind the jump host: the ssh-keyscan
	// hint runs it where the target is reachable.
	onlyJump := filepath.Join(t.TempDir(), "known_hosts")
	l.jump.WriteKnownHosts(t, onlyJump, false)
	l.opts.SSH = source.SSHOptions{KnownHosts: onlyJump, ConfigFile: l.cfg}
	_, err = l.open(t)
	if !errors.Is(err, sshdial.ErrHostKeyUnknown) || !errors.As(err, &he) || he.Fingerprint != l.target.HostKeyFingerprint {
		t.Fatalf("unknown target key: %v", err)
	}
	if want := fmt.Sprintf("ssh bastion ssh-keyscan -p %d", l.target.Port); !strings.Contains(err.Error(), want) {
		t.Errorf("message lacks %q: %v", want, err)
	}
}

func TestSSHProxyJumpRefusals(t *testing.T) {
	t.Run("jump host refuses the key", func(t *testing.T) {
		l := newJumpLab(t)
		stranger := filepath.Join(t.TempDir(), "id_stranger")
		if _, err := testenv.WriteUserKey(stranger, ""); err != nil {
			t.Fatal(err)
		}
		cfg := l.target.SSHConfig("backup") + "    ProxyJump bastion\n" +
			fmt.Sprintf("Host bastion\n    HostName %s\n    Port %d\n    IdentityFile %s\n", l.jump.Host, l.jump.Port, stranger)
		if err := os.WriteFile(l.cfg, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := l.open(t)
		if !errors.Is(err, source.ErrAuth) || !source.IsPermanent(err) || !strings.Contains(err.Error(), "jump host bastion") || !strings.Contains(err.Error(), stranger) {
			t.Fatalf("refused at the jump host: %v", err)
		}
		t.Logf("message: %v", err)
	})
	t.Run("jump host forbids forwarding", func(t *testing.T) {
		l := newJumpLab(t, testenv.SSHDConfigLines("AllowTcpForwarding no"))
		_, err := l.open(t)
		if err == nil || !source.IsPermanent(err) || !strings.Contains(err.Error(), "AllowTcpForwarding") || !strings.Contains(err.Error(), "bastion") {
			t.Fatalf("forwarding forbidden: %v", err)
		}
		t.Logf("message: %v", err)
	})
	t.Run("jump host cannot reach the target", func(t *testing.T) {
		l := newJumpLab(t)
		l.target.Stop(t)
		_, err := l.open(t)
		if err == nil || source.IsPermanent(err) || !strings.Contains(err.Error(), "jump host bastion could not connect") {
			t.Fatalf("target down behind the jump host: %v", err)
		}
		t.Logf("message: %v", err)
	})
	t.Run("ProxyCommand", func(t *testing.T) {
		l := newJumpLab(t)
		l.writeConfig(t, "ProxyCommand ssh -W %h:%p bastion")
		_, err := l.open(t)
		if !errors.Is(err, source.ErrBadSource) || !strings.Contains(err.Error(), "ProxyCommand") || !strings.Contains(err.Error(), "ProxyJump") {
			t.Fatalf("ProxyCommand: %v", err)
		}
		if n := strings.Count(l.jump.Log(), "Accepted publickey"); n != 0 {
			t.Fatalf("haul logged in to the jump server %d times for a ProxyCommand host", n)
		}
	})
}

// TestSFTPProxyJumpSilentLink: when the link to the jump host goes
// silent, keepalives still find it dead, the read fails instead of
// hanging, and the next read reconnects through the jump host.
func TestSFTPProxyJumpSilentLink(t *testing.T) {
	l := newJumpLab(t)
	data := l.write(t, "p", 2<<20, 34)
	// A bad link in front of the jump server, trusted in known_hosts.
	proxy, _ := (&sshFixture{d: l.jump, knownHosts: l.kh}).viaProxy(t)
	cfg := fmt.Sprintf("Host bastion\n    Port %d\n\nHost *\n    ServerAliveInterval 1\n    ServerAliveCountMax 2\n\n", proxy.port())
	old, _ := os.ReadFile(l.cfg)
	if err := os.WriteFile(l.cfg, append([]byte(cfg), old...), 0o600); err != nil {
		t.Fatal(err)
	}
	op, err := l.open(t)
	if err != nil {
		t.Fatal(err)
	}
	obj := sftpList(t, op.Source)["p"]
	rc, err := op.Source.ReadRange(context.Background(), obj, 0, obj.Size)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	proxy.stall()
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(rc)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("read over a silent jump link: no error")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("read over a silent jump link still hangs after 30s")
	}
	proxy.flow()
	got, err := sftpRead(context.Background(), op.Source, obj, 100, 300_000)
	if err != nil || !bytes.Equal(got, data[100:300_100]) {
		t.Fatalf("after the silent link: %v", err)
	}
}
