package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/haul-dev/haul/internal/testenv"
)

// vetMirrors are two directories on one SSH host, each a mirror of the
// set: the first holds a copy of part bad damaged at badAt (nil: a good
// copy), the second one damaged at goodAt (nil: a good copy). It returns
// the mirrors' URLs, in that order, both #j=0 (they only heal, so every
// byte they send is one the primary got wrong).
func vetMirrors(t *testing.T, h *sshHost, parts []e2ePart, bad string, damage ...[]int64) (urls, dirs []string) {
	t.Helper()
	for _, at := range damage {
		dir := t.TempDir()
		var copied []e2ePart
		for _, p := range parts {
			data := slices.Clone(p.data)
			if p.name == bad {
				for _, off := range at {
					data[off] ^= 0x40
				}
			}
			copied = append(copied, e2ePart{p.name, data})
		}
		e2eWriteDir(t, dir, copied)
		dirs = append(dirs, dir)
		urls = append(urls, fmt.Sprintf("sftp://%s@%s%s/#j=0", h.d.User, h.d.Addr, dir))
	}
	return urls, dirs
}

// sha256Of is the hex SHA-256 of data[off:off+n] (to the end if shorter).
func sha256Of(data []byte, off, n int) string {
	s := sha256.Sum256(data[off:min(off+n, len(data))])
	return hex.EncodeToString(s[:])
}

// TestMirrorHealsByHash is issue 13's healing by piece hashes: the primary
// sends one part damaged every time; of two SSH mirrors that can run
// commands, the first holds a damaged copy of that part and the second a
// good one. haul asks both for the SHA-256 of the bytes that failed proof
// (a manifest's piece, or the whole part against SHA256SUMS), reads them
// only from the good one, and ends with exit 0 and an identical tree; the
// damaged mirror sends no byte at all.
func TestMirrorHealsByHash(t *testing.T) {
	h := newSSHHost(t)
	site, parts := mirrorSet(t, 1500<<10)
	bad := parts[1]
	const flipAt = 100_000 // inside piece 1 (bytes 65536-131071) at the primary
	const mirrorFlip = 70_000
	for _, tc := range []struct {
		name     string
		manifest bool
		want     int64 // bytes the good mirror sends of the bad part
		// conns is -j. A read from an SFTP copy is never split (its
		// read-ahead would send the bytes past the split twice), nor
		// one waiting for the hashes, so the count is exact with
		// several connections.
		conns string
	}{
		{"manifest", true, 64 << 10, "4"},
		{"sums", false, int64(len(bad.data)), "4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			urls, dirs := vetMirrors(t, h, parts, bad.name, []int64{mirrorFlip}, nil)
			damaged := slices.Clone(bad.data)
			damaged[mirrorFlip] ^= 0x40
			asked := sha256Of(damaged, 0, len(damaged))
			if tc.manifest {
				asked = sha256Of(damaged, 64<<10, 64<<10)
			}
			srv := mirrorPrimary(t, parts, tc.manifest, testenv.FlipBits(bad.name, 1<<30, flipAt))
			before := h.d.SFTPReads(t)

			r, dest, _ := mirrorRun(t, h, srv, parts, site, tc.conns, "2", urls...)
			reads := h.d.SFTPReads(t)
			for _, p := range parts {
				for i, dir := range dirs {
					got := reads[filepath.Join(dir, p.name)] - before[filepath.Join(dir, p.name)]
					want := int64(0)
					if i == 1 && p.name == bad.name {
						want = tc.want
					}
					if got != want {
						t.Errorf("part %s: mirror %d sent %d bytes of it, want %d", p.name, i+1, got, want)
					}
				}
			}
			out := r.stdout + r.stderr
			// The damaged copy's digest is only known by asking its host.
			if !strings.Contains(out, asked) {
				t.Errorf("no line names the SHA-256 the damaged mirror computed (%s):\n%s", asked, out)
			}
			if !strings.Contains(out, "matches") {
				t.Errorf("no line says the good mirror's hash matches:\n%s", out)
			}
			by := wantSourcesSum(t, dest)
			for s, n := range by {
				if strings.Contains(s, dirs[0]) && n != 0 {
					t.Errorf("report: %d bytes from the damaged mirror %s, want 0", n, s)
				}
			}
		})
	}
}

