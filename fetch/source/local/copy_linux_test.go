package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/haul-dev/haul/fetch/source"
	"golang.org/x/sys/unix"
)

// TestCopyTo: a range moved into another file inside the kernel lands
// byte for byte at the offset asked, in as many calls as it takes, and
// ends with io.EOF; when the kernel refuses to copy between the files
// (EXDEV, as across file systems), CopyTo says so having copied nothing,
// Read serves the same range from where the copy stopped, and the source
// stops trying to copy.
func TestCopyTo(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 3<<20+77)
	for i := range data {
		data[i] = byte(i*31 + i>>11)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, objs := openDir(t, dir)
	defer s.Close()
	const off, n = 1<<20 + 5, 2<<20 + 1
	dst, err := os.Create(filepath.Join(t.TempDir(), "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()

	rc, err := s.ReadRange(context.Background(), objs["a.bin"], off, n)
	if err != nil {
		t.Fatal(err)
	}
	fc, ok := rc.(source.FileCopier)
	if !ok {
		t.Fatal("a local range is not a source.FileCopier")
	}
	var at int64 = 100 // where in dst
	for i := 0; i < 100; i++ {
		k, err := fc.CopyTo(dst, at, 256<<10)
		at += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("CopyTo: %v", err)
		}
	}
	rc.Close()
	got := make([]byte, n)
	if _, err := dst.ReadAt(got, 100); err != nil || !bytes.Equal(got, data[off:off+n]) || at != 100+n {
		t.Fatalf("copied %d bytes (err %v); equal %v", at-100, err, bytes.Equal(got, data[off:off+n]))
	}

	// Half by the kernel, then refused: Read gives the rest.
	calls := 0
	copyFileRange = func(rfd int, roff *int64, wfd int, woff *int64, len int, flags int) (int, error) {
		if calls++; calls > 1 {
			return 0, syscall.EXDEV
		}
		return unix.CopyFileRange(rfd, roff, wfd, woff, len, flags)
	}
	defer func() { copyFileRange = unix.CopyFileRange }()
	rc, err = s.ReadRange(context.Background(), objs["a.bin"], off, n)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	fc = rc.(source.FileCopier)
	k, err := fc.CopyTo(dst, 0, 1<<20)
	if err != nil || k <= 0 {
		t.Fatalf("first CopyTo: %d, %v", k, err)
	}
	if k2, err := fc.CopyTo(dst, int64(k), 1<<20); k2 != 0 || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("CopyTo refused by the kernel: %d, %v; want 0 and errors.ErrUnsupported", k2, err)
	}
	rest, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, k)
	dst.ReadAt(head, 0)
	if !bytes.Equal(append(head, rest...), data[off:off+n]) {
		t.Fatalf("copied %d bytes then read %d: not the range's bytes", k, len(rest))
	}
	if k3, err := fc.CopyTo(dst, 0, 1); calls != 2 || k3 != 0 || !errors.Is(err, io.EOF) && !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("after a refusal: %d calls to the kernel, CopyTo %d, %v", calls, k3, err)
	}
}
