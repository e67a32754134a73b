package main

// Issue 18: every verdict is re-checked on disk before it is given. Each
// test damages a DEST the way an operator's disk or hand would, then runs
// the commands in the orders a person would, through the binary.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/internal/gen"
)

// trustSet writes a real site as a tar.gz cut into parts of partSize
// bytes (site.tar.gz.000, …) into a source directory with a SHA256SUMS,
// and fetches it into a fresh DEST. It returns the site, the source
// directory, DEST and the parts.
func trustSet(t *testing.T, partSize int64) (site, src, dest string, parts []e2ePart) {
	return trustSetOf(t, 600<<10, partSize)
}

func trustSetOf(t *testing.T, siteBytes, partSize int64) (site, src, dest string, parts []e2ePart) {
	t.Helper()
	site, src, dest = filepath.Join(t.TempDir(), "site"), t.TempDir(), t.TempDir()
	if err := gen.Tree(site, 18, siteBytes); err != nil {
		t.Fatal(err)
	}
	paths, err := gen.SplitTarGz(site, src, "site.tar.gz", partSize, gen.FormatGzip)
	if err != nil {
		t.Fatal(err)
	}
	parts = e2eReadDir(t, paths)
	if len(parts) < 5 {
		t.Fatalf("the set has %d parts; the tests damage up to the fifth", len(parts))
	}
	if err := os.WriteFile(filepath.Join(src, "SHA256SUMS"), e2eSHA256SUMS(parts), 0o644); err != nil {
		t.Fatal(err)
	}
	wantCode(t, runHaul(t, nil, "fetch", "--progress", "none", src+"/", dest), 0)
	return site, src, dest, parts
}

// trustSameTree fails unless into holds exactly the site.
func trustSameTree(t *testing.T, site, into string) {
	t.Helper()
	if ok, err := sameTree(site, into); !ok || err != nil {
		t.Fatalf("the restored tree differs from the site: %v", err)
	}
}

// pulled is what the last run in DEST's journal says it pulled.
func pulled(t *testing.T, dest string) int64 {
	t.Helper()
	events, err := chunk.ReadJournal(dest)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(events) - 1; i >= 0; i-- {
		if events[i].Event == chunk.EventRunEnd {
			return events[i].Bytes
		}
	}
	t.Fatal("no run_end in the journal")
	return 0
}

// rot damages a part in DEST in one of the ways a verified part goes bad.
type rot func(t *testing.T, path string)

var rots = map[string]rot{
	"flipped byte": func(t *testing.T, path string) { e2eFlipOnDisk(t, path, 777) },
	// Other bytes of the same size in a new file put in its place.
	"replaced": func(t *testing.T, path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x40
		tmp := path + ".new"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	},
	// Rot the stat cannot see: mtime put back to the nanosecond. Only
	// the digest restore computes as it reads can tell.
	"silent": func(t *testing.T, path string) {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		e2eFlipOnDisk(t, path, 777)
		if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
	},
	"deleted": func(t *testing.T, path string) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	},
}

// seenBy makes the damage known the way haul promises for its kind.
// status and repair re-check each part with one stat (issue 18: a stat per
// part, content only on change), so rot that leaves size, inode and mtime
// alone ("silent") is theirs to see only once `haul verify`, which always
// proves by content, has found it: verify exits 3 naming the part. Restore
// and run need no verify first (their digest sees it: the tests below).
// For damage a stat sees, nothing is run first.
func seenBy(t *testing.T, damage, dest, part string) {
	t.Helper()
	if damage != "silent" {
		return
	}
	r := runHaul(t, nil, "verify", dest)
	wantCode(t, r, 3)
	if !strings.Contains(r.stdout+r.stderr, part) || !strings.Contains(r.stderr, "haul repair") {
		t.Fatalf("verify does not name %s and the fix:\n%s%s", part, r.stdout, r.stderr)
	}
}

