package main

// End-to-end tests of issue 4 (SSH/SFTP): the haul binary against a real
// OpenSSH sshd on 127.0.0.1 with temporary host and user keys, serving SFTP
// through OpenSSH's sftp-server, whose transfer log tells how many bytes
// of each remote file were read. Every haul run gets HOME=<empty temp
// dir>, no ssh-agent unless the test is about the agent, and its own
// --known-hosts file, so nothing of the machine's ~/.ssh takes part.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/internal/testenv"
)

// sshPiece is the piece size of every test here: small, so that a few MB
// make many pieces and "at most two pieces" is a sharp bound.
const sshPiece = 64 << 10

// sshHost is a real sshd serving a directory, and what a haul run needs
// to reach it: an empty HOME, a known_hosts file that trusts the server
// (unless a test removes it) and the user key.
type sshHost struct {
	d      *testenv.SSHD
	remote string // the served directory (an absolute path on the "remote")
	home   string
	kh     string
	// secrets must never show in any output: the private key files'
	// contents and passphrases.
	secrets []string
}

func newSSHHost(t *testing.T, opts ...testenv.SSHDOption) *sshHost {
	t.Helper()
	h := &sshHost{d: testenv.StartSSHD(t, opts...), remote: t.TempDir(), home: t.TempDir()}
	h.kh = filepath.Join(t.TempDir(), "known_hosts")
	h.d.WriteKnownHosts(t, h.kh, false)
	h.addKeySecret(t, h.d.UserKeyFile)
	return h
}

// addKeySecret records the base64 body of a private key file as a secret.
func (h *sshHost) addKeySecret(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		// Short tails ("Q==") could turn up anywhere by chance.
		if line = strings.TrimSpace(line); len(line) >= 16 && !strings.HasPrefix(line, "-----") {
			h.secrets = append(h.secrets, line)
		}
	}
}

// env is the environment of a haul run: an empty HOME, no agent.
func (h *sshHost) env(extra ...string) []string {
	return append([]string{"HOME=" + h.home, "SSH_AUTH_SOCK="}, extra...)
}

// url is SCHEME://USER@127.0.0.1:PORT/REMOTE/.
func (h *sshHost) url(scheme string) string {
	return fmt.Sprintf("%s://%s@%s%s/", scheme, h.d.User, h.d.Addr, h.remote)
}

// keyArgs are the flags that reach the host with the test's key.
func (h *sshHost) keyArgs() []string {
	return []string{"--identity", h.d.UserKeyFile, "--known-hosts", h.kh}
}

// put writes the parts into the served directory.
func (h *sshHost) put(t *testing.T, parts []e2ePart) {
	t.Helper()
	e2eWriteDir(t, h.remote, parts)
}

// putManifest writes a haul manifest with sshPiece pieces beside the
// parts, with `haul manifest` on the served directory.
func (h *sshHost) putManifest(t *testing.T, parts []e2ePart) {
	t.Helper()
	r := runHaul(t, h.env(), "manifest", "--piece-size", "64K", "-o", filepath.Join(h.remote, parts[0].name+".haul.json"), h.remote)
	wantCode(t, r, 0)
}

// putSums writes a SHA256SUMS (whole-part hashes, nothing per piece)
// beside the parts.
func (h *sshHost) putSums(t *testing.T, parts []e2ePart) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(h.remote, "SHA256SUMS"), e2eSHA256SUMS(parts), 0o644); err != nil {
		t.Fatal(err)
	}
}

// remotePath is the path sftp-server logs for a part.
func (h *sshHost) remotePath(name string) string { return path.Join(h.remote, name) }

// run runs haul with the host's env (plus extra) and fails the test if a
// secret shows in its output.
func (h *sshHost) run(t *testing.T, extra []string, args ...string) result {
	t.Helper()
	r := runHaul(t, h.env(extra...), args...)
	h.noSecret(t, r)
	return r
}

func (h *sshHost) noSecret(t *testing.T, r result) {
	t.Helper()
	for _, s := range h.secrets {
		for what, text := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
			if strings.Contains(text, s) {
				t.Fatalf("the secret %q shows in %s:\n%s", s, what, text)
			}
		}
	}
	for what, text := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
		if strings.Contains(text, "PRIVATE KEY") {
			t.Fatalf("private key material shows in %s:\n%s", what, text)
		}
	}
}

