package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// victim is a file outside DEST that a hostile user points a link at:
// whatever haul does, its bytes and mode must stay as they were.
type victim struct {
	dir, path string
	data      []byte
	mode      os.FileMode
}

func newVictim(t *testing.T) *victim {
	t.Helper()
	v := &victim{dir: t.TempDir(), data: []byte("the victim's own bytes, not a part\n"), mode: 0o640}
	v.path = filepath.Join(v.dir, "victim")
	if err := os.WriteFile(v.path, v.data, v.mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(v.path, v.mode); err != nil {
		t.Fatal(err)
	}
	return v
}

// untouched fails unless the victim has its bytes and mode, and nothing
// new appeared beside it.
func (v *victim) untouched(t *testing.T) {
	t.Helper()
	got, err := os.ReadFile(v.path)
	if err != nil {
		t.Fatalf("victim: %v", err)
	}
	if !bytes.Equal(got, v.data) {
		t.Fatalf("victim outside DEST was written: %q", got)
	}
	fi, err := os.Lstat(v.path)
	if err != nil || fi.Mode() != v.mode {
		t.Fatalf("victim mode %v (%v), want %v", fi.Mode(), err, v.mode)
	}
	ents, _ := os.ReadDir(v.dir)
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("files appeared beside the victim: %v", names)
	}
}

