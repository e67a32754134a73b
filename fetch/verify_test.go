package fetch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/haul-dev/haul/chunk"
)

// TestVerifyParallel: verify reads parts concurrently, yet reports each
// part in set order with its own verdict (damage on disk in two of six
// parts), and stops when interrupted without recording half a verdict.
func TestVerifyParallel(t *testing.T) {
	src, dest := t.TempDir(), t.TempDir()
	parts := makeSet(t, src, "db.tar.zst", 6, 200_000)
	writeSums(t, src, parts)
	opts := testOptions(filepath.Join(src, "db.tar.zst"), dest)
	if _, err := Fetch(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	names := []string{"db.tar.zst", "db.tar.zst.1", "db.tar.zst.2", "db.tar.zst.3", "db.tar.zst.4", "db.tar.zst.5"}
	rotten := map[string]bool{"db.tar.zst.1": true, "db.tar.zst.4": true}
	for n := range rotten {
		b := append([]byte(nil), parts[n]...)
		b[len(b)/3] ^= 1
		if err := os.WriteFile(filepath.Join(dest, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Verify(ctx, opts); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted verify: %v, want ErrInterrupted", err)
	}
	if st, err := chunk.Load(dest); err != nil || st.Find("db.tar.zst.1").Status != chunk.Verified {
		t.Fatalf("an interrupted verify changed the state: %v", err)
	}

	rep, err := Verify(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || len(rep.Parts) != len(names) {
		t.Fatalf("ok=%v with %d parts, want not ok with %d", rep.OK, len(rep.Parts), len(names))
	}
	for i, pc := range rep.Parts {
		want := chunk.Verified
		if rotten[names[i]] {
			want = chunk.Broken
		}
		if pc.Name != names[i] || pc.Status != want {
			t.Errorf("part %d: %s is %s (%s), want %s %s", i, pc.Name, pc.Status, pc.Error, names[i], want)
		}
		if _, err := os.Stat(filepath.Join(dest, names[i])); (err == nil) != (want == chunk.Verified) {
			t.Errorf("part %s (%s) final name present: %v", names[i], want, err == nil)
		}
	}
}