// Cases 1–3: a verified part rots, is replaced or deleted; then restore,
// repair, run or status, alone or in sequence. Nothing wrong is ever
// installed, every command names the part, and the way out works.
func TestVerifiedPartChangesOnDisk(t *testing.T) {
	for name, damage := range rots {
		t.Run(name, func(t *testing.T) {
			t.Run("restore alone, then repair, then restore", func(t *testing.T) {
				site, _, dest, parts := trustSet(t, 64<<10)
				bad := parts[2].name
				damage(t, filepath.Join(dest, bad))
				into := filepath.Join(t.TempDir(), "into")
				r := runHaul(t, nil, "restore", "--progress", "none", dest, "--into", into)
				wantCode(t, r, 3)
				if !strings.Contains(r.stderr, bad) || !strings.Contains(r.stderr, "haul repair") {
					t.Fatalf("restore does not name %s and the fix:\n%s", bad, r.stderr)
				}
				if _, err := os.Stat(into); err == nil {
					t.Fatalf("restore put a tree in place from a damaged part")
				}
				if _, err := os.Stat(filepath.Join(dest, bad)); err == nil {
					t.Fatalf("the damaged part %s still carries its final name", bad)
				}
				st := runHaul(t, nil, "status", dest)
				if !strings.Contains(st.stdout, bad) || strings.Contains(st.stdout, "state: done") {
					t.Fatalf("status after the restore refused:\n%s", st.stdout)
				}
				wantCode(t, runHaul(t, nil, "repair", "--progress", "none", dest), 0)
				e2eIdentical(t, dest, parts)
				wantCode(t, runHaul(t, nil, "restore", "--progress", "none", dest, "--into", into), 0)
				trustSameTree(t, site, into)
			})
			t.Run("repair alone", func(t *testing.T) {
				_, _, dest, parts := trustSet(t, 64<<10)
				damage(t, filepath.Join(dest, parts[1].name))
				seenBy(t, name, dest, parts[1].name)
				r := runHaul(t, nil, "repair", "--progress", "none", dest)
				wantCode(t, r, 0)
				if strings.Contains(r.stderr, "0 broken, 0 missing") && !strings.Contains(r.stderr, parts[1].name) {
					t.Fatalf("repair did not see %s:\n%s", parts[1].name, r.stderr)
				}
				e2eIdentical(t, dest, parts)
			})
			t.Run("repair --from another copy", func(t *testing.T) {
				_, _, dest, parts := trustSet(t, 64<<10)
				other := t.TempDir()
				e2eWriteDir(t, other, parts)
				damage(t, filepath.Join(dest, parts[3].name))
				seenBy(t, name, dest, parts[3].name)
				wantCode(t, runHaul(t, nil, "repair", "--progress", "none", "--from", other+"/", dest), 0)
				e2eIdentical(t, dest, parts)
			})
			t.Run("status names it", func(t *testing.T) {
				_, _, dest, parts := trustSet(t, 64<<10)
				damage(t, filepath.Join(dest, parts[0].name))
				seenBy(t, name, dest, parts[0].name)
				st := runHaul(t, nil, "status", dest)
				wantCode(t, st, 3)
				want := "broken"
				if name == "deleted" {
					want = "missing"
				}
				if strings.Contains(st.stdout, "state: done") || !strings.Contains(st.stdout, want) || !strings.Contains(st.stdout, parts[0].name) {
					t.Fatalf("status after damage to %s does not say %s:\n%s", parts[0].name, want, st.stdout)
				}
			})
			t.Run("run, damage, run again", func(t *testing.T) {
				site, src, dest, parts := trustSet(t, 64<<10)
				into := filepath.Join(t.TempDir(), "into")
				damage(t, filepath.Join(dest, parts[4].name))
				wantCode(t, runHaul(t, nil, "run", "--progress", "none", src+"/", dest, "--into", into), 0)
				e2eIdentical(t, dest, parts)
				trustSameTree(t, site, into)
			})
		})
	}
}

