package restore

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A gzip's last ISIZE says little about the whole (it is modulo 4 GiB,
// and of the last member only): the file headers are checked against the
// space left before each file is written, and a file that does not fit
// stops the restore, naming it, with nothing at the target.
func TestNoSpaceFromHeaders(t *testing.T) {
	big := strings.Repeat("\x00", 8<<20)
	var tr bytes.Buffer
	tw := tar.NewWriter(&tr)
	for _, f := range []struct{ name, body string }{{"small.txt", "small"}, {"big.bin", big}} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.body)), ModTime: tmtime}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	// Two gzip members: the last holds only the end blocks, so its ISIZE
	// is 1 KiB.
	data := tr.Bytes()
	gz := append(gzipOf(t, data[:len(data)-1024]), gzipOf(t, data[len(data)-1024:])...)
	base := t.TempDir()
	p := filepath.Join(base, "x.tar.gz")
	if err := os.WriteFile(p, gz, 0o644); err != nil {
		t.Fatal(err)
	}
	old := statFree
	t.Cleanup(func() { statFree = old })
	statFree = func(string) (int64, error) { return 1 << 20, nil }
	into := filepath.Join(base, "site")
	err := Restore(context.Background(), []Part{{Name: "x.tar.gz", Path: p}}, Options{Into: into})
	var ne *NoSpaceError
	if !errors.As(err, &ne) || ne.Entry != "big.bin" || !errors.Is(err, ErrNoSpace) {
		t.Fatalf("err = %v, want no space for big.bin", err)
	}
	if _, err := os.Lstat(into); !os.IsNotExist(err) {
		t.Fatal("something is at the target")
	}
	if s := staged(t, into); len(s) > 0 {
		t.Fatalf("staging left: %v", s)
	}
}
