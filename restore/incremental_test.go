package restore

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gnuIncremental builds, with GNU tar --listed-incremental, a level 0 and
// a level 1 archive of a tree changed in between (files added, modified,
// deleted, a directory removed, a directory renamed), each split into
// parts, and returns the parts and snapshots of the tree at both levels.
func gnuIncremental(t *testing.T) (l0, l1 []Part, at0, at1 map[string]string) {
	t.Helper()
	needCommand(t, "tar")
	base := t.TempDir()
	src, snap := filepath.Join(base, "src"), filepath.Join(base, "snap")
	write := func(name, body string) {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 40 {
		write(fmt.Sprintf("www/mod%d/file%02d.php", i%4, i), strings.Repeat(fmt.Sprintf("<?php echo %d; ?>\n", i), 50+i*13))
	}
	write("www/upload/old/a.jpg", strings.Repeat("jpeg", 3000))
	write("www/upload/old/deep/b.jpg", strings.Repeat("jpeg", 2000))
	write("www/cache/c1", "cache one")
	write("www/index.php", "<?php // index ?>")
	write("www/moved/inside.txt", "I stay in a renamed directory")
	if err := os.Symlink("index.php", filepath.Join(src, "www/home.php")); err != nil {
		t.Fatal(err)
	}
	archive := func(level int) []Part {
		p := filepath.Join(base, fmt.Sprintf("l%d.tar.gz", level))
		cmd := exec.Command("tar", "-C", src, "--listed-incremental="+snap, "-czf", p, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tar level %d: %v: %s", level, err, out)
		}
		return splitFile(t, p, filepath.Join(base, fmt.Sprintf("set%d", level)), 4)
	}
	l0 = archive(0)
	at0 = snapshot(t, src, view{})
	write("www/mod1/file01.php", "changed at level 1")
	write("www/new/added.php", "added at level 1")
	write("www/mod2/added2.php", "added too")
	for _, p := range []string{"www/mod3/file03.php", "www/cache/c1"} {
		if err := os.Remove(filepath.Join(src, p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(src, "www/upload/old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(src, "www/moved"), filepath.Join(src, "www/renamed")); err != nil {
		t.Fatal(err)
	}
	l1 = archive(1)
	at1 = snapshot(t, src, view{})
	return l0, l1, at0, at1
}

// splitFile cuts a file into n parts NAME.000, NAME.001, … in dir.
func splitFile(t *testing.T, file, dir string, n int) []Part {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var parts []Part
	step := (len(data) + n - 1) / n
	for i := 0; i*step < len(data); i++ {
		p := filepath.Join(dir, fmt.Sprintf("%s.%03d", filepath.Base(file), i))
		if err := os.WriteFile(p, data[i*step:min((i+1)*step, len(data))], 0o644); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, Part{Name: filepath.Base(p), Path: p})
	}
	return parts
}

func TestIncrementalGNU(t *testing.T) {
	l0, l1, at0, at1 := gnuIncremental(t)
	restore := func(t *testing.T, sets [][]Part, incremental bool) string {
		into := filepath.Join(t.TempDir(), "site")
		rec := &recorder{}
		if err := RestoreChain(context.Background(), sets, Options{Into: into, Incremental: incremental, Progress: rec}); err != nil {
			t.Fatal(err)
		}
		if len(rec.warns) > 0 {
			t.Errorf("warnings: %q", rec.warns)
		}
		if s := staged(t, into); len(s) > 0 {
			t.Fatalf("staging left: %v", s)
		}
		return into
	}
	t.Run("level 0 alone is the tree at level 0", func(t *testing.T) {
		sameTree(t, at0, snapshot(t, restore(t, [][]Part{l0}, true), view{}))
	})
	t.Run("level 0 without --incremental restores like a plain archive", func(t *testing.T) {
		sameTree(t, at0, snapshot(t, restore(t, [][]Part{l0}, false), view{}))
	})
	t.Run("level 0 then level 1 is the tree at level 1", func(t *testing.T) {
		into := restore(t, [][]Part{l0, l1}, true)
		sameTree(t, at1, snapshot(t, into, view{}))
		for _, gone := range []string{"www/mod3/file03.php", "www/cache/c1", "www/upload/old", "www/moved"} {
			if _, err := os.Lstat(filepath.Join(into, gone)); !os.IsNotExist(err) {
				t.Errorf("%s is still there", gone)
			}
		}
	})
	t.Run("without --incremental nothing is removed", func(t *testing.T) {
		into := restore(t, [][]Part{l0, l1}, false)
		if _, err := os.Stat(filepath.Join(into, "www/cache/c1")); err != nil {
			t.Fatalf("a name the level 1 list drops was removed without --incremental: %v", err)
		}
	})
	t.Run("a broken increment stops the chain before anything is written", func(t *testing.T) {
		bad := copyParts(t, l1, t.TempDir())
		if err := os.Truncate(bad[0].Path, 10); err != nil {
			t.Fatal(err)
		}
		into := filepath.Join(t.TempDir(), "site")
		err := RestoreChain(context.Background(), [][]Part{l0, bad}, Options{Into: into, Incremental: true})
		if err == nil {
			t.Fatal("a damaged level 1 was restored")
		}
		if _, serr := os.Lstat(into); !os.IsNotExist(serr) {
			t.Fatalf("something is at the target after %v", err)
		}
		if s := staged(t, into); len(s) > 0 {
			t.Fatalf("staging left: %v", s)
		}
	})
}

// dumpdirTar builds a GNU tar with 'D' entries (typ 'D', body the list).
func dumpdirTar(t *testing.T, ents ...tent) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		h := &tar.Header{Typeflag: e.typ, Name: e.name, Linkname: e.link, Mode: 0o755, ModTime: tmtime, Format: tar.FormatGNU}
		if e.typ == tar.TypeReg || e.typ == 'D' {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The name lists of an increment are applied inside the tree only: a
// symlink the list drops is removed, not what it points to; a list for a
// directory reached through a symlink, or a rename that leaves the tree,
// is refused.
func TestIncrementalHostile(t *testing.T) {
	const sym, dir, reg = tar.TypeSymlink, tar.TypeDir, tar.TypeReg
	level0 := dumpdirTar(t, tent{typ: dir, name: "d/"}, tent{typ: reg, name: "d/keep", body: "keep"},
		tent{typ: sym, name: "l", link: "d"}, tent{typ: sym, name: "ld", link: "d"})
	tests := []struct {
		name   string
		level1 []byte
		reason string // "" when it must restore
	}{
		{"a dropped symlink is removed, its target kept",
			dumpdirTar(t, tent{typ: 'D', name: "./", body: "Dd\x00Nld\x00\x00"}), ""},
		{"a list for a directory behind a symlink",
			dumpdirTar(t, tent{typ: 'D', name: "ld/sub/", body: "\x00"}), "writes through the symlink ld"},
		{"a rename out of the tree",
			dumpdirTar(t, tent{typ: 'D', name: "./", body: "Dd\x00R./d\x00T../../outside/d\x00\x00"}), `".."`},
		{"a rename from an absolute path",
			dumpdirTar(t, tent{typ: 'D', name: "./", body: "Dd\x00R/etc\x00T./etc\x00\x00"}), "absolute path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			if err := os.MkdirAll(filepath.Join(outside, "d"), 0o755); err != nil {
				t.Fatal(err)
			}
			sentinel := filepath.Join(outside, "d", "sentinel")
			if err := os.WriteFile(sentinel, []byte("keep"), 0o644); err != nil {
				t.Fatal(err)
			}
			p0, p1 := filepath.Join(base, "l0.tar"), filepath.Join(base, "l1.tar")
			if err := os.WriteFile(p0, level0, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p1, tc.level1, 0o644); err != nil {
				t.Fatal(err)
			}
			into := filepath.Join(base, "work", "site")
			err := RestoreChain(context.Background(), [][]Part{{{Name: "l0.tar", Path: p0}}, {{Name: "l1.tar", Path: p1}}}, Options{Into: into, Incremental: true})
			if b, rerr := os.ReadFile(sentinel); rerr != nil || string(b) != "keep" {
				t.Fatalf("outside changed: %q, %v", b, rerr)
			}
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := os.Lstat(filepath.Join(into, "l")); !os.IsNotExist(err) {
					t.Fatal("the dropped symlink l is still there")
				}
				if b, err := os.ReadFile(filepath.Join(into, "d/keep")); err != nil || string(b) != "keep" {
					t.Fatalf("d/keep behind the removed symlink: %q, %v", b, err)
				}
				return
			}
			var ue *UnsafeError
			if !errors.As(err, &ue) || !strings.Contains(ue.Reason, tc.reason) {
				t.Fatalf("err = %v, want an unsafe entry saying %q", err, tc.reason)
			}
			if _, err := os.Lstat(into); !os.IsNotExist(err) {
				t.Fatal("something is at the target")
			}
		})
	}
}
