package restore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRestoreRoundTrip(t *testing.T) {
	tests := []struct {
		kind     string
		v        view
		password string
		format   Format
	}{
		{kind: "bitrix", v: view{deref: true, copiedLinks: true}, format: FormatBitrix},
		{kind: "bitrix-enc", v: view{deref: true, copiedLinks: true}, password: fixPassword, format: FormatBitrix},
		{kind: "tar.gz", format: FormatTarGz},
		{kind: "tar.gz-single", format: FormatTarGz},
		{kind: "gnutar.gz", format: FormatTarGz},
		{kind: "tar.zst", format: FormatTarZst},
		{kind: "tar.xz", format: FormatTarXz},
		{kind: "tar.bz2", format: FormatTarBz2},
		{kind: "tar", format: FormatTar},
		{kind: "zip", v: view{copiedLinks: true}, format: FormatZip},
	}
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			parts := fixture(t, tc.kind)
			if f, err := Detect(parts); err != nil || f != tc.format {
				t.Fatalf("Detect = %q, %v; want %q", f, err, tc.format)
			}
			dir := t.TempDir()
			chmodWritable(t, dir)
			into := filepath.Join(dir, "site")
			opts := Options{Into: into, Progress: &recorder{}}
			if tc.password != "" {
				opts.PasswordFile = filepath.Join(dir, "pw")
				if err := os.WriteFile(opts.PasswordFile, []byte(tc.password+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := Restore(context.Background(), parts, opts); err != nil {
				t.Fatal(err)
			}
			sameTree(t, snapshot(t, srcTree(t), tc.v), snapshot(t, into, tc.v))
			if s := staged(t, into); len(s) > 0 {
				t.Fatalf("staging left behind: %v", s)
			}
			rec := opts.Progress.(*recorder)
			var size int64
			for _, p := range parts {
				fi, _ := os.Stat(p.Path)
				size += fi.Size()
			}
			if rec.total != size || rec.bytes != size || len(rec.files) == 0 {
				t.Fatalf("progress: total %d, bytes %d, %d files; parts are %d bytes", rec.total, rec.bytes, len(rec.files), size)
			}
			if err := Test(context.Background(), parts, tc.password); err != nil {
				t.Fatalf("Test: %v", err)
			}
		})
	}
}

// Volumes given in name order (.1, .10, .11, ..., .2) are put in number order.
func TestBitrixVolumeOrder(t *testing.T) {
	parts := slices.Clone(fixture(t, "bitrix-small"))
	if len(parts) < 12 {
		t.Fatalf("want at least 12 volumes, got %d", len(parts))
	}
	slices.SortFunc(parts, func(a, b Part) int { return strings.Compare(a.Name, b.Name) })
	into := filepath.Join(t.TempDir(), "site")
	chmodWritable(t, filepath.Dir(into))
	if err := Restore(context.Background(), parts, Options{Into: into}); err != nil {
		t.Fatal(err)
	}
	v := view{deref: true, copiedLinks: true}
	sameTree(t, snapshot(t, srcTree(t), v), snapshot(t, into, v))
}

