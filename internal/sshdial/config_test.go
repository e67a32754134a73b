package sshdial

import (
	"crypto/ed25519"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestResolveSSHTarget(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	cfg := filepath.Join(home, "cfg")
	conf := `
Host backup
    HostName 10.1.2.3
    Port 2222
    User operator
    IdentityFile ~/.ssh/backup_key
    IdentityFile %d/.ssh/second_%r@%h
    UserKnownHostsFile ~/kh1 ~/kh2
    HashKnownHosts yes

Host *.example
    HostName %h.internal
    HostKeyAlias shared-alias

Host jumpy
    ProxyCommand nc %h %p

Host *
    User fallback
    ConnectTimeout 7
`
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := Options{ConfigFile: cfg}

	tg, err := resolveSSHTarget(mustURL(t, "sftp://backup/srv/x"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if tg.hostName != "10.1.2.3" || tg.port != 2222 || tg.user != "operator" || tg.addr() != "10.1.2.3:2222" {
		t.Fatalf("target %+v", tg)
	}
	wantIDs := []string{home + "/.ssh/backup_key", home + "/.ssh/second_operator@10.1.2.3"}
	if strings.Join(tg.identityFiles, "|") != strings.Join(wantIDs, "|") {
		t.Fatalf("identity files %q, want %q", tg.identityFiles, wantIDs)
	}
	if strings.Join(tg.userKnownHosts, "|") != home+"/kh1|"+home+"/kh2" || !tg.hashKnownHosts {
		t.Fatalf("known hosts %q hash=%v", tg.userKnownHosts, tg.hashKnownHosts)
	}
	if tg.connectTimeout.Seconds() != 7 {
		t.Fatalf("connect timeout %v", tg.connectTimeout)
	}

	// The URL's user and port win over the config; the alias matches
	// case-insensitively, as in ssh.
	tg, err = resolveSSHTarget(mustURL(t, "ssh://root@BACKUP:2200/"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if tg.hostName != "10.1.2.3" || tg.port != 2200 || tg.user != "root" {
		t.Fatalf("override: %+v", tg)
	}

	tg, err = resolveSSHTarget(mustURL(t, "sftp://db.example/x"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if tg.hostName != "db.example.internal" || tg.hostKeyAlias != "shared-alias" || tg.user != "fallback" || tg.port != 22 {
		t.Fatalf("pattern: %+v", tg)
	}
	if len(tg.userKnownHosts) != 1 || tg.userKnownHosts[0] != filepath.Join(home, ".ssh", "known_hosts") {
		t.Fatalf("default known_hosts %q", tg.userKnownHosts)
	}

	for _, bad := range []string{"sftp://u:secret@host/x", "sftp://host:0/x", "sftp:///x", "sftp://jumpy/x"} {
		_, err := resolveSSHTarget(mustURL(t, bad), opts)
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the password is in the message: %v", bad, err)
		}
	}

	// An explicit config file that is missing is an error; the default
	// one missing is not.
	if _, err := resolveSSHTarget(mustURL(t, "sftp://h/x"), Options{ConfigFile: filepath.Join(home, "nope")}); err == nil {
		t.Error("missing explicit config: no error")
	}
	if _, err := resolveSSHTarget(mustURL(t, "sftp://h/x"), Options{}); err != nil {
		t.Errorf("no ~/.ssh/config: %v", err)
	}
}

func testHostKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestHostKeyCheckerUnit(t *testing.T) {
	dir := t.TempDir()
	key, other := testHostKey(t), testHostKey(t)
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2222}
	target := &sshTarget{hostName: "127.0.0.1", port: 2222}

	// Unknown: a typed error with the fingerprint and the way out.
	kh := filepath.Join(dir, "ssh", "known_hosts")
	hk, err := newHostKeyChecker(target, []string{kh}, kh, false)
	if err != nil {
		t.Fatal(err)
	}
	err = hk.check("", remote, key)
	var he *HostKeyError
	if !errors.As(err, &he) || !errors.Is(err, ErrHostKeyUnknown) || he.Changed {
		t.Fatalf("unknown host: %v", err)
	}
	msg := err.Error()
	for _, want := range []string{ssh.FingerprintSHA256(key), "[127.0.0.1]:2222", "--accept-new-host-key", "ssh-keyscan -p 2222 -t ed25519 127.0.0.1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q: %s", want, msg)
		}
	}
	if _, err := os.Stat(kh); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("known_hosts touched without accept-new: %v", err)
	}

	// accept-new creates the directory (0700) and the file (0600).
	hk, _ = newHostKeyChecker(target, []string{kh}, kh, true)
	if err := hk.check("", remote, key); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Dir(kh)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(kh); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v %v", fi.Mode(), err)
	}
	b, _ := os.ReadFile(kh)
	if !strings.HasPrefix(string(b), "[127.0.0.1]:2222 ssh-ed25519 ") || strings.Count(string(b), "\n") != 1 {
		t.Fatalf("recorded %q", b)
	}
	// Reconnects in the same run see the recorded key.
	if err := hk.check("", remote, key); err != nil {
		t.Fatal(err)
	}

	// A fresh checker reads it; another key for the same host is a change,
	// refused even with accept-new, and the file stays as it was.
	hk, _ = newHostKeyChecker(target, []string{kh}, kh, true)
	if err := hk.check("", remote, key); err != nil {
		t.Fatalf("recorded key: %v", err)
	}
	err = hk.check("", remote, other)
	if !errors.As(err, &he) || !errors.Is(err, ErrHostKeyChanged) || !he.Changed {
		t.Fatalf("changed key: %v", err)
	}
	if !strings.Contains(err.Error(), "CHANGED") || !strings.Contains(err.Error(), ssh.FingerprintSHA256(other)) || !strings.Contains(err.Error(), kh+":1") {
		t.Errorf("message: %s", err)
	}
	if b2, _ := os.ReadFile(kh); string(b2) != string(b) {
		t.Fatal("known_hosts changed after a refused key")
	}

	// Key types known for the host come first in the offered algorithms.
	if algos := hk.algorithms(); len(algos) == 0 || algos[0] != ssh.KeyAlgoED25519 {
		t.Fatalf("algorithms %v", algos)
	}

	// Hashed entries and port 22 plain names.
	kh2 := filepath.Join(dir, "known_hosts2")
	line := knownhosts.HashHostname("backup.example") + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))) + "\n"
	if err := os.WriteFile(kh2, []byte("# comment\n"+line), 0o600); err != nil {
		t.Fatal(err)
	}
	hk, err = newHostKeyChecker(&sshTarget{hostName: "backup.example", port: 22}, []string{kh2}, kh2, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := hk.check("", remote, key); err != nil {
		t.Fatalf("hashed entry: %v", err)
	}
	// The same name on another port is another host.
	hk, _ = newHostKeyChecker(&sshTarget{hostName: "backup.example", port: 2022}, []string{kh2}, kh2, false)
	if err := hk.check("", remote, key); !errors.Is(err, ErrHostKeyUnknown) {
		t.Fatalf("other port: %v", err)
	}

	// A revoked key is refused.
	kh3 := filepath.Join(dir, "known_hosts3")
	if err := os.WriteFile(kh3, []byte("@revoked * "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hk, _ = newHostKeyChecker(target, []string{kh3}, kh3, true)
	if err := hk.check("", remote, key); !errors.Is(err, ErrHostKeyChanged) {
		t.Fatalf("revoked: %v", err)
	}

	// accept-new records a hashed name when HashKnownHosts is on.
	kh4 := filepath.Join(dir, "known_hosts4")
	hk, _ = newHostKeyChecker(&sshTarget{hostName: "127.0.0.1", port: 2222, hashKnownHosts: true}, []string{kh4}, kh4, true)
	if err := hk.check("", remote, key); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(kh4)
	if !strings.HasPrefix(string(b), "|1|") {
		t.Fatalf("not hashed: %q", b)
	}
	hk, _ = newHostKeyChecker(&sshTarget{hostName: "127.0.0.1", port: 2222}, []string{kh4}, kh4, false)
	if err := hk.check("", remote, key); err != nil {
		t.Fatalf("hashed, recorded by us: %v", err)
	}
}

func TestAppendKnownHostsKeepsSymlinkAndContent(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles_known_hosts")
	if err := os.WriteFile(real, []byte("old-line-without-newline"), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "known_hosts")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if err := appendKnownHosts(link, "new line\n"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("symlink replaced: %v", err)
	}
	b, _ := os.ReadFile(real)
	if string(b) != "old-line-without-newline\nnew line\n" {
		t.Fatalf("content %q", b)
	}
	if fi, _ := os.Stat(real); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", fi.Mode())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("temporary files left: %v", ents)
	}
}

// TestNoHomeKnownHosts: under systemd without User= there is no HOME; the
// error names the host, the file it would have read and how to give one.
func TestNoHomeKnownHosts(t *testing.T) {
	t.Setenv("HOME", "")
	u, _ := url.Parse("sftp://backup@nas.example:2222/srv/")
	cfg := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(u, Options{ConfigFile: cfg})
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("%v, want ErrConfig", err)
	}
	for _, s := range []string{"nas.example", "HOME is not set", "~/.ssh/known_hosts", "--known-hosts FILE", "HAUL_KNOWN_HOSTS", "User="} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("the message does not say %q: %v", s, err)
		}
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if _, err := New(u, Options{ConfigFile: cfg, KnownHosts: kh}); err != nil {
		t.Errorf("with --known-hosts: %v", err)
	}
}
