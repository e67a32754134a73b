package job

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch"
	"github.com/haul-dev/haul/internal/gen"
	"github.com/haul-dev/haul/restore"
)

// TestRunRepairsPartChangedSinceProof drives `haul run` through the job
// twice with no CLI. Between the runs one part rots where a stat cannot
// see it (mtime put back): the restore's digest finds it, the run fetches
// that part again and restores again without a person, exit 0, the tree
// identical. A restore alone then refuses the same rot with exit 3 and
// marks the part broken, so `haul repair` knows it.
func TestRunRepairsPartChangedSinceProof(t *testing.T) {
	dir := t.TempDir()
	tree, served := filepath.Join(dir, "site"), filepath.Join(dir, "server")
	if err := gen.Tree(tree, 9, 2<<20); err != nil {
		t.Fatal(err)
	}
	paths, err := gen.SplitTarGz(tree, served, "site.tar.gz", 256<<10, gen.FormatGzip)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "dest")
	fo := fetch.Options{Sources: []string{served + "/"}, Dest: dest, Connections: 4, Retries: 3, AutoPieceSize: true}
	run := func(into string) error {
		ctx, j, err := Begin(context.Background(), Options{Cmd: "run", Dest: dest})
		if err != nil {
			t.Fatal(err)
		}
		return j.End(j.RunAll(ctx, fo, restore.Options{Into: into}, nil))
	}
	if err := run(filepath.Join(dir, "one")); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dest, filepath.Base(paths[1]))
	rotSilently(t, bad)
	into := filepath.Join(dir, "two")
	if err := run(into); err != nil {
		t.Fatalf("the second run: %v", err)
	}
	assertSameTree(t, tree, into)

	// Restore alone: exit 3, nothing in place, the part marked broken.
	rotSilently(t, bad)
	ctx, j, err := Begin(context.Background(), Options{Cmd: "restore", Dest: dest})
	if err != nil {
		t.Fatal(err)
	}
	three := filepath.Join(dir, "three")
	err = j.End(j.Restore(ctx, restore.Options{Into: three}, nil))
	var de *restore.DigestError
	if !errors.As(err, &de) || ExitCode(err) != 3 || de.Part != filepath.Base(bad) {
		t.Fatalf("restore of a rotten part: %v (exit %d)", err, ExitCode(err))
	}
	if _, err := os.Stat(three); err == nil {
		t.Fatal("restore put a tree in place from a rotten part")
	}
	st, err := chunk.Load(dest)
	if err != nil {
		t.Fatal(err)
	}
	if p := st.Find(filepath.Base(bad)); p == nil || p.Status != chunk.Broken {
		t.Fatalf("the rotten part is not marked broken: %+v", p)
	}
}

// rotSilently flips a byte of a file and puts its mtime back.
func rotSilently(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 1
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b[len(b)/3:len(b)/3+1], int64(len(b)/3)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
}