// start starts haul in the background with the host's env; the channel
// yields its result when it ends (code -1: killed by a signal). It is
// killed when the test ends.
func (h *sshHost) start(t *testing.T, args ...string) (*exec.Cmd, <-chan result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	cmd := haulCmd(ctx, h.env(), args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan result, 1)
	go func() {
		defer cancel()
		_ = cmd.Wait()
		done <- result{stdout: so.String(), stderr: se.String(), code: cmd.ProcessState.ExitCode()}
	}()
	t.Cleanup(cancel)
	return cmd, done
}

// encryptedKey makes a passphrase-protected key the server accepts; the
// key and the passphrase are secrets from now on.
func (h *sshHost) encryptedKey(t *testing.T, name, passphrase string) string {
	t.Helper()
	file, _ := h.d.NewUserKey(t, name, passphrase, true)
	h.addKeySecret(t, file)
	h.secrets = append(h.secrets, passphrase)
	return file
}

// sshFetchArgs is `haul fetch SOURCE DEST` with the usual test flags.
func sshFetchArgs(src, dest string, more ...string) []string {
	return append([]string{"fetch", src, dest, "--chunk-size", "64K", "-j", "4", "--progress", "log"}, more...)
}

// TestSSHFetch is issue 4 acceptance 1, first half: a set fetched over
// sftp:// with -i and --known-hosts is byte-identical, verified by the
// manifest beside it, and the SFTP server read each part exactly once.
func TestSSHFetch(t *testing.T) {
	h := newSSHHost(t)
	parts := e2eNumberedSet("db.bak", 1, 700_001, 3*sshPiece, 0, 250_000, 1)
	h.put(t, parts)
	h.putManifest(t, parts)
	before := h.d.SFTPReads(t)

	dest := t.TempDir()
	r := h.run(t, nil, sshFetchArgs(h.url("sftp"), dest, h.keyArgs()...)...)
	wantCode(t, r, 0)
	e2eIdentical(t, dest, parts)
	wantCode(t, h.run(t, nil, "verify", dest), 0)

	reads := h.d.SFTPReads(t)
	for _, p := range parts {
		got := reads[h.remotePath(p.name)] - before[h.remotePath(p.name)]
		if got != int64(len(p.data)) {
			t.Errorf("part %s: SFTP read %d bytes of it, want exactly its %d", p.name, got, len(p.data))
		}
	}
	t.Logf("fetched %d bytes over SFTP in %d parts", e2eTotal(parts), len(parts))

	// Run again: nothing moves.
	r = h.run(t, nil, sshFetchArgs(h.url("sftp"), dest, h.keyArgs()...)...)
	wantCode(t, r, 0)
	again := h.d.SFTPReads(t)
	for _, p := range parts {
		if n := again[h.remotePath(p.name)] - reads[h.remotePath(p.name)]; n != 0 {
			t.Errorf("second run read %d bytes of %s; want 0", n, p.name)
		}
	}

	// A name prefix selects the set (ssh:// as well): the parts of that
	// name and the manifest beside them, nothing else in the directory.
	if err := os.WriteFile(filepath.Join(h.remote, "notes.txt"), []byte("not a part"), 0o644); err != nil {
		t.Fatal(err)
	}
	dest2 := t.TempDir()
	r = h.run(t, nil, sshFetchArgs(strings.TrimSuffix(h.url("ssh"), "/")+"/db.bak", dest2, h.keyArgs()...)...)
	wantCode(t, r, 0)
	e2eIdentical(t, dest2, parts)
	if _, err := os.Stat(filepath.Join(dest2, "notes.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a file outside the set was fetched (stat: %v)", err)
	}
	st, err := chunk.Load(dest2)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Parts {
		if p.Status != chunk.Verified || !slices.ContainsFunc(p.VerifiedBy, func(l string) bool { return strings.Contains(l, "manifest") }) {
			t.Errorf("part %s: %s, verified by %v; want verified by the manifest", p.Name, p.Status, p.VerifiedBy)
		}
	}
}