// TestHostileDEST plants symlinks and hard links at every path haul
// writes in DEST, before the first run and between runs: the victim
// outside DEST never changes, a .partial or NAME is replaced and the set
// still arrives identical (exit 0), a bad .haul, lock, journal or state
// stops the run with exit 1 naming it.
func TestHostileDEST(t *testing.T) {
	parts := e2eSet(15, 600<<10, 300<<10)
	sums := append([]e2ePart{}, parts...)
	sums = append(sums, e2ePart{"SHA256SUMS", e2eSHA256SUMS(parts)})
	first := parts[0].name
	// plant puts a link made by link (os.Symlink or os.Link) to the
	// victim at DEST/at.
	plant := func(link func(oldname, newname string) error, at string) func(t *testing.T, dest string, v *victim) {
		return func(t *testing.T, dest string, v *victim) {
			t.Helper()
			p := filepath.Join(dest, at)
			os.Remove(p)
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := link(v.path, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	symlink := func(at string) func(t *testing.T, dest string, v *victim) { return plant(os.Symlink, at) }
	hardlink := func(at string) func(t *testing.T, dest string, v *victim) { return plant(os.Link, at) }
	cases := []struct {
		name string
		// between: a first run is cut short (--max-time) before the plant.
		between bool
		plant   func(t *testing.T, dest string, v *victim)
		code    int
		names   string // what the message must name (exit 1)
	}{
		{name: "partial symlink", plant: symlink(first + ".partial"), code: 0},
		{name: "partial hardlink", plant: hardlink(first + ".partial"), code: 0},
		{name: "partial symlink between runs", between: true, plant: symlink(first + ".partial"), code: 0},
		{name: "partial hardlink between runs", between: true, plant: hardlink(first + ".partial"), code: 0},
		{name: "final name symlink", plant: symlink(first), code: 0},
		{name: "final name hardlink", plant: hardlink(first), code: 0},
		{name: "final name symlink between runs", between: true, plant: symlink(first), code: 0},
		{name: "final name hardlink between runs", between: true, plant: hardlink(first), code: 0},
		{name: "state dir symlink", plant: func(t *testing.T, dest string, v *victim) {
			if err := os.Symlink(v.dir, filepath.Join(dest, ".haul")); err != nil {
				t.Fatal(err)
			}
		}, code: 1, names: ".haul"},
		{name: "state dir mode 0755", plant: func(t *testing.T, dest string, v *victim) {
			if err := os.Mkdir(filepath.Join(dest, ".haul"), 0o755); err != nil {
				t.Fatal(err)
			}
			os.Chmod(filepath.Join(dest, ".haul"), 0o755)
		}, code: 1, names: ".haul"},
		{name: "lock symlink", plant: symlink(".haul/lock"), code: 1, names: "lock"},
		{name: "lock hardlink", plant: hardlink(".haul/lock"), code: 1, names: "lock"},
		{name: "journal symlink", plant: symlink(".haul/journal.jsonl"), code: 1, names: "journal.jsonl"},
		{name: "journal hardlink", plant: hardlink(".haul/journal.jsonl"), code: 1, names: "journal.jsonl"},
		{name: "journal symlink between runs", between: true, plant: symlink(".haul/journal.jsonl"), code: 1, names: "journal.jsonl"},
		{name: "state symlink between runs", between: true, plant: symlink(".haul/state.json"), code: 1, names: "state.json"},
		{name: "state hardlink between runs", between: true, plant: hardlink(".haul/state.json"), code: 1, names: "state.json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := e2eServe(t, sums)
			urls := e2eURLs(srv, parts)
			dest := filepath.Join(t.TempDir(), "dest")
			v := newVictim(t)
			if tc.between {
				srv.SetConnRate(256 << 10)
				r := runHaul(t, nil, append([]string{"fetch", "--progress", "none", "-j", "1", "--max-time", "1s"}, append(urls, dest)...)...)
				wantCode(t, r, 75)
				srv.SetConnRate(0)
				if tc.plant == nil {
					t.Fatal("no plant")
				}
			} else if err := os.MkdirAll(dest, 0o755); err != nil {
				t.Fatal(err)
			}
			tc.plant(t, dest, v)
			r := runHaul(t, nil, append([]string{"fetch", "--progress", "none"}, append(urls, dest)...)...)
			wantCode(t, r, tc.code)
			v.untouched(t)
			if tc.code == 0 {
				e2eIdentical(t, dest, parts)
				for _, p := range parts {
					if fi, err := os.Lstat(filepath.Join(dest, p.name)); err != nil || !fi.Mode().IsRegular() {
						t.Fatalf("%s is not a plain file: %v %v", p.name, fi, err)
					}
				}
				return
			}
			if !strings.Contains(r.stderr, tc.names) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
				t.Fatalf("want one line naming %s, got:\n%s", tc.names, r.stderr)
			}
		})
	}
}

// TestHostileAssemble: --assemble onto a planted link replaces the link
// with the joined archive; the file it pointed to is untouched.
func TestHostileAssemble(t *testing.T) {
	parts := e2eSet(16, 200<<10, 100<<10)
	srv := e2eServe(t, parts)
	dest := filepath.Join(t.TempDir(), "dest")
	wantCode(t, runHaul(t, nil, append([]string{"fetch", "--progress", "none"}, append(e2eURLs(srv, parts), dest)...)...), 0)
	for _, kind := range []string{"symlink", "hardlink"} {
		t.Run(kind, func(t *testing.T) {
			v := newVictim(t)
			out := filepath.Join(t.TempDir(), "joined.bin")
			link := os.Symlink
			if kind == "hardlink" {
				link = os.Link
			}
			if err := link(v.path, out); err != nil {
				t.Fatal(err)
			}
			wantCode(t, runHaul(t, nil, "restore", "--progress", "none", dest, "--assemble", out), 0)
			v.untouched(t)
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			for _, p := range parts {
				want = append(want, p.data...)
			}
			if fi, _ := os.Lstat(out); !bytes.Equal(got, want) || !fi.Mode().IsRegular() {
				t.Fatalf("--assemble wrote %d bytes (regular %v), want the %d joined", len(got), fi.Mode().IsRegular(), len(want))
			}
		})
	}
}

// TestHostileRestoreParts: a verified part swapped between fetch and
// restore for a link (to a file of the same size, even of the same bytes)
// or given a second name outside DEST is never read: the re-check takes
// its verdict back, so restore exits 3 naming the part and the repair
// command, nothing appears at --into, and the file linked to is
// untouched.
func TestHostileRestoreParts(t *testing.T) {
	parts, _ := storedTarGz(t, "site.tar.gz", 300<<10, 100<<10)
	srv := e2eServe(t, append(append([]e2ePart{}, parts...), e2ePart{"SHA256SUMS", e2eSHA256SUMS(parts)}))
	bad := parts[1]
	same := func(t *testing.T) []byte { return bad.data }
	other := func(t *testing.T) []byte { return e2eBytes(99, len(bad.data)) }
	cases := []struct {
		name    string
		content func(t *testing.T) []byte // of the file outside DEST
		link    func(oldname, newname string) error
		keep    bool // the part stays and gains a second name outside DEST
		code    int
	}{
		{name: "symlink to a same-size file", content: other, link: os.Symlink, code: 3},
		{name: "symlink to a same-bytes copy", content: same, link: os.Symlink, code: 3},
		{name: "hard link to a same-bytes copy", content: same, link: os.Link, code: 3},
		{name: "second hard link to the part", keep: true, code: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "dest")
			wantCode(t, runHaul(t, nil, append([]string{"fetch", "--progress", "none"}, append(e2eURLs(srv, parts), dest)...)...), 0)
			v := newVictim(t)
			at := filepath.Join(dest, bad.name)
			if tc.keep {
				os.Remove(v.path)
				if err := os.Link(at, v.path); err != nil {
					t.Fatal(err)
				}
				fi, _ := os.Lstat(v.path)
				v.data, v.mode = bad.data, fi.Mode()
			} else {
				v.data = tc.content(t)
				if err := os.WriteFile(v.path, v.data, v.mode); err != nil {
					t.Fatal(err)
				}
				if err := tc.link(v.path, at+".swap"); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(at+".swap", at); err != nil {
					t.Fatal(err)
				}
			}
			into := filepath.Join(t.TempDir(), "into")
			r := runHaul(t, nil, "restore", dest, "--into", into, "--progress", "none")
			wantCode(t, r, tc.code)
			if !strings.Contains(r.stderr, bad.name) || !strings.Contains(r.stderr, "haul repair "+dest) {
				t.Errorf("restore does not name the part %s and haul repair %s:\n%s", bad.name, dest, r.stderr)
			}
			t.Logf("exit %d: %s", r.code, strings.TrimSpace(r.stderr))
			if _, err := os.Lstat(into); !os.IsNotExist(err) {
				t.Errorf("%s exists after a refused restore (%v)", into, err)
			}
			if ents, _ := os.ReadDir(filepath.Dir(into)); len(ents) != 0 {
				t.Errorf("left beside the target: %d entries", len(ents))
			}
			v.untouched(t)
		})
	}
}