// Acceptance 3: `haul run` twice with one part rotting between the runs
// (its stat unchanged, so only the restore's digest sees it): the second
// run fetches again only the piece that differs (a manifest gives piece
// hashes), restores, exits 0, and the tree is identical.
func TestRunTwiceRotBetween(t *testing.T) {
	site, src, dest, parts := trustSetOf(t, 3<<20, 256<<10)
	// The run fetches afresh with a manifest of 64 KiB pieces.
	if err := os.RemoveAll(dest); err != nil {
		t.Fatal(err)
	}
	wantCode(t, runHaul(t, nil, "manifest", "--piece-size", "64K", "-o", filepath.Join(src, "site.haul.json"), src+"/"), 0)
	into := filepath.Join(t.TempDir(), "into")
	wantCode(t, runHaul(t, nil, "run", "--progress", "none", src+"/", dest, "--into", into), 0)
	trustSameTree(t, site, into)
	if err := os.RemoveAll(into); err != nil {
		t.Fatal(err) // the second run restores again
	}
	rots["silent"](t, filepath.Join(dest, parts[1].name))
	// -j 1: with idle connections the endgame may split the one piece's
	// span on a slow machine, and the bytes already on their way to its
	// owner would count as pulled as well.
	r := runHaul(t, nil, "run", "--progress", "log", "-j", "1", src+"/", dest, "--into", into)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout+r.stderr, parts[1].name+" changed on disk") {
		t.Errorf("the second run does not name the part it repaired:\n%s%s", r.stdout, r.stderr)
	}
	e2eIdentical(t, dest, parts)
	trustSameTree(t, site, into)
	if got := pulled(t, dest); got <= 0 || got > 64<<10 {
		t.Fatalf("the second run pulled %d bytes; one 64 KiB piece was damaged", got)
	}
}

