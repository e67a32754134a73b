package restore

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// restoreTar writes data as x.tar and restores it into a new directory.
func restoreTar(t *testing.T, data []byte, opts Options) (string, error) {
	t.Helper()
	base := t.TempDir()
	chmodWritable(t, base)
	p := filepath.Join(base, "x.tar")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	opts.Into = filepath.Join(base, "site")
	return opts.Into, Restore(context.Background(), []Part{{Name: "x.tar", Path: p}}, opts)
}

// filler is n small files in dir, so that the writers have a queue when
// the entries that follow come.
func filler(dir string, n int) []tent {
	out := make([]tent, n)
	for i := range out {
		out[i] = tent{typ: tar.TypeReg, name: fmt.Sprintf("%s/f%05d", dir, i), body: strings.Repeat("x", i%300)}
	}
	return out
}

// Entries that depend on files the writers may still be writing come out
// as a sequential extraction makes them: the later of duplicate names
// wins whatever their sizes, a hard link finds its target whole, a
// directory replaces a file of its name, and every file has its bytes,
// mode and mtime.
func TestWritersKeepArchiveOrder(t *testing.T) {
	const (
		reg  = tar.TypeReg
		dir  = tar.TypeDir
		sym  = tar.TypeSymlink
		hard = tar.TypeLink
	)
	big := strings.Repeat("B", poolMaxFile+1) // written by the dispatcher itself
	var ents []tent
	for round := range 3 {
		ents = append(ents, filler(fmt.Sprintf("fill%d", round), 1500)...)
		ents = append(ents,
			tent{typ: reg, name: "dup", body: fmt.Sprintf("small %d", round)},
			tent{typ: reg, name: "dup", body: big[:poolMaxFile]},
			tent{typ: reg, name: "dup", body: fmt.Sprintf("last %d", round), mode: 0o640},
			tent{typ: reg, name: "bigdup", body: "first, small"},
			tent{typ: reg, name: "bigdup", body: big},
			tent{typ: reg, name: "target", body: fmt.Sprintf("target %d", round)},
			tent{typ: hard, name: fmt.Sprintf("hard%d", round), link: "target"},
			tent{typ: reg, name: fmt.Sprintf("becomes-dir%d", round), body: "a file first"},
			tent{typ: dir, name: fmt.Sprintf("becomes-dir%d/", round), mode: 0o750},
			tent{typ: reg, name: fmt.Sprintf("becomes-dir%d/inside", round), body: "inside"},
			tent{typ: reg, name: fmt.Sprintf("becomes-link%d", round), body: "a file first"},
			tent{typ: sym, name: fmt.Sprintf("becomes-link%d", round), link: "target"},
			tent{typ: reg, name: "empty", body: ""},
		)
	}
	// Modes the umask would mask, and the sticky bit, are set whole.
	modes := []int64{0o666, 0o777, 0o1644, 0o400, 0o600}
	for _, m := range modes {
		ents = append(ents, tent{typ: reg, name: fmt.Sprintf("mode%o", m), body: "m", mode: m})
	}
	into, err := restoreTar(t, tarOf(t, ents...), Options{})
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(into, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("dup"); got != "last 2" {
		t.Fatalf("dup = %q, want the last one", got)
	}
	if got := read("bigdup"); got != big {
		t.Fatalf("bigdup: %d bytes, want the big one (%d)", len(got), len(big))
	}
	tfi, _ := os.Stat(filepath.Join(into, "target"))
	for round := range 3 {
		// A later target replaces the file, not the links made to it.
		name := fmt.Sprintf("hard%d", round)
		if got := read(name); got != fmt.Sprintf("target %d", round) {
			t.Fatalf("%s = %q, want target as it was when linked", name, got)
		}
		if fi, err := os.Stat(filepath.Join(into, name)); err != nil || os.SameFile(fi, tfi) != (round == 2) {
			t.Fatalf("%s: same file as target: %v, want %v (%v)", name, !(round == 2), round == 2, err)
		}
		if fi, err := os.Lstat(filepath.Join(into, fmt.Sprintf("becomes-dir%d", round))); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
			t.Fatalf("becomes-dir%d: %v, %v; want a directory 0750", round, fi, err)
		}
		if got := read(fmt.Sprintf("becomes-dir%d/inside", round)); got != "inside" {
			t.Fatalf("inside = %q", got)
		}
		if fi, err := os.Lstat(filepath.Join(into, fmt.Sprintf("becomes-link%d", round))); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("becomes-link%d: %v, %v; want a symlink", round, fi, err)
		}
	}
	if got := read("target"); got != "target 2" {
		t.Fatalf("target = %q", got)
	}
	for _, e := range ents {
		if e.typ != reg || !strings.HasPrefix(e.name, "fill") {
			continue
		}
		fi, err := os.Lstat(filepath.Join(into, e.name))
		if err != nil || fi.Size() != int64(len(e.body)) || fi.Mode().Perm() != 0o644 || !fi.ModTime().Equal(tmtime) {
			t.Fatalf("%s: %v, %v; want %d bytes, 0644, %v", e.name, fi, err, len(e.body), tmtime)
		}
	}
	for _, m := range modes {
		want := os.FileMode(m & 0o777)
		if m&0o1000 != 0 {
			want |= os.ModeSticky
		}
		if fi, err := os.Lstat(filepath.Join(into, fmt.Sprintf("mode%o", m))); err != nil || fi.Mode() != want {
			t.Fatalf("mode%o: %v, %v; want %v", m, fi.Mode(), err, want)
		}
	}
	if fi, err := os.Lstat(filepath.Join(into, "dup")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("dup: %v, %v; want the last entry's mode 0640", fi, err)
	}
}