// TestHostilePartLinkVerdicts: a verified part that gains a second name
// outside DEST (a hard link another local user made), or whose name is
// swapped for a symlink to a copy of its bytes, is not DEST's own file:
// status, verify, repair, restore and run all give the same verdict —
// broken, naming the part and why — whatever the order they run in;
// repair and run fetch the part again into a new plain file, restore
// alone exits 3 naming haul repair DEST, and the file under the other
// name keeps its bytes and mode.
func TestHostilePartLinkVerdicts(t *testing.T) {
	parts, data := storedTarGz(t, "site.tar.gz", 300<<10, 100<<10)
	srv := e2eServe(t, append(append([]e2ePart{}, parts...), e2ePart{"SHA256SUMS", e2eSHA256SUMS(parts)}))
	bad := parts[1]
	urls := e2eURLs(srv, parts)
	type step struct {
		args func(dest, into string) []string
		code int
		say  []string // what the output must name (besides nothing else)
	}
	status := step{func(d, _ string) []string { return []string{"status", d} }, 3, []string{bad.name, "broken"}}
	verify := step{func(d, _ string) []string { return []string{"verify", d} }, 3, []string{bad.name, "broken"}}
	repair := step{func(d, _ string) []string { return []string{"repair", "--progress", "none", d} }, 0, nil}
	restore := step{func(d, i string) []string { return []string{"restore", "--progress", "none", d, "--into", i} }, 3, []string{bad.name, "haul repair "}}
	restoreOK := step{restore.args, 0, nil}
	run := step{func(d, i string) []string {
		return append([]string{"run", "--progress", "none"}, append(urls, d, "--into", i)...)
	}, 0, nil}
	statusOK := step{status.args, 0, nil}
	plants := []struct {
		name string
		why  string
		// plant makes the part's file known under the victim's path too.
		plant func(t *testing.T, at string, v *victim)
	}{
		{"second hard link", "has 2 hard links", func(t *testing.T, at string, v *victim) {
			os.Remove(v.path)
			if err := os.Link(at, v.path); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(v.path, 0o600); err != nil {
				t.Fatal(err)
			}
			v.data, v.mode = bad.data, 0o600
		}},
		{"symlink to a copy", "is a symbolic link", func(t *testing.T, at string, v *victim) {
			v.data = bad.data
			if err := os.WriteFile(v.path, v.data, v.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(at); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(v.path, at); err != nil {
				t.Fatal(err)
			}
		}},
	}
	orders := map[string][]step{
		"status verify repair": {status, status, verify, verify, status, repair, statusOK, restoreOK},
		"restore alone":        {restore, restore, status, repair, repair, restoreOK},
		"run alone":            {run, statusOK, run},
		"verify then run":      {verify, run},
		"repair alone":         {repair, statusOK, restoreOK},
		"restore then run":     {restore, run},
	}
	for _, pl := range plants {
		for oname, steps := range orders {
			t.Run(pl.name+"/"+oname, func(t *testing.T) {
				dest := filepath.Join(t.TempDir(), "dest")
				into := filepath.Join(t.TempDir(), "into")
				wantCode(t, runHaul(t, nil, append([]string{"fetch", "--progress", "none"}, append(urls, dest)...)...), 0)
				v := newVictim(t)
				at := filepath.Join(dest, bad.name)
				pl.plant(t, at, v)
				restored := false
				for i, s := range steps {
					r := runHaul(t, nil, s.args(dest, into)...)
					if r.code != s.code {
						t.Fatalf("step %d (haul %s): exit %d, want %d\nstdout:\n%s\nstderr:\n%s", i, strings.Join(s.args(dest, into), " "), r.code, s.code, r.stdout, r.stderr)
					}
					out := r.stdout + r.stderr
					for _, w := range s.say {
						if w == "haul repair " {
							w += dest
						}
						if !strings.Contains(out, w) {
							t.Fatalf("step %d (haul %s) does not say %q:\n%s", i, s.args(dest, into)[0], w, out)
						}
					}
					if s.args(dest, into)[0] == "status" && s.code == 3 && !strings.Contains(out, pl.why) {
						t.Fatalf("status does not say why (%q):\n%s", pl.why, out)
					}
					v.untouched(t)
					if s.code != 0 && (s.args(dest, into)[0] == "restore") {
						if _, err := os.Lstat(into); !os.IsNotExist(err) {
							t.Fatalf("%s exists after a refused restore (%v)", into, err)
						}
					}
					restored = restored || s.code == 0 && (s.args(dest, into)[0] == "restore" || s.args(dest, into)[0] == "run")
				}
				e2eIdentical(t, dest, parts)
				fi, err := os.Lstat(at)
				if err != nil || !fi.Mode().IsRegular() || os.SameFile(fi, mustLstat(t, v.path)) {
					t.Fatalf("%s after repair: %v %v, not a new plain file of its own", at, fi, err)
				}
				if restored {
					got, err := os.ReadFile(filepath.Join(into, "data.bin"))
					if err != nil || !bytes.Equal(got, data) {
						t.Fatalf("restored data.bin differs from the source (%d bytes, %v)", len(got), err)
					}
				}
			})
		}
	}
}

func mustLstat(t *testing.T, path string) os.FileInfo {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}
