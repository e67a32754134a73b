package fetch

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/haul-dev/haul/internal/testenv"
)

// TestReferenceFilesReadInRanges: a manifest of several KiB is read over
// several connections at once, in ranges, before the parts; the set is
// proven by it.
func TestReferenceFilesReadInRanges(t *testing.T) {
	src, dest := t.TempDir(), t.TempDir()
	parts := makeSet(t, src, "db.dump", 3, 1<<20)
	writeSums(t, src, parts)
	writeManifestFile(t, src, 16<<10) // 64 pieces a part: a manifest of about 13 KB
	s, e := runSlow(t, src, dest, -1)
	assertSet(t, dest, parts)
	if sum := e.summary(); sum.Verified != 3 {
		t.Fatalf("verified %d parts, want 3", sum.Verified)
	}
	var ranges int
	for _, r := range s.ranges[:min(len(s.ranges), 10)] {
		if r[1] < 16<<10 {
			ranges++
		}
	}
	if ranges < 4 {
		t.Fatalf("the first requests were %v: want the manifest read in ranges on several connections", s.ranges[:min(len(s.ranges), 10)])
	}
	for _, p := range e.st.Parts {
		if len(p.VerifiedBy) < 2 {
			t.Fatalf("part %s verified by %v: want SHA256SUMS and the manifest", p.Name, p.VerifiedBy)
		}
	}
}

// TestReferenceFilesServerIgnoresRange: a server that answers every range
// of the manifest with the whole file: the manifest is read whole and
// still proves the set.
func TestReferenceFilesServerIgnoresRange(t *testing.T) {
	src, dest := t.TempDir(), t.TempDir()
	parts := makeSet(t, src, "db.dump", 2, 300_000)
	writeManifestFile(t, src, 4<<10)
	// A manifest named for the first part is found beside its URL.
	if err := os.Rename(filepath.Join(src, "set.haul.json"), filepath.Join(src, "db.dump.haul.json")); err != nil {
		t.Fatal(err)
	}
	srv := testenv.NewFaultServer(src, testenv.IgnoreRange(testenv.When{Name: "db.dump.haul.json"}))
	defer srv.Close()
	opts := testOptions(srv.URL("db.dump"), dest)
	opts.Open.ProbeParts = true
	opts.Connections = 8
	sum, err := Fetch(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	assertSet(t, dest, parts)
	if sum.Verified != 2 {
		t.Fatalf("verified %d parts, want 2", sum.Verified)
	}
	if f := srv.Faults(); f.IgnoredRange < 2 {
		t.Fatalf("the server ignored %d range requests of the manifest: the ranged read was not tried", f.IgnoredRange)
	}
}
