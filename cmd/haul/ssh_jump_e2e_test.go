package main

// The haul binary reaching an SFTP host through a ProxyJump host named in
// ~/.ssh/config, both real sshd servers on 127.0.0.1 with keys of their
// own. The jump server logs each direct-tcpip forward (DEBUG1 after
// login), which proves the fetch went through it.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haul-dev/haul/internal/testenv"
)

// jumpHost puts a jump sshd in front of h and writes HOME/.ssh/config:
// "backup" is h's server behind "ProxyJump bastion" plus extra lines.
func jumpHost(t *testing.T, h *sshHost, extra ...string) *testenv.SSHD {
	t.Helper()
	jump := testenv.StartSSHD(t, testenv.SSHDConfigLines("Match all", "LogLevel DEBUG1"))
	h.addKeySecret(t, jump.UserKeyFile)
	cfg := h.d.SSHConfig("backup") + "    ProxyJump bastion\n"
	for _, l := range extra {
		cfg += "    " + l + "\n"
	}
	cfg += jump.SSHConfig("bastion")
	if err := os.MkdirAll(filepath.Join(h.home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.home, ".ssh", "config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return jump
}

func TestSSHProxyJumpFetch(t *testing.T) {
	h := newSSHHost(t)
	jump := jumpHost(t, h)
	jump.WriteKnownHosts(t, h.kh, false)
	parts := e2eNumberedSet("db.bak", 41, 500_001, 3*sshPiece, 1)
	h.put(t, parts)
	h.putSums(t, parts)

	src := "sftp://backup" + h.remote + "/"
	dest := t.TempDir()
	r := h.run(t, nil, sshFetchArgs(src, dest, "--known-hosts", h.kh)...)
	wantCode(t, r, 0)
	e2eIdentical(t, dest, parts)
	forward := fmt.Sprintf("target 127.0.0.1 port %d", h.d.Port)
	if !strings.Contains(jump.Log(), forward) {
		t.Fatalf("the jump server did not forward to the target (%q not in its log): the fetch did not go through it", forward)
	}
}

func TestSSHProxyJumpRefused(t *testing.T) {
	h := newSSHHost(t)
	jump := jumpHost(t, h)
	parts := e2eNumberedSet("db.bak", 42, 100_000)
	h.put(t, parts)
	src := "sftp://backup" + h.remote + "/"

	// The jump host's key is unknown (h.kh trusts only the target).
	r := h.run(t, nil, sshFetchArgs(src, t.TempDir(), "--known-hosts", h.kh)...)
	wantCode(t, r, 1)
	for _, s := range []string{"jump host bastion", jump.HostKeyFingerprint, "--accept-new-host-key", fmt.Sprintf("ssh-keyscan -p %d", jump.Port)} {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
		}
	}
	if strings.Contains(jump.Log(), "direct_tcpip") {
		t.Fatal("the jump server forwarded a connection though its key was refused")
	}

	// ProxyCommand stays refused, pointing at ProxyJump.
	cfg := h.d.SSHConfig("backup") + "    ProxyCommand ssh -W %h:%p bastion\n" + jump.SSHConfig("bastion")
	if err := os.WriteFile(filepath.Join(h.home, ".ssh", "config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	jump.WriteKnownHosts(t, h.kh, false)
	r = h.run(t, nil, sshFetchArgs(src, t.TempDir(), "--known-hosts", h.kh)...)
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "ProxyCommand") || !strings.Contains(r.stderr, "ProxyJump") {
		t.Fatalf("stderr does not explain ProxyCommand and suggest ProxyJump:\n%s", r.stderr)
	}
}