// TestMirrorEveryCopyBad: the primary and both SSH mirrors hold damaged
// bytes of one part. The mirrors' hashes say so, so they send nothing;
// the primary gets its --retries; the part is broken (exit 3) and the
// error names what each source gave.
func TestMirrorEveryCopyBad(t *testing.T) {
	h := newSSHHost(t)
	_, parts := mirrorSet(t, 1200<<10)
	bad := parts[1]
	urls, dirs := vetMirrors(t, h, parts, bad.name, []int64{70_000}, []int64{80_000})
	srv := mirrorPrimary(t, parts, true, testenv.FlipBits(bad.name, 1<<30, 100_000))
	before := h.d.SFTPReads(t)
	dest := t.TempDir()
	args := append([]string{"fetch", "--progress", "log", "--chunk-size", "64K", "-j", "2", "--retries", "2"}, e2eURLs(srv, parts)...)
	args = append(args, dest, "--mirror", urls[0], "--mirror", urls[1])
	r := h.run(t, nil, append(args, h.keyArgs()...)...)
	wantCode(t, r, 3)
	reads := h.d.SFTPReads(t)
	for _, dir := range dirs {
		if n := reads[filepath.Join(dir, bad.name)] - before[filepath.Join(dir, bad.name)]; n != 0 {
			t.Errorf("mirror %s sent %d bytes of %s; its hash showed its copy is damaged", dir, n, bad.name)
		}
	}
	var broken string
	for _, l := range strings.Split(r.stdout+r.stderr, "\n") {
		if strings.Contains(l, "part "+bad.name+" is broken") {
			broken = l
		}
	}
	if broken == "" {
		t.Fatalf("no line says part %s is broken:\n%s", bad.name, r.stdout+r.stderr)
	}
	if !strings.Contains(broken, srv.URL(parts[0].name)+" (+") {
		t.Errorf("the error does not name the primary:\n%s", broken)
	}
	for _, dir := range dirs {
		if !strings.Contains(broken, dir+"/: not read, its copy of piece 1 differs") {
			t.Errorf("the error does not say mirror %s's copy differs:\n%s", dir, broken)
		}
	}
	// Only the two damaged pieces are known by asking each mirror's host.
	for i, at := range []int{70_000, 80_000} {
		d := slices.Clone(bad.data)
		d[at] ^= 0x40
		if sum := sha256Of(d, 64<<10, 64<<10); !strings.Contains(broken, sum) {
			t.Errorf("the error does not give mirror %d's SHA-256 %s:\n%s", i+1, sum, broken)
		}
	}
	for _, p := range parts {
		if got, err := os.ReadFile(filepath.Join(dest, p.name)); p.name != bad.name && (err != nil || !bytes.Equal(got, p.data)) {
			t.Errorf("part %s is not identical to the source (%v)", p.name, err)
		}
	}
}

// TestMirrorHashUnavailable: SSH mirrors on an SFTP-only server cannot be
// asked for hashes; the bytes that failed proof are read from the copies
// in turn, as before, with a note in the log, and the run ends identical.
func TestMirrorHashUnavailable(t *testing.T) {
	h := newSSHHost(t, testenv.SFTPOnly())
	_, parts := mirrorSet(t, 1200<<10)
	bad := parts[1]
	urls, _ := vetMirrors(t, h, parts, bad.name, []int64{70_000}, nil)
	srv := mirrorPrimary(t, parts, true, testenv.FlipBits(bad.name, 1<<30, 100_000))
	dest := t.TempDir()
	args := append([]string{"fetch", "--progress", "log", "--chunk-size", "64K", "-j", "2", "--retries", "2"}, e2eURLs(srv, parts)...)
	args = append(args, dest, "--mirror", urls[0], "--mirror", urls[1])
	r := h.run(t, nil, append(args, h.keyArgs()...)...)
	wantCode(t, r, 0)
	e2eIdentical(t, dest, parts)
	if out := r.stdout + r.stderr; !strings.Contains(out, "cannot hash where it lives") {
		t.Errorf("no note says the mirrors cannot hash:\n%s", out)
	}
	wantSourcesSum(t, dest)
}