// TestSSHFetchKill9 is issue 4 acceptance 1, second half: haul fetching
// over SFTP on a slow link (--bwlimit) is killed with SIGKILL at random
// moments, then run again: the parts end identical, and the SFTP server
// read at most the set plus one piece per connection per kill.
func TestSSHFetchKill9(t *testing.T) {
	h := newSSHHost(t)
	parts := e2eNumberedSet("db.bak", 2, 800_000, 700_001, 620_000, 400_000)
	h.put(t, parts)
	h.putManifest(t, parts)
	const conns = 4 // sshFetchArgs' -j
	dest := t.TempDir()
	// About 2.5 MB at 512 KiB/s: five seconds undisturbed.
	args := sshFetchArgs(h.url("sftp"), dest, append(h.keyArgs(), "--bwlimit", "512K", "--progress", "none")...)

	rng := rand.New(rand.NewPCG(20261120, 4)) // the same moments on every run
	kills := 0
	for try := 0; try < 6 && kills < 3; try++ {
		before := savedBytes(dest)
		cmd, done := h.start(t, args...)
		// Kill only once this run has saved progress of its own (on a
		// loaded machine the SSH handshake alone can take a second), at a
		// random moment after that.
		deadline := time.Now().Add(60 * time.Second)
		for savedBytes(dest) <= before {
			select {
			case r := <-done:
				t.Fatalf("haul ended (exit %d) before it saved any progress: make the link slower\n%s", r.code, r.stderr)
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("try %d: no progress saved after 60s", try)
			}
		}
		delay := time.Duration(rng.IntN(600)) * time.Millisecond
		select {
		case r := <-done:
			t.Fatalf("haul ended (exit %d) before the kill after %s: make the link slower\n%s", r.code, delay, r.stderr)
		case <-time.After(delay):
		}
		cmd.Process.Signal(syscall.SIGKILL)
		if r := <-done; r.code == -1 {
			kills++
		}
		e2eNoWrongFinal(t, dest, parts)
	}
	if kills < 3 {
		t.Fatalf("only %d kills landed", kills)
	}
	st, err := chunk.Load(dest)
	if err != nil {
		t.Fatalf("state after the kills: %v", err)
	}
	var doneBytes int64
	for _, p := range st.Parts {
		doneBytes += p.BytesDone(st.PieceSize)
	}
	if doneBytes == 0 {
		t.Fatalf("nothing was saved as done in %d killed runs: the resume is not exercised", kills)
	}
	// The manifest is read by every run; count the parts only.
	partReads := func() int64 {
		reads := h.d.SFTPReads(t)
		var n int64
		for _, p := range parts {
			n += reads[h.remotePath(p.name)]
		}
		return n
	}
	beforeLast := partReads()
	r := h.run(t, nil, args...)
	wantCode(t, r, 0)
	e2eIdentical(t, dest, parts)
	wantCode(t, h.run(t, nil, "verify", dest), 0)

	// The last run resumed: it read exactly what was not saved.
	read := partReads()
	total := e2eTotal(parts)
	if last := read - beforeLast; last != total-doneBytes {
		t.Errorf("the run after the kills read %d bytes; %d of the %d were saved, so want %d", last, doneBytes, total, total-doneBytes)
	}
	bound := total + int64(kills*conns*sshPiece)
	t.Logf("%d kills (%d bytes saved before the last run): SFTP read %d bytes of a %d-byte set (bound %d)", kills, doneBytes, read, total, bound)
	if read > bound {
		t.Fatalf("SFTP read %d bytes; at most %d allowed (set %d + %d kills × %d connections × %d)", read, bound, total, kills, conns, sshPiece)
	}
}

