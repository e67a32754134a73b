package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/haul-dev/haul/fetch/source"
)

func openDir(t *testing.T, dir string) (source.Source, map[string]source.Object) {
	t.Helper()
	op, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := op.Source.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]source.Object{}
	for _, o := range objs {
		byName[o.Name] = o
	}
	return op.Source, byName
}

func readRange(s source.Source, obj source.Object, off, n int64) ([]byte, error) {
	rc, err := s.ReadRange(context.Background(), obj, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		if runtime.GOOS == "linux" || os.Getenv("CI") == "true" {
			t.Fatalf("counting open descriptors: %v", err)
		}
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestReadRangeSeesChanges: the descriptor kept open across reads does not
// hide a change: a part replaced by another file of its size or rewritten
// in place fails the next read with ErrChanged, and reads before give the
// listed bytes.
func TestReadRangeSeesChanges(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db.bak")
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, objs := openDir(t, dir)
	defer s.Close()
	obj := objs["db.bak"]
	for off := int64(0); off < obj.Size; off += 10000 {
		got, err := readRange(s, obj, off, min(10000, obj.Size-off))
		if err != nil || !bytes.Equal(got, data[off:off+int64(len(got))]) || len(got) == 0 {
			t.Fatalf("read at %d: %d bytes, err %v; want the listed bytes", off, len(got), err)
		}
	}

	// Replaced by another file of the same size (while the old one is
	// still open here).
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, bytes.ToUpper(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(other, obj.ModTime.Add(time.Second), obj.ModTime.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	if got, err := readRange(s, obj, 0, 100); !errors.Is(err, source.ErrChanged) {
		t.Fatalf("read of a replaced part: %q, err %v; want ErrChanged", got, err)
	}

	// Rewritten in place: a new mtime.
	s2, objs := openDir(t, dir)
	defer s2.Close()
	obj = objs["db.bak"]
	if _, err := readRange(s2, obj, 0, 100); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("X"), 5)
	f.Close()
	later := obj.ModTime.Add(2 * time.Second)
	os.Chtimes(path, later, later)
	if _, err := readRange(s2, obj, 0, 100); !errors.Is(err, source.ErrChanged) {
		t.Fatalf("read of a part rewritten in place: err %v; want ErrChanged", err)
	}
}

// TestReadRangeBoundsDescriptors: reading 200 parts keeps at most
// maxOpen of them open, and Close releases them all, also one a read
// still held then (released when that read ends).
func TestReadRangeBoundsDescriptors(t *testing.T) {
	dir := t.TempDir()
	const parts = 200
	for i := range parts {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("p.%03d", i)), []byte(fmt.Sprintf("part %d", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := openFDs(t)
	s, objs := openDir(t, dir)
	for i := range parts {
		name := fmt.Sprintf("p.%03d", i)
		got, err := readRange(s, objs[name], 0, objs[name].Size)
		if err != nil || string(got) != fmt.Sprintf("part %d", i) {
			t.Fatalf("%s: %q, %v", name, got, err)
		}
	}
	if n := openFDs(t) - before; n > maxOpen {
		t.Fatalf("%d descriptors open after reading %d parts, want at most %d", n, parts, maxOpen)
	}
	held, err := s.ReadRange(context.Background(), objs["p.000"], 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if n := openFDs(t) - before; n != 1 {
		t.Fatalf("%d descriptors open after Close with one read in progress, want 1", n)
	}
	if b, err := io.ReadAll(held); err != nil || string(b) != "part" {
		t.Fatalf("the read in progress gave %q, %v after Close", b, err)
	}
	held.Close()
	if n := openFDs(t) - before; n != 0 {
		t.Fatalf("%d descriptors left open after the last read ended", n)
	}
}
