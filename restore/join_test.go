package restore

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/haul-dev/haul/integrity"
)

func TestJoin(t *testing.T) {
	dir := t.TempDir()
	contents := []string{"abc", "", "defgh", "ij"}
	var parts []Part
	for i, c := range contents {
		p := filepath.Join(dir, "p"+strconv.Itoa(i))
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, Part{Name: "p" + strconv.Itoa(i), Path: p})
	}
	j, err := NewJoin(parts)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	all, err := io.ReadAll(j)
	if err != nil || string(all) != "abcdefghij" || j.Size() != 10 {
		t.Fatalf("Read: %q, %v (size %d)", all, err, j.Size())
	}
	buf := make([]byte, 6)
	if n, err := j.ReadAt(buf, 2); n != 6 || err != nil || string(buf) != "cdefgh" {
		t.Fatalf("ReadAt: %q, %d, %v", buf, n, err)
	}
	if n, err := j.ReadAt(buf, 7); n != 3 || err != io.EOF {
		t.Fatalf("ReadAt past the end: %d, %v", n, err)
	}
	for _, tc := range []struct {
		off  int64
		part string
		in   int64
	}{{0, "p0", 0}, {1, "p0", 1}, {3, "p0", 3}, {4, "p2", 1}, {8, "p2", 5}, {9, "p3", 1}, {10, "p3", 2}} {
		if part, in := j.Locate(tc.off); part != tc.part || in != tc.in {
			t.Errorf("Locate(%d) = %s %d, want %s %d", tc.off, part, in, tc.part, tc.in)
		}
	}

	// More parts than Join keeps open at once.
	var many []Part
	var want []byte
	for i := range maxOpen * 3 {
		p := filepath.Join(dir, "m"+strconv.Itoa(i))
		c := []byte(strconv.Itoa(i) + ";")
		if err := os.WriteFile(p, c, 0o644); err != nil {
			t.Fatal(err)
		}
		many = append(many, Part{Name: "m" + strconv.Itoa(i), Path: p})
		want = append(want, c...)
	}
	jm, err := NewJoin(many)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(jm)
	if err != nil || string(got) != string(want) || jm.open > maxOpen {
		t.Fatalf("%d parts: %q, %v, %d open", len(many), got, err, jm.open)
	}
	_ = jm.Close()

	// A missing part and a part of the wrong size.
	missing := append([]Part{}, parts...)
	missing[2].Path += "-gone"
	var pe *PartsError
	if _, err := NewJoin(missing); !errors.As(err, &pe) || pe.Parts[0] != "p2" {
		t.Fatalf("missing part: %v", err)
	}
	wrong := append([]Part{}, parts...)
	wrong[0].Size = 4
	var fe *integrity.FormatError
	if _, err := NewJoin(wrong); !errors.As(err, &fe) || fe.Part != "p0" {
		t.Fatalf("wrong size: %v", err)
	}
}
