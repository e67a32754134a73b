//go:build unix

package restore

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/internal/safefs"
)

// stamped copies a fixture's parts into a DEST of their own and records
// each copy's device and inode, as the state does when a part is proven.
func stamped(t *testing.T, kind string) []Part {
	t.Helper()
	parts := copyParts(t, fixture(t, kind), t.TempDir())
	for i := range parts {
		fi, err := os.Stat(parts[i].Path)
		if err != nil {
			t.Fatal(err)
		}
		s := chunk.StampOf(fi)
		parts[i].Size, parts[i].Dev, parts[i].Ino = s.Size, s.Dev, s.Ino
	}
	return parts
}

// partSwaps put, at a verified part's name, something else holding the
// very same bytes: only the file's identity tells it from the part.
var partSwaps = []struct {
	name   string
	unsafe bool // exit 1 (a link someone made), else exit 3 (replaced)
	swap   func(t *testing.T, p Part, other string)
}{
	{"symlink to a same-size copy", true, func(t *testing.T, p Part, other string) {
		replaceWith(t, p.Path, func(tmp string) error { return os.Symlink(other, tmp) })
	}},
	{"hard link to a same-size copy", true, func(t *testing.T, p Part, other string) {
		replaceWith(t, p.Path, func(tmp string) error { return os.Link(other, tmp) })
	}},
	{"second hard link to the part", true, func(t *testing.T, p Part, other string) {
		if err := os.Link(p.Path, other+".link"); err != nil {
			t.Fatal(err)
		}
	}},
	{"another plain file renamed over it", false, func(t *testing.T, p Part, other string) {
		replaceWith(t, p.Path, func(tmp string) error { return copyFile(other, tmp) })
	}},
}

// replaceWith makes a new file with mk beside path and renames it over
// path, as a program swapping a file in does.
func replaceWith(t *testing.T, path string, mk func(tmp string) error) {
	t.Helper()
	tmp := path + ".swap"
	if err := mk(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// wantPartFileError checks that err stops the restore for part name with
// the exit code's sentinel and the fix.
func wantPartFileError(t *testing.T, err error, name string, unsafe bool) {
	t.Helper()
	var pe *PartFileError
	if !errors.As(err, &pe) || pe.Part != name || pe.Unsafe != unsafe {
		t.Fatalf("want a *PartFileError for %s (unsafe %v), got %T: %v", name, unsafe, err, err)
	}
	if unsafe != errors.Is(err, safefs.ErrUnsafe) || unsafe == errors.Is(err, ErrNotReady) {
		t.Errorf("wrong sentinel for unsafe=%v: %v", unsafe, err)
	}
	if msg := err.Error(); !strings.Contains(msg, name) || !strings.Contains(msg, "haul ") || !strings.Contains(msg, "nothing was restored") {
		t.Errorf("the message does not name the part and the fix: %s", msg)
	}
}

// TestJoinReadsOnlyTheVerifiedFile: a part swapped, after the Join
// checked it, for a link or another file with the same bytes is never
// read: the read that opens it fails naming the part.
func TestJoinReadsOnlyTheVerifiedFile(t *testing.T) {
	for _, tc := range partSwaps {
		t.Run(tc.name, func(t *testing.T) {
			parts := stamped(t, "tar.gz")
			if len(parts) < 2 {
				t.Fatalf("the fixture has %d parts; want several", len(parts))
			}
			j, err := NewJoin(parts)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			victim := parts[1]
			other := filepath.Join(t.TempDir(), "other")
			if err := copyFile(victim.Path, other); err != nil {
				t.Fatal(err)
			}
			tc.swap(t, victim, other)
			_, err = io.Copy(io.Discard, j)
			wantPartFileError(t, err, victim.Name, tc.unsafe)
			if got := j.Pos(); got > j.Start(1) {
				t.Errorf("read %d bytes, past the start of %s at %d", got, victim.Name, j.Start(1))
			}
		})
	}
}

// TestRestoreRefusesSwappedPart: a restore of a set whose part was swapped
// before it started refuses it by name and puts nothing in place.
func TestRestoreRefusesSwappedPart(t *testing.T) {
	for _, tc := range partSwaps {
		t.Run(tc.name, func(t *testing.T) {
			parts := stamped(t, "tar.gz")
			victim := parts[len(parts)-1]
			other := filepath.Join(t.TempDir(), "other")
			if err := copyFile(victim.Path, other); err != nil {
				t.Fatal(err)
			}
			tc.swap(t, victim, other)
			into := filepath.Join(t.TempDir(), "into")
			err := Restore(context.Background(), parts, Options{Into: into})
			wantPartFileError(t, err, victim.Name, tc.unsafe)
			if _, err := os.Lstat(into); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s exists after a refused restore: %v", into, err)
			}
			ents, _ := os.ReadDir(filepath.Dir(into))
			if len(ents) != 0 {
				t.Errorf("left beside the target: %v", ents)
			}
			asm := filepath.Join(t.TempDir(), "joined.tar.gz")
			err = Assemble(context.Background(), parts, asm, nil)
			wantPartFileError(t, err, victim.Name, tc.unsafe)
			if ents, _ := os.ReadDir(filepath.Dir(asm)); len(ents) != 0 {
				t.Errorf("--assemble left %v", ents)
			}
		})
	}
}