// TestSSHRepair is issue 4 acceptance 2: a part damaged in one byte on
// disk after the fetch → verify exits 3 → repair --from ssh://… → verify
// exits 0, and the bytes read over SFTP show what moved: at most two
// pieces where a manifest or remote hashing tells the bad piece, the whole
// part where neither does.
func TestSSHRepair(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sshd     []testenv.SSHDOption
		manifest bool // a haul manifest beside the parts, else SHA256SUMS only
		symlinks bool // the remote directory holds symlinks to the parts
		whole    bool // the whole part must move
		unlogged bool // internal-sftp serves: no transfer log to count with
		// noVerify: repair --from ssh://… straight after the damage, with
		// no verify first (issue 18 case 3: its re-check finds the part).
		noVerify bool
	}{
		{name: "manifest", manifest: true},
		{name: "manifest-without-verify-first", manifest: true, noVerify: true},
		{name: "remote-hash"},
		// Backup directories of symlinks ("latest/"): the remote hashing
		// must hash the file, not the link.
		{name: "remote-hash-symlinks", symlinks: true},
		{name: "sftp-only", sshd: []testenv.SSHDOption{testenv.SFTPOnly()}, whole: true},
		{name: "sftp-only-manifest", sshd: []testenv.SSHDOption{testenv.SFTPOnly()}, manifest: true},
		{name: "internal-sftp", sshd: []testenv.SSHDOption{testenv.ForceCommand("internal-sftp")}, whole: true, unlogged: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSSHHost(t, tc.sshd...)
			parts := e2eNumberedSet("db.bak", 3, 500_000, 20*sshPiece+777, 300_000)
			if tc.symlinks {
				store := t.TempDir()
				for _, p := range parts {
					if err := os.WriteFile(filepath.Join(store, p.name), p.data, 0o644); err != nil {
						t.Fatal(err)
					}
					if err := os.Symlink(filepath.Join(store, p.name), filepath.Join(h.remote, p.name)); err != nil {
						t.Fatal(err)
					}
				}
			} else {
				h.put(t, parts)
			}
			if tc.manifest {
				h.putManifest(t, parts)
			} else {
				h.putSums(t, parts)
			}
			// The set first comes from the storage: over SFTP from the same
			// directory when a manifest is there, else from a local copy,
			// so that the second host's copy is another file (another
			// mtime) of the same bytes.
			origin := h.url("sftp")
			if !tc.manifest {
				origin = t.TempDir()
				for _, name := range append([]string{"SHA256SUMS"}, e2eNames(parts)...) {
					b, err := os.ReadFile(filepath.Join(h.remote, name))
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(origin, name), b, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
				for _, name := range e2eNames(parts) {
					if err := os.Chtimes(filepath.Join(h.remote, name), old, old); err != nil {
						t.Fatal(err)
					}
				}
			}
			dest := t.TempDir()
			wantCode(t, h.run(t, nil, sshFetchArgs(origin, dest, h.keyArgs()...)...), 0)
			e2eIdentical(t, dest, parts)

			bad := parts[1]
			off := int64(11*sshPiece + 1234)
			e2eFlipOnDisk(t, filepath.Join(dest, bad.name), off)
			if !tc.noVerify {
				r := h.run(t, nil, "verify", dest)
				wantCode(t, r, 3)
				if !strings.Contains(r.stdout+r.stderr, bad.name) {
					t.Fatalf("verify does not name the damaged part %s:\n%s%s", bad.name, r.stdout, r.stderr)
				}
			}

			before := h.d.SFTPReads(t)
			r := h.run(t, nil, append([]string{"repair", "--from", h.url("ssh"), dest, "--progress", "log"}, h.keyArgs()...)...)
			wantCode(t, r, 0)
			wantCode(t, h.run(t, nil, "verify", dest), 0)
			e2eIdentical(t, dest, parts)

			after := h.d.SFTPReads(t)
			moved := after[h.remotePath(bad.name)] - before[h.remotePath(bad.name)]
			for _, p := range parts {
				if p.name != bad.name {
					if n := after[h.remotePath(p.name)] - before[h.remotePath(p.name)]; n != 0 {
						t.Errorf("repair read %d bytes of the good part %s; want 0", n, p.name)
					}
				}
			}
			if tc.unlogged {
				return
			}
			t.Logf("%s: repair read %d bytes of %s over SFTP (piece %d bytes, part %d bytes)", tc.name, moved, bad.name, sshPiece, len(bad.data))
			if tc.whole {
				if moved != int64(len(bad.data)) {
					t.Fatalf("repair read %d bytes of %s over SFTP; with no piece hashes it copies the whole part (%d bytes)", moved, bad.name, len(bad.data))
				}
				if !strings.Contains(r.stdout+r.stderr, "remote hashing unavailable") {
					t.Errorf("repair did not say why it copies the whole part:\n%s%s", r.stdout, r.stderr)
				}
				return
			}
			if moved > 2*sshPiece {
				t.Fatalf("repair read %d bytes of %s over SFTP; at most 2 pieces (%d bytes) allowed; it said:\n%s%s", moved, bad.name, 2*sshPiece, r.stdout, r.stderr)
			}
			if moved == 0 {
				t.Fatalf("repair read nothing of %s over SFTP, yet the part is whole again", bad.name)
			}
		})
	}
}

