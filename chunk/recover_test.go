package chunk

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An unreadable state is ErrCorruptState, set aside without replacing an
// earlier set-aside copy, and a log whose records do not apply takes
// only the log aside: the snapshot still loads.
func TestRecoverCorruptState(t *testing.T) {
	for name, bad := range map[string]func(b []byte) []byte{
		"cut to half":   func(b []byte) []byte { return b[:len(b)/2] },
		"empty":         func([]byte) []byte { return nil },
		"garbage":       func([]byte) []byte { return bytes.Repeat([]byte{0xfe, 0x01}, 500) },
		"not an object": func([]byte) []byte { return []byte(`[1,2,3]`) },
		"no version":    func([]byte) []byte { return []byte(`{"parts":[]}`) },
		"bad name":      func([]byte) []byte { return []byte(`{"version":2,"parts":[{"name":"a/../../b","status":"verified"}]}`) },
		"twice": func([]byte) []byte {
			return []byte(`{"version":2,"parts":[{"name":"a","status":"pending"},{"name":"a","status":"pending"}]}`)
		},
		"bad status": func([]byte) []byte { return []byte(`{"version":2,"parts":[{"name":"a","status":"done"}]}`) },
	} {
		t.Run(name, func(t *testing.T) {
			dest := t.TempDir()
			if err := Save(dest, helperState()); err != nil {
				t.Fatal(err)
			}
			good, _ := os.ReadFile(StatePath(dest))
			for round := 0; round < 2; round++ {
				if err := os.WriteFile(StatePath(dest), bad(good), 0o600); err != nil {
					t.Fatal(err)
				}
				_, err := Load(dest)
				if !errors.Is(err, ErrCorruptState) || !strings.Contains(err.Error(), "haul fetch SOURCE") {
					t.Fatalf("Load: %v, want ErrCorruptState naming the fix", err)
				}
				note, err := Recover(dest)
				if err != nil || !strings.Contains(note, "state.json was unreadable") {
					t.Fatalf("Recover: %q, %v", note, err)
				}
				if _, err := Load(dest); !errors.Is(err, ErrNoState) {
					t.Fatalf("after Recover, Load: %v, want ErrNoState", err)
				}
				if err := Save(dest, helperState()); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range []string{"state.json.corrupt", "state.json.corrupt.1", "state.log.corrupt", "state.log.corrupt.1"} {
				b, err := os.ReadFile(filepath.Join(dest, StateDir, f))
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				if strings.HasPrefix(f, "state.json") && !bytes.Equal(b, bad(good)) {
					t.Fatalf("%s does not hold the bytes set aside", f)
				}
			}
		})
	}
	t.Run("log record for no part", func(t *testing.T) {
		dest := t.TempDir()
		st := NewStore(dest)
		if err := st.Snapshot(helperState()); err != nil {
			t.Fatal(err)
		}
		if err := st.Append(PieceRecord("no-such-part", 1, sumOf(1))); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if _, err := Load(dest); !errors.Is(err, ErrCorruptState) {
			t.Fatalf("Load: %v, want ErrCorruptState", err)
		}
		note, err := Recover(dest)
		if err != nil || !strings.Contains(note, "state.log was unreadable") {
			t.Fatalf("Recover: %q, %v", note, err)
		}
		if s, err := Load(dest); err != nil || len(s.Parts) != len(helperState().Parts) {
			t.Fatalf("the snapshot does not load after the log was set aside: %v", err)
		}
	})
	t.Run("readable state is left alone", func(t *testing.T) {
		dest := t.TempDir()
		if err := Save(dest, helperState()); err != nil {
			t.Fatal(err)
		}
		if note, err := Recover(dest); note != "" || err != nil {
			t.Fatalf("Recover of a good state: %q, %v", note, err)
		}
	})
}