func TestBitrixMissingVolumes(t *testing.T) {
	parts := fixture(t, "bitrix-small")
	dir := t.TempDir()
	var kept []Part
	for _, p := range parts {
		if p.Name != "site.tar.gz.2" && p.Name != "site.tar.gz.11" && p.Name != parts[len(parts)-1].Name {
			kept = append(kept, p)
		}
	}
	into := filepath.Join(dir, "site")
	err := Restore(context.Background(), kept, Options{Into: into})
	var pe *PartsError
	if !errors.As(err, &pe) || !errors.Is(err, ErrNotReady) {
		t.Fatalf("err = %v, want *PartsError", err)
	}
	want := []string{"site.tar.gz.2", "site.tar.gz.11", parts[len(parts)-1].Name}
	if !slices.Equal(pe.Parts, want) || pe.Status[0] != "missing" {
		t.Fatalf("missing %v (%v), want %v", pe.Parts, pe.Status, want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message %q does not name %s", err, w)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("something was written: %v", ents)
	}
}

func TestWrongPassword(t *testing.T) {
	tests := []struct {
		name, password string
	}{
		{"wrong", "not the password"},
		{"missing", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Into: filepath.Join(dir, "site")}
			if tc.password != "" {
				opts.PasswordFile = filepath.Join(dir, "pw")
				if err := os.WriteFile(opts.PasswordFile, []byte(tc.password), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := Restore(context.Background(), fixture(t, "bitrix-enc"), opts)
			if !errors.Is(err, ErrPassword) {
				t.Fatalf("err = %v, want ErrPassword", err)
			}
			if strings.Contains(err.Error(), fixPassword) || (tc.password != "" && strings.Contains(err.Error(), tc.password)) {
				t.Fatalf("message shows a password: %v", err)
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if e.Name() != "pw" {
					t.Fatalf("something was written: %s", e.Name())
				}
			}
		})
	}
	t.Run("plain archive with a password", func(t *testing.T) {
		dir := t.TempDir()
		chmodWritable(t, dir)
		pw := filepath.Join(dir, "pw")
		_ = os.WriteFile(pw, []byte("x"), 0o600)
		rec := &recorder{}
		err := Restore(context.Background(), fixture(t, "bitrix"), Options{Into: filepath.Join(dir, "site"), PasswordFile: pw, Progress: rec})
		if err != nil || len(rec.warns) == 0 {
			t.Fatalf("err = %v, warnings %v; want success with a warning", err, rec.warns)
		}
	})
}

func TestTarget(t *testing.T) {
	t.Run("not empty", func(t *testing.T) {
		dir := t.TempDir()
		into := filepath.Join(dir, "site")
		if err := os.MkdirAll(into, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(into, "keep"), []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := Restore(context.Background(), fixture(t, "tar.gz"), Options{Into: into})
		if !errors.Is(err, ErrNotEmpty) {
			t.Fatalf("err = %v, want ErrNotEmpty", err)
		}
		if b, _ := os.ReadFile(filepath.Join(into, "keep")); string(b) != "mine" {
			t.Fatal("existing file changed")
		}
	})
	t.Run("empty directory is replaced", func(t *testing.T) {
		dir := t.TempDir()
		chmodWritable(t, dir)
		into := filepath.Join(dir, "site")
		if err := os.Mkdir(into, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := Restore(context.Background(), fixture(t, "tar.gz"), Options{Into: into}); err != nil {
			t.Fatal(err)
		}
		sameTree(t, snapshot(t, srcTree(t), view{}), snapshot(t, into, view{}))
	})
	t.Run("busy", func(t *testing.T) {
		dir := t.TempDir()
		into := filepath.Join(dir, "site")
		held := filepath.Join(dir, "site"+stagingMark+"other")
		if err := os.Mkdir(held, 0o700); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(held)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if busy, err := tryLock(f); err != nil || busy {
			t.Fatal("cannot lock", err)
		}
		// A lock taken through another open file description conflicts
		// like another process's would.
		err = Restore(context.Background(), fixture(t, "tar.gz"), Options{Into: into})
		if !errors.Is(err, ErrBusy) {
			t.Fatalf("err = %v, want ErrBusy", err)
		}
	})
	t.Run("no space", func(t *testing.T) {
		old := statFree
		statFree = func(string) (int64, error) { return 1000, nil }
		defer func() { statFree = old }()
		dir := t.TempDir()
		for _, kind := range []string{"bitrix", "tar.gz", "zip"} {
			err := Restore(context.Background(), fixture(t, kind), Options{Into: filepath.Join(dir, "site")})
			var ne *NoSpaceError
			if !errors.As(err, &ne) || !errors.Is(err, ErrNoSpace) || ne.Need < 1<<20 {
				t.Fatalf("%s: err = %v, want *NoSpaceError needing over 1 MiB", kind, err)
			}
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("something was written: %v", ents)
		}
	})
}

func TestAssemble(t *testing.T) {
	for _, kind := range []string{"tar.gz", "bitrix"} {
		t.Run(kind, func(t *testing.T) {
			parts := fixture(t, kind)
			var want []byte
			for _, p := range parts {
				b, err := os.ReadFile(p.Path)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, b...)
			}
			dir := t.TempDir()
			file := filepath.Join(dir, "joined")
			if err := os.WriteFile(file, []byte("old content"), 0o644); err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			if err := Assemble(context.Background(), parts, file, rec); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Fatalf("assembled %d bytes differ from the %d bytes of the parts", len(got), len(want))
			}
			if rec.bytes != int64(len(want)) {
				t.Fatalf("progress %d bytes, want %d", rec.bytes, len(want))
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Fatalf("left behind: %v", ents)
			}
		})
	}
}