// TestSSHRepairRemoteBadToo is issue 4 acceptance 5: the second host's
// copy is damaged too → repair exits 3 saying that copy is bad too, and the
// part does not take its final name.
func TestSSHRepairRemoteBadToo(t *testing.T) {
	for _, tc := range []struct {
		name     string
		manifest bool
		remote   int64 // where the remote copy is damaged
	}{
		// The same piece as the local damage: the piece read back fails
		// its manifest hash.
		{name: "manifest", manifest: true, remote: 11*sshPiece + 99},
		// Another piece: remote hashing sends both pieces, and the part
		// then fails SHA256SUMS.
		{name: "remote-hash", remote: 3*sshPiece + 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSSHHost(t)
			parts := e2eNumberedSet("db.bak", 5, 400_000, 20*sshPiece+777)
			h.put(t, parts)
			if tc.manifest {
				h.putManifest(t, parts)
			} else {
				h.putSums(t, parts)
			}
			dest := t.TempDir()
			wantCode(t, h.run(t, nil, sshFetchArgs(h.url("sftp"), dest, h.keyArgs()...)...), 0)

			bad := parts[1]
			e2eFlipOnDisk(t, filepath.Join(dest, bad.name), 11*sshPiece+1234)
			wantCode(t, h.run(t, nil, "verify", dest), 3)
			// The remote copy rots too; its size and mtime stay.
			rp := filepath.Join(h.remote, bad.name)
			fi, err := os.Stat(rp)
			if err != nil {
				t.Fatal(err)
			}
			e2eFlipOnDisk(t, rp, tc.remote)
			if err := os.Chtimes(rp, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}

			before := h.d.SFTPReads(t)
			// --progress none: the error line itself must say it, as cron
			// mails it.
			r := h.run(t, nil, append([]string{"repair", "--from", h.url("ssh"), dest, "--progress", "none"}, h.keyArgs()...)...)
			wantCode(t, r, 3)
			if !strings.Contains(r.stderr, bad.name) || !strings.Contains(r.stderr, "the copy at "+h.url("ssh")+" does not match the references either") {
				t.Fatalf("repair does not say that the copy of %s at %s is bad too:\n%s%s", bad.name, h.url("ssh"), r.stdout, r.stderr)
			}
			if _, err := os.Stat(filepath.Join(dest, bad.name)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s carries its final name after a repair from a bad copy (stat: %v)", bad.name, err)
			}
			e2eNoWrongFinal(t, dest, parts)
			wantCode(t, h.run(t, nil, "verify", dest), 3)
			after := h.d.SFTPReads(t)
			moved := after[h.remotePath(bad.name)] - before[h.remotePath(bad.name)]
			t.Logf("%s: repair read %d bytes of %s over SFTP before giving up (piece %d bytes)", tc.name, moved, bad.name, sshPiece)
			if moved > 2*sshPiece {
				t.Errorf("repair read %d bytes of %s over SFTP from a copy it could tell was bad; at most 2 pieces (%d) expected", moved, bad.name, 2*sshPiece)
			}
		})
	}
}