// When writers fail on several entries, the error names the first of them
// in the archive, every time, and a file under a name the writers were
// still creating as a file is refused as a sequential extraction refuses it.
func TestWritersReportTheFirstFailure(t *testing.T) {
	const (
		reg = tar.TypeReg
		dir = tar.TypeDir
	)
	ents := []tent{{typ: dir, name: "d1/"}, {typ: dir, name: "d2/"}}
	ents = append(ents, filler("a", 1500)...)
	ents = append(ents, tent{typ: reg, name: "d1", body: "replaces a directory"})
	ents = append(ents, filler("b", 1500)...)
	ents = append(ents, tent{typ: reg, name: "d2", body: "replaces a directory"})
	data := tarOf(t, ents...)
	for range 3 {
		into, err := restoreTar(t, data, Options{})
		var ue *UnsafeError
		if !errors.As(err, &ue) || ue.Name != "d1" {
			t.Fatalf("err = %v, want an UnsafeError naming d1", err)
		}
		if _, err := os.Lstat(into); !os.IsNotExist(err) {
			t.Fatal("something is at the target")
		}
		if s := staged(t, into); len(s) > 0 {
			t.Fatalf("staging left behind: %v", s)
		}
	}

	ents = append(filler("c", 1500), tent{typ: reg, name: "f", body: "a file"}, tent{typ: reg, name: "f/under", body: "x"})
	_, err := restoreTar(t, tarOf(t, ents...), Options{})
	var ue *UnsafeError
	if !errors.As(err, &ue) || ue.Name != "f/under" || !strings.Contains(ue.Reason, "f is not a directory") {
		t.Fatalf("err = %v, want f/under refused: f is not a directory", err)
	}
}

// A cancel while the writers have a queue ends the restore with the
// context's error, leaves nothing at the target and no staging, and no
// writer goroutine behind.
func TestWritersCancel(t *testing.T) {
	data := tarOf(t, filler("many", 10000)...)
	base := t.TempDir()
	p := filepath.Join(base, "x.tar")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	into := filepath.Join(base, "site")
	start := time.Now()
	err := Restore(ctx, []Part{{Name: "x.tar", Path: p}}, Options{Into: into, Progress: &cancelAfter{n: 3000, cancel: cancel}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	t.Logf("ended %v after the start", time.Since(start))
	if _, err := os.Lstat(into); !os.IsNotExist(err) {
		t.Fatal("something is at the target")
	}
	if s := staged(t, into); len(s) > 0 {
		t.Fatalf("staging left behind: %v", s)
	}
	for i := 0; runtime.NumGoroutine() > before; i++ {
		if i == 100 {
			t.Fatalf("%d goroutines, %d before the restore: writers left running", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
