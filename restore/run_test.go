package restore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/integrity"
	"github.com/haul-dev/haul/internal/gen"
)

// workdir copies a fixture's parts into a DEST with a state.json giving
// them the statuses given (the last one repeats).
func workdir(t *testing.T, kind string, status ...string) (string, []Part) {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "dest")
	if err := os.Mkdir(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	parts := copyParts(t, fixture(t, kind), dest)
	st := &chunk.State{PieceSize: 8 << 20}
	for i, p := range parts {
		fi, err := os.Stat(p.Path)
		if err != nil {
			t.Fatal(err)
		}
		s := status[min(i, len(status)-1)]
		st.Parts = append(st.Parts, &chunk.Part{Name: p.Name, Size: fi.Size(), Status: s})
	}
	if err := chunk.Save(dest, st); err != nil {
		t.Fatal(err)
	}
	return dest, parts
}

func TestRun(t *testing.T) {
	t.Run("parts not ready", func(t *testing.T) {
		tests := []struct {
			status []string
			fix    string
		}{
			{[]string{chunk.Verified, chunk.Broken, chunk.Verified, chunk.Missing}, "haul repair"},
			{[]string{chunk.Verified, chunk.Partial, chunk.Pending}, "fetch"},
		}
		for _, tc := range tests {
			dest, parts := workdir(t, "tar.gz", tc.status...)
			into := filepath.Join(filepath.Dir(dest), "site")
			err := Run(context.Background(), dest, Options{Into: into})
			var pe *PartsError
			if !errors.As(err, &pe) || !errors.Is(err, ErrNotReady) {
				t.Fatalf("err = %v, want *PartsError", err)
			}
			var want []string
			for i, p := range parts {
				if s := tc.status[min(i, len(tc.status)-1)]; s != chunk.Verified {
					want = append(want, p.Name)
				}
			}
			if !slices.Equal(pe.Parts, want) || !strings.Contains(err.Error(), tc.fix) || !strings.Contains(err.Error(), want[0]) {
				t.Fatalf("err = %v; want it to name %v and say %q", err, want, tc.fix)
			}
			if _, err := os.Lstat(into); !os.IsNotExist(err) {
				t.Fatal("something is at the target")
			}
		}
	})
	t.Run("unverified parts restore with a warning", func(t *testing.T) {
		dest, _ := workdir(t, "bitrix", chunk.Verified, chunk.Unverified)
		into := filepath.Join(filepath.Dir(dest), "site")
		chmodWritable(t, into)
		rec := &recorder{}
		if err := Run(context.Background(), dest, Options{Into: into, Progress: rec}); err != nil {
			t.Fatal(err)
		}
		if len(rec.warns) != 1 || !strings.Contains(rec.warns[0], "site.tar.gz.1") {
			t.Fatalf("warnings %q", rec.warns)
		}
		v := view{deref: true, copiedLinks: true}
		sameTree(t, snapshot(t, srcTree(t), v), snapshot(t, into, v))
		if done, err := Done(dest, into); !done || err != nil {
			t.Fatalf("Done = %v, %v; want true", done, err)
		}
		if done, _ := Done(dest, into+"-other"); done {
			t.Fatal("Done for another target")
		}
	})
	t.Run("a damaged unverified part is marked broken", func(t *testing.T) {
		dest, parts := workdir(t, "bitrix", chunk.Unverified)
		garble(t, parts[2].Path, 20_000)
		into := filepath.Join(filepath.Dir(dest), "site")
		err := Run(context.Background(), dest, Options{Into: into})
		var fe *integrity.FormatError
		if !errors.As(err, &fe) || fe.Part != parts[2].Name || !strings.Contains(err.Error(), "haul repair") {
			t.Fatalf("err = %v, want a format error in %s and the repair command", err, parts[2].Name)
		}
		st, err := chunk.Load(dest)
		if err != nil {
			t.Fatal(err)
		}
		if p := st.Find(parts[2].Name); p.Status != chunk.Broken || p.Error == "" {
			t.Fatalf("status %q (%q), want broken", p.Status, p.Error)
		}
		if done, _ := Done(dest, into); done {
			t.Fatal("Done after a failed restore")
		}
	})
	t.Run("assemble", func(t *testing.T) {
		dest, parts := workdir(t, "tar.zst", chunk.Verified)
		file := filepath.Join(filepath.Dir(dest), "site.tar.zst")
		if err := Run(context.Background(), dest, Options{Assemble: file}); err != nil {
			t.Fatal(err)
		}
		var want []byte
		for _, p := range parts {
			b, _ := os.ReadFile(p.Path)
			want = append(want, b...)
		}
		if got, _ := os.ReadFile(file); string(got) != string(want) {
			t.Fatal("assembled file differs from the parts joined")
		}
	})
	t.Run("usage", func(t *testing.T) {
		dest, _ := workdir(t, "tar", chunk.Verified)
		for _, o := range []Options{{}, {Into: "a", Assemble: "b"}} {
			if err := Run(context.Background(), dest, o); err == nil {
				t.Fatalf("Run(%+v) = nil, want an error", o)
			}
		}
	})
}

// Test checks an encrypted Bitrix set down to its compression layer
// without the password.
func TestTestWithoutPassword(t *testing.T) {
	if err := Test(context.Background(), fixture(t, "bitrix-enc"), ""); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	parts := copyParts(t, fixture(t, "bitrix-enc"), dir)
	garble(t, parts[1].Path, 100_000)
	var fe *integrity.FormatError
	if err := Test(context.Background(), parts, ""); !errors.As(err, &fe) || fe.Part != parts[1].Name {
		t.Fatalf("err = %v, want a format error in %s", err, parts[1].Name)
	}
}

// TestRunAgainIsDone: running the same restore again after it succeeded
// exits cleanly and leaves the tree alone.
func TestRunAgainIsDone(t *testing.T) {
	src, served, dest := t.TempDir(), t.TempDir(), t.TempDir()
	if err := gen.Tree(src, 11, 256<<10); err != nil {
		t.Fatal(err)
	}
	paths, err := gen.SplitTarGz(src, served, "site.tar.gz", 64<<10, gen.FormatGzip)
	if err != nil {
		t.Fatal(err)
	}
	st := &chunk.State{PieceSize: 1 << 20}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(p)
		if err := os.WriteFile(filepath.Join(dest, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		st.Parts = append(st.Parts, &chunk.Part{Name: name, Size: int64(len(data)), Status: chunk.Verified})
	}
	if err := chunk.Save(dest, st); err != nil {
		t.Fatal(err)
	}
	into := filepath.Join(t.TempDir(), "www")
	if err := Run(context.Background(), dest, Options{Into: into}); err != nil {
		t.Fatal(err)
	}
	sentinel := filepath.Join(into, "added-after-restore")
	if err := os.WriteFile(sentinel, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Run(context.Background(), dest, Options{Into: into}); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if _, err := os.Stat(sentinel); err != nil {
		t.Fatalf("the second run touched the restored tree: %v", err)
	}
}