// sshDestEntries lists every file under dir (relative paths), for "nothing
// changed" checks, with their contents.
func sshDestEntries(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == filepath.Join(chunk.StateDir, "journal.jsonl") || rel == filepath.Join(chunk.StateDir, "lock") {
			return nil // haul's log of its own runs, and the run lock
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSSHHostKey is issue 4 acceptance 3: an unknown host key stops haul
// with exit 1 and the key's fingerprint, changing nothing; with
// --accept-new-host-key it works and the key is recorded; a changed key is
// then refused with a warning, --accept-new-host-key or not.
func TestSSHHostKey(t *testing.T) {
	h := newSSHHost(t)
	parts := e2eNumberedSet("db.bak", 6, 200_000, 100_000)
	h.put(t, parts)
	h.putSums(t, parts)

	kh := filepath.Join(t.TempDir(), "known_hosts")
	src := h.url("sftp")
	args := func(dest string, more ...string) []string {
		return sshFetchArgs(src, dest, append([]string{"--identity", h.d.UserKeyFile, "--known-hosts", kh}, more...)...)
	}

	// Unknown, with no known_hosts file at all: nothing is created.
	dest := t.TempDir()
	r := h.run(t, nil, args(dest)...)
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, h.d.HostKeyFingerprint) || !strings.Contains(r.stderr, "--accept-new-host-key") {
		t.Fatalf("stderr does not show the fingerprint %s and how to trust it:\n%s", h.d.HostKeyFingerprint, r.stderr)
	}
	if _, err := os.Stat(kh); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("known_hosts was created for an unknown host (stat: %v)", err)
	}
	if got := sshDestEntries(t, dest); len(got) != 0 {
		t.Fatalf("DEST changed though the host was refused: %v", slices.Sorted(func(yield func(string) bool) {
			for k := range got {
				if !yield(k) {
					return
				}
			}
		}))
	}

	// Unknown, with a known_hosts file naming other hosts (one hashed):
	// the file is left byte for byte.
	other := "[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n" +
		"|1|c2FsdHNhbHRzYWx0c2FsdHNhbHQ=|aGFzaGhhc2hoYXNoaGFzaGhhc2g= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
	if err := os.WriteFile(kh, []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	r = h.run(t, nil, args(dest)...)
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, h.d.HostKeyFingerprint) {
		t.Fatalf("stderr does not show the fingerprint %s:\n%s", h.d.HostKeyFingerprint, r.stderr)
	}
	if b, _ := os.ReadFile(kh); string(b) != other {
		t.Fatalf("known_hosts changed for a refused host:\n%s", b)
	}
	if got := sshDestEntries(t, dest); len(got) != 0 {
		t.Fatalf("DEST changed though the host was refused: %v", got)
	}

	// --accept-new-host-key: works, and the key is recorded as OpenSSH
	// records it, after the lines that were there.
	r = h.run(t, nil, args(dest, "--accept-new-host-key")...)
	wantCode(t, r, 0)
	e2eIdentical(t, dest, parts)
	b, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	if want := other + h.d.KnownHostsLine(false) + "\n"; string(b) != want {
		t.Fatalf("known_hosts after --accept-new-host-key:\n%s\nwant:\n%s", b, want)
	}
	if fi, err := os.Stat(kh); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("known_hosts mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	// The recorded key is trusted from now on without the flag, by haul and
	// by OpenSSH's own ssh-keygen.
	dest2 := t.TempDir()
	wantCode(t, h.run(t, nil, args(dest2)...), 0)
	e2eIdentical(t, dest2, parts)
	if kg, err := exec.LookPath("ssh-keygen"); err == nil {
		out, err := exec.Command(kg, "-F", fmt.Sprintf("[127.0.0.1]:%d", h.d.Port), "-f", kh).CombinedOutput()
		if err != nil || !strings.Contains(string(out), h.d.HostKeyPub[:40]) {
			t.Fatalf("ssh-keygen -F does not find the recorded key (%v):\n%s", err, out)
		}
	}

	// The host key changes: refused, with and without the flag, and
	// known_hosts keeps the old key.
	recorded := string(b)
	h.d.ChangeHostKey(t)
	for _, more := range [][]string{nil, {"--accept-new-host-key"}} {
		dest3 := t.TempDir()
		r = h.run(t, nil, args(dest3, more...)...)
		wantCode(t, r, 1)
		if !strings.Contains(r.stderr, "WARNING") || !strings.Contains(r.stderr, "CHANGED") || !strings.Contains(r.stderr, h.d.HostKeyFingerprint) {
			t.Fatalf("changed host key %v: no warning with the new fingerprint %s:\n%s", more, h.d.HostKeyFingerprint, r.stderr)
		}
		if b, _ := os.ReadFile(kh); string(b) != recorded {
			t.Fatalf("known_hosts changed after a changed host key %v:\n%s", more, b)
		}
		if got := sshDestEntries(t, dest3); len(got) != 0 {
			t.Fatalf("DEST changed though the host was refused: %v", got)
		}
	}

	// repair --from a host whose key changed: the same refusal, and the
	// workdir's parts and state stay as they were.
	e2eFlipOnDisk(t, filepath.Join(dest, parts[0].name), 1000)
	wantCode(t, h.run(t, nil, "verify", dest), 3)
	was := sshDestEntries(t, dest)
	r = h.run(t, nil, "repair", "--from", h.url("ssh"), dest, "--identity", h.d.UserKeyFile, "--known-hosts", kh, "--accept-new-host-key")
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "CHANGED") {
		t.Fatalf("repair from a changed host: no warning:\n%s", r.stderr)
	}
	if got := sshDestEntries(t, dest); !sshMapsEqual(got, was) {
		t.Fatalf("repair from a refused host changed DEST")
	}
}

func sshMapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestSSHHashedKnownHosts: a hashed [host]:port entry (HashKnownHosts yes)
// is honoured.
func TestSSHHashedKnownHosts(t *testing.T) {
	h := newSSHHost(t)
	parts := e2eNumberedSet("db.bak", 7, 150_000)
	h.put(t, parts)
	if err := os.Remove(h.kh); err != nil {
		t.Fatal(err)
	}
	h.d.WriteKnownHosts(t, h.kh, true)
	dest := t.TempDir()
	wantCode(t, h.run(t, nil, sshFetchArgs(h.url("sftp"), dest, h.keyArgs()...)...), 0)
	e2eIdentical(t, dest, parts)
}