// Case 5: a link answered with a web page (an expired presigned link, a
// captive portal) is never installed as the archive it is named for.
func TestWebPageIsNotAnArchive(t *testing.T) {
	page := []byte("<html><body>Request has expired</body></html>\n")
	srv := e2eServe(t, []e2ePart{{"site.tar.gz", page}})
	dest := t.TempDir()
	r := runHaul(t, nil, "fetch", "--progress", "none", "--retries", "2", srv.URL("site.tar.gz")+"?X-Amz-Signature=abc", dest)
	wantCode(t, r, 3)
	if !strings.Contains(r.stderr, "site.tar.gz") || !strings.Contains(r.stderr, "web page") {
		t.Fatalf("the refusal does not name the part and say it is a web page:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "X-Amz-Signature") {
		t.Fatalf("a presigned query string was printed:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dest, "site.tar.gz")); err == nil {
		t.Fatal("the web page was installed as site.tar.gz")
	}
}

// Case 6: a DEST holds one set. Another source stops with exit 1 naming
// both and the fixes; --replace discards the old set; the same source
// given again (fresh presigned links) keeps every part.
func TestOneDestOneSet(t *testing.T) {
	_, src, dest, parts := trustSet(t, 64<<10)
	other := t.TempDir()
	more := e2eSet(6, 3000, 4000)
	e2eWriteDir(t, other, more)
	r := runHaul(t, nil, "fetch", "--progress", "none", other+"/", dest)
	wantCode(t, r, 1)
	for _, want := range []string{src, other, "another DEST", "--replace"} {
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("the refusal does not say %q:\n%s", want, r.stderr)
		}
	}
	e2eIdentical(t, dest, parts) // the old set is untouched

	// The same source again: nothing pulled.
	wantCode(t, runHaul(t, nil, "fetch", "--progress", "none", src+"/", dest), 0)
	if got := pulled(t, dest); got != 0 {
		t.Fatalf("fetching the same set again pulled %d bytes", got)
	}

	wantCode(t, runHaul(t, nil, "fetch", "--progress", "none", "--replace", other+"/", dest), 0)
	e2eIdentical(t, dest, more)
	for _, p := range parts {
		if _, err := os.Stat(filepath.Join(dest, p.name)); err == nil {
			t.Fatalf("--replace left %s of the old set", p.name)
		}
	}
}

// Case 6 over HTTP: fresh presigned links (new query strings) for the
// same objects are the same set, and keep their progress.
func TestFreshPresignedLinksSameSet(t *testing.T) {
	parts := e2eSet(7, 50_000, 60_000)
	srv := e2eServe(t, parts)
	dest := t.TempDir()
	links := func(sig string) []string {
		var out []string
		for _, u := range e2eURLs(srv, parts) {
			out = append(out, u+"?X-Amz-Signature="+sig+"&X-Amz-Date="+time.Now().Format("150405"))
		}
		return out
	}
	wantCode(t, runHaul(t, nil, append([]string{"fetch", "--progress", "none"}, append(links("one"), dest)...)...), 0)
	wantCode(t, runHaul(t, nil, append([]string{"fetch", "--progress", "none"}, append(links("two"), dest)...)...), 0)
	if got := pulled(t, dest); got != 0 {
		t.Fatalf("fresh links for the same set pulled %d bytes again", got)
	}
	e2eIdentical(t, dest, parts)
}

// Case 4: a Bitrix set whose last volume is absent from a local directory
// (its first volume's LN names it) is not done: fetch, status and verify
// say the volume is missing (exit 3), and repair (the source still lacks
// it) and restore exit 3.
func TestBitrixLastVolumeMissingLocal(t *testing.T) {
	site, src, dest := filepath.Join(t.TempDir(), "site"), t.TempDir(), t.TempDir()
	if err := gen.Tree(site, 4, 1<<20); err != nil {
		t.Fatal(err)
	}
	paths, err := gen.BitrixSet(site, src, "backup_20261120", 256<<10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 3 {
		t.Fatalf("the set has %d volumes", len(paths))
	}
	last := filepath.Base(paths[len(paths)-1])
	if err := os.Remove(paths[len(paths)-1]); err != nil {
		t.Fatal(err)
	}
	r := runHaul(t, nil, "fetch", "--progress", "none", src+"/", dest)
	wantCode(t, r, 3)
	if !strings.Contains(r.stderr, last) || !strings.Contains(r.stderr, "missing") {
		t.Fatalf("fetch does not say %s is missing:\n%s", last, r.stderr)
	}
	st := runHaul(t, nil, "status", dest)
	wantCode(t, st, 3)
	if strings.Contains(st.stdout, "state: done") || !strings.Contains(st.stdout, last) {
		t.Fatalf("status does not name the missing %s:\n%s", last, st.stdout)
	}
	// verify proves what is there and still counts what LN promises.
	v := runHaul(t, nil, "verify", dest)
	wantCode(t, v, 3)
	if !strings.Contains(v.stdout+v.stderr, last) {
		t.Fatalf("verify does not name the missing %s:\n%s%s", last, v.stdout, v.stderr)
	}
	rp := runHaul(t, nil, "repair", "--progress", "none", dest)
	wantCode(t, rp, 3)
	if !strings.Contains(rp.stderr, last) || !strings.Contains(rp.stderr, "--from") {
		t.Fatalf("repair does not name %s and the way out (--from):\n%s", last, rp.stderr)
	}
	wantCode(t, runHaul(t, nil, "restore", "--progress", "none", dest, "--into", filepath.Join(t.TempDir(), "into")), 3)
}

// A gap in numbered names (x.000, x.002 without x.001) is a missing part.
func TestGapInNumberedNames(t *testing.T) {
	src, dest := t.TempDir(), t.TempDir()
	parts := e2eNumberedSet("db.bin", 9, 3000, 3000, 3000)
	e2eWriteDir(t, src, []e2ePart{parts[0], parts[2]})
	r := runHaul(t, nil, "fetch", "--progress", "none", src+"/", dest)
	wantCode(t, r, 3)
	if !strings.Contains(r.stderr, "db.bin.001") || !strings.Contains(r.stderr, "missing") {
		t.Fatalf("fetch does not say db.bin.001 is missing:\n%s", r.stderr)
	}
}

// Case 8: a set cut short at the end (no LN, no reference to tell) fails
// restore as a set missing its last part(s), exit 3, naming the last part
// it has — not as an unsafe entry.
func TestSetEndsEarly(t *testing.T) {
	site, src, dest := filepath.Join(t.TempDir(), "site"), t.TempDir(), t.TempDir()
	if err := gen.Tree(site, 8, 600<<10); err != nil {
		t.Fatal(err)
	}
	paths, err := gen.SplitTarGz(site, src, "site.tar", 100<<10, gen.FormatTar)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 4 {
		t.Fatalf("the set has %d parts", len(paths))
	}
	for _, p := range paths[len(paths)-2:] {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	have := filepath.Base(paths[len(paths)-3])
	wantCode(t, runHaul(t, nil, "fetch", "--progress", "none", src+"/", dest), 0)
	into := filepath.Join(t.TempDir(), "into")
	r := runHaul(t, nil, "restore", "--progress", "none", dest, "--into", into)
	wantCode(t, r, 3)
	if !strings.Contains(r.stderr, "missing its last part") || !strings.Contains(r.stderr, have) || strings.Contains(r.stderr, "unsafe") {
		t.Fatalf("restore of a set cut short after %s says:\n%s", have, r.stderr)
	}
	if _, err := os.Stat(into); err == nil {
		t.Fatal("a tree was put in place from a set cut short")
	}
}
