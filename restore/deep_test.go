package restore

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// deepTar is a tar of one file depth directories deep ("d/d/…/f"); with
// everyLevel, each directory is an entry too, with a file beside it.
func deepTar(t testing.TB, depth int, everyLevel bool) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	add := func(h *tar.Header, body string) {
		h.ModTime, h.Format = tmtime, tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if everyLevel {
		for i := 1; i <= depth; i++ {
			dir := strings.Repeat("d/", i)
			add(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o750}, "")
			add(&tar.Header{Typeflag: tar.TypeReg, Name: dir + "g", Mode: 0o644, Size: 1}, "g")
		}
	}
	add(&tar.Header{Typeflag: tar.TypeReg, Name: strings.Repeat("d/", depth) + "f", Mode: 0o644, Size: 4}, "deep")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func writeArchive(t testing.TB, data []byte) []Part {
	t.Helper()
	p := filepath.Join(t.TempDir(), "deep.tar")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return []Part{{Name: "deep.tar", Path: p}}
}

// restoreBounded runs Restore and fails the test if it takes more than a
// minute: a deep tree must never hang a restore.
func restoreBounded(t *testing.T, ctx context.Context, parts []Part, opts Options) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- Restore(ctx, parts, opts) }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatal("the restore of a deep tree did not end within a minute")
		return nil
	}
}

func TestDeepTree(t *testing.T) {
	t.Run("10,000 deep is refused at once, naming the entry", func(t *testing.T) {
		into := filepath.Join(t.TempDir(), "site")
		err := restoreBounded(t, context.Background(), writeArchive(t, deepTar(t, 10000, false)), Options{Into: into})
		var ue *UnsafeError
		if !errors.As(err, &ue) || !strings.Contains(ue.Reason, "PATH_MAX") || !strings.HasPrefix(ue.Name, "d/d/") {
			t.Fatalf("err = %v, want an unsafe entry over PATH_MAX", err)
		}
		if _, err := os.Lstat(into); !os.IsNotExist(err) {
			t.Fatal("something is at the target")
		}
		if s := staged(t, into); len(s) > 0 {
			t.Fatalf("staging left: %v", s)
		}
	})
	t.Run("a name over NAME_MAX is refused", func(t *testing.T) {
		into := filepath.Join(t.TempDir(), "site")
		long := "a/" + strings.Repeat("n", 256)
		err := Restore(context.Background(), writeArchive(t, tarOf(t, tent{typ: tar.TypeReg, name: long, body: "x"})), Options{Into: into})
		var ue *UnsafeError
		if !errors.As(err, &ue) || !strings.Contains(ue.Reason, "NAME_MAX") {
			t.Fatalf("err = %v, want an unsafe entry over NAME_MAX", err)
		}
	})
	t.Run("2,047 deep, every level an entry, restores whole", func(t *testing.T) {
		const depth = 2047 // "d/"×2047 + "f" is 4095 bytes, the longest path Linux takes
		base := t.TempDir()
		chmodWritable(t, base)
		into := filepath.Join(base, "site")
		if err := restoreBounded(t, context.Background(), writeArchive(t, deepTar(t, depth, true)), Options{Into: into}); err != nil {
			t.Fatal(err)
		}
		// Walk down by relative names: the absolute path is over PATH_MAX.
		d, err := os.OpenRoot(into)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		for i := 1; i <= depth; i++ {
			fi, err := d.Lstat("d")
			if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 || !fi.ModTime().Equal(tmtime) {
				t.Fatalf("level %d: %v, %v", i, fi, err)
			}
			if b, err := d.ReadFile("d/g"); err != nil || string(b) != "g" {
				t.Fatalf("level %d: g = %q, %v", i, b, err)
			}
			next, err := d.OpenRoot("d")
			if err != nil {
				t.Fatal(err)
			}
			d.Close()
			d = next
		}
		if b, err := d.ReadFile("f"); err != nil || string(b) != "deep" {
			t.Fatalf("the deepest file: %q, %v", b, err)
		}
	})
}

// Cancelling at any moment of a deep restore ends it with the context's
// error, no staging and nothing at the target.
func TestDeepCancel(t *testing.T) {
	parts := writeArchive(t, deepTar(t, 2000, true))
	for _, after := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond, 60 * time.Millisecond, 150 * time.Millisecond} {
		t.Run(after.String(), func(t *testing.T) {
			base := t.TempDir()
			chmodWritable(t, base)
			into := filepath.Join(base, "site")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			time.AfterFunc(after, cancel)
			err := restoreBounded(t, ctx, parts, Options{Into: into})
			switch {
			case err == nil:
				t.Logf("finished before the cancel at %v", after)
			case errors.Is(err, context.Canceled):
				if _, err := os.Lstat(into); !os.IsNotExist(err) {
					t.Fatal("a cancelled restore left something at the target")
				}
			default:
				t.Fatalf("err = %v, want nil or context.Canceled", err)
			}
			if s := staged(t, into); len(s) > 0 {
				t.Fatalf("staging left: %v", s)
			}
		})
	}
}

// BenchmarkRestoreDeep restores one file N directories deep and reports
// the time per level: flat when the restore is linear in depth. Paths
// longer than PATH_MAX are refused, so 2,047 is the deepest tree of
// one-letter names; 4,096 and 8,192 show that refusal costs nothing.
func BenchmarkRestoreDeep(b *testing.B) {
	for _, depth := range []int{256, 512, 1024, 2047, 4096, 8192} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			parts := writeArchive(b, deepTar(b, depth, false))
			dir := b.TempDir()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				into := filepath.Join(dir, fmt.Sprint("site", i))
				err := Restore(context.Background(), parts, Options{Into: into})
				var ue *UnsafeError
				if err != nil && !(depth > 2047 && errors.As(err, &ue)) {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := removeTree(into); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(depth), "µs/level")
		})
	}
}