// TestSSHAuth is issue 4 acceptance 4: authentication by ssh-agent, by key
// file and through a ~/.ssh/config alias, each on its own; and an
// encrypted key with no terminal and no agent is a clear error that shows
// neither key nor passphrase.
func TestSSHAuth(t *testing.T) {
	h := newSSHHost(t)
	parts := e2eNumberedSet("db.bak", 8, 300_000, 70_000)
	h.put(t, parts)
	h.putSums(t, parts)
	kh := []string{"--known-hosts", h.kh}

	t.Run("agent", func(t *testing.T) {
		// A key only the agent holds: no -i, nothing in HOME.
		keyFile, _ := h.d.NewUserKey(t, "agent_key", "", true)
		h.addKeySecret(t, keyFile)
		sock := testenv.StartSSHAgent(t, keyFile)
		if err := os.Remove(keyFile); err != nil {
			t.Fatal(err)
		}
		dest := t.TempDir()
		r := h.run(t, []string{"SSH_AUTH_SOCK=" + sock}, sshFetchArgs(h.url("sftp"), dest, kh...)...)
		wantCode(t, r, 0)
		e2eIdentical(t, dest, parts)
		// Without the agent the same command has no key.
		r = h.run(t, nil, sshFetchArgs(h.url("sftp"), t.TempDir(), kh...)...)
		wantCode(t, r, 1)
		if !strings.Contains(r.stderr, "authentication refused") {
			t.Fatalf("no agent, no key: want a refused authentication:\n%s", r.stderr)
		}
	})

	t.Run("key-file", func(t *testing.T) {
		dest := t.TempDir()
		r := h.run(t, nil, sshFetchArgs(h.url("sftp"), dest, append(kh, "-i", h.d.UserKeyFile)...)...)
		wantCode(t, r, 0)
		e2eIdentical(t, dest, parts)
		// A key the server does not know: refused, naming what was offered.
		stranger, _ := h.d.NewUserKey(t, "stranger", "", false)
		h.addKeySecret(t, stranger)
		r = h.run(t, nil, sshFetchArgs(h.url("sftp"), t.TempDir(), append(kh, "-i", stranger)...)...)
		wantCode(t, r, 1)
		if !strings.Contains(r.stderr, "authentication refused") || !strings.Contains(r.stderr, stranger) {
			t.Fatalf("unknown key: want a refusal naming %s:\n%s", stranger, r.stderr)
		}
	})

	t.Run("config-alias", func(t *testing.T) {
		home := t.TempDir()
		if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(h.d.SSHConfig("backuphost")), 0o600); err != nil {
			t.Fatal(err)
		}
		// known_hosts from ~/.ssh too: no --known-hosts, no -i, no user
		// or port in the URL.
		h.d.WriteKnownHosts(t, filepath.Join(home, ".ssh", "known_hosts"), false)
		dest := t.TempDir()
		r := runHaul(t, []string{"HOME=" + home, "SSH_AUTH_SOCK="}, "fetch", "sftp://backuphost"+h.remote+"/", dest, "--chunk-size", "64K", "--progress", "log")
		h.noSecret(t, r)
		wantCode(t, r, 0)
		e2eIdentical(t, dest, parts)
		// The repair fallback through the same alias.
		e2eFlipOnDisk(t, filepath.Join(dest, parts[0].name), 5)
		wantCode(t, runHaul(t, []string{"HOME=" + home, "SSH_AUTH_SOCK="}, "verify", dest), 3)
		r = runHaul(t, []string{"HOME=" + home, "SSH_AUTH_SOCK="}, "repair", "--from", "ssh://backuphost"+h.remote+"/", dest, "--progress", "log")
		h.noSecret(t, r)
		wantCode(t, r, 0)
		e2eIdentical(t, dest, parts)
	})

	t.Run("encrypted-key-no-terminal", func(t *testing.T) {
		const pass = "correct horse battery staple 42"
		enc := h.encryptedKey(t, "enc_key", pass)
		dest := t.TempDir()
		r := h.run(t, nil, sshFetchArgs(h.url("sftp"), dest, append(kh, "-i", enc)...)...)
		wantCode(t, r, 1)
		if !strings.Contains(r.stderr, "encrypted") || !strings.Contains(r.stderr, "ssh-add") {
			t.Fatalf("encrypted key without a terminal: want a clear error saying to use ssh-agent:\n%s", r.stderr)
		}

		// Loaded into the agent (ssh-add, its passphrase typed once), the
		// same -i file works: the agent signs, nothing asks.
		askpass := filepath.Join(t.TempDir(), "askpass")
		if err := os.WriteFile(askpass, []byte("#!/bin/sh\necho '"+pass+"'\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		t.Setenv("SSH_ASKPASS", askpass)
		t.Setenv("SSH_ASKPASS_REQUIRE", "force")
		t.Setenv("DISPLAY", ":0")
		sock := testenv.StartSSHAgent(t, enc)
		r = h.run(t, []string{"SSH_AUTH_SOCK=" + sock}, sshFetchArgs(h.url("sftp"), dest, append(kh, "-i", enc)...)...)
		wantCode(t, r, 0)
		e2eIdentical(t, dest, parts)
	})

	t.Run("passphrase-on-terminal", func(t *testing.T) {
		const pass = "open sesame 7"
		enc := h.encryptedKey(t, "tty_key", pass)
		dest := t.TempDir()
		out, code := runOnPTY(t, append([]string{"TERM=dumb"}, h.env()...), "Enter passphrase for "+enc, pass, sshFetchArgs(h.url("sftp"), dest, append(kh, "-i", enc)...)...)
		h.noSecret(t, result{stdout: out})
		if code != 0 {
			t.Fatalf("exit %d after typing the passphrase; the terminal showed:\n%s", code, out)
		}
		e2eIdentical(t, dest, parts)
	})
}

// TestSSHRepairCopyChangesMidway: the second host's copy is rewritten
// (same bytes, new mtime, as an rsync would leave it) while repair reads
// it. Old and new versions must never mix; repair either starts the part
// again and finishes (exit 0) or stops resumable (exit 75) — not "needs a
// person" — and the same command again finishes with the part identical.
func TestSSHRepairCopyChangesMidway(t *testing.T) {
	h := newSSHHost(t, testenv.SFTPOnly()) // no remote hashing: the whole part moves
	parts := e2eNumberedSet("db.bak", 10, 300_000, 20*sshPiece+777)
	h.put(t, parts)
	h.putSums(t, parts)
	dest := t.TempDir()
	wantCode(t, h.run(t, nil, sshFetchArgs(h.url("sftp"), dest, h.keyArgs()...)...), 0)
	bad := parts[1]
	e2eFlipOnDisk(t, filepath.Join(dest, bad.name), 5000)
	wantCode(t, h.run(t, nil, "verify", dest), 3)

	// 1.3 MB at 256 KiB/s: five seconds of reading to land in.
	args := append([]string{"repair", "--from", h.url("ssh"), dest, "--progress", "log", "--bwlimit", "256K"}, h.keyArgs()...)
	opens := func() int {
		b, _ := os.ReadFile(h.d.SFTPLog)
		return strings.Count(string(b), `open "`+h.remotePath(bad.name)+`"`)
	}
	before := opens()
	_, done := h.start(t, args...)
	deadline := time.Now().Add(20 * time.Second)
	for opens() == before {
		if time.Now().After(deadline) {
			t.Fatal("repair never opened the part on the remote")
		}
		time.Sleep(10 * time.Millisecond)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(h.remote, bad.name), later, later); err != nil {
		t.Fatal(err)
	}
	r := <-done
	h.noSecret(t, r)
	e2eNoWrongFinal(t, dest, parts)
	if !strings.Contains(r.stdout+r.stderr, "changed") {
		t.Fatalf("repair does not say the copy changed while it read it (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r.code != 0 && r.code != 75 {
		t.Fatalf("exit %d after the copy changed midway; want 0 (started again) or 75 (run again):\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r.code == 75 {
		r = h.run(t, nil, append([]string{"repair", "--from", h.url("ssh"), dest, "--progress", "log"}, h.keyArgs()...)...)
		wantCode(t, r, 0)
	}
	wantCode(t, h.run(t, nil, "verify", dest), 0)
	e2eIdentical(t, dest, parts)
}

// savedBytes is how many bytes DEST's state records as durably done (0
// when there is no state yet).
func savedBytes(dest string) int64 {
	st, err := chunk.Load(dest)
	if err != nil {
		return 0
	}
	var n int64
	for _, p := range st.Parts {
		n += p.BytesDone(st.PieceSize)
	}
	return n
}
