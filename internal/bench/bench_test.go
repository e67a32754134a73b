package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haul-dev/haul/fetch"
	"github.com/haul-dev/haul/internal/units"
)

// TestSmoke runs the harness end to end on a tiny set in a few seconds:
// haul over a fast link with resets and a bit flip must come out
// identical, pulling little more than the set, and the report must print.
// The full scenarios are run by hand with haulbench (BENCHMARKS.md).
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds haul")
	}
	ctx := context.Background()
	work := t.TempDir()
	bin := filepath.Join(work, "haul")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/haul-dev/haul/cmd/haul").CombinedOutput(); err != nil {
		t.Fatalf("build haul: %v\n%s", err, out)
	}
	s, err := NetSet(ctx, work, "net", 1<<20, 6, 64<<10, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Parts) < 6 {
		t.Fatalf("%d parts, want at least 6", len(s.Parts))
	}
	link := Link{ConnRate: 4 << 20, ResetProb: 0.2, ResetAfter: 16 << 10, Flips: 1, Seed: 1}
	res := FetchOnce(ctx, Haul(bin, 4, 64<<10), s, link, work, time.Minute, "")
	if !res.Identical() {
		t.Fatalf("haul: not identical: %v %s\n%s", res.Err, res.Diff, res.Tail)
	}
	if res.Faults.Flips != 1 {
		t.Errorf("the link flipped %d bytes, want 1", res.Faults.Flips)
	}
	// The set, the reference files, and the one damaged piece again.
	if limit := s.Size + 64<<10 + 64<<10; res.Pulled > limit {
		t.Errorf("pulled %d bytes for a set of %d, want at most %d", res.Pulled, s.Size, limit)
	}
	if res.MaxRSS <= 0 || res.Wall <= 0 {
		t.Errorf("no rusage: %+v", res.Proc)
	}
	st := &stats{tool: "haul", verifies: true}
	st.add(res)
	rep := &Report{Name: "smoke", Tables: []Table{fetchTable("t", setNote(s, link, 1), s, link, []*stats{st})}}
	var b bytes.Buffer
	rep.WriteText(&b)
	rep.WriteMarkdown(&b)
	if !strings.Contains(b.String(), "haul (verified)") {
		t.Errorf("report lacks the haul row:\n%s", b.String())
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := Median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestSameFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	big := bytes.Repeat([]byte("haul"), 600_000)
	a := write("a", big)
	flipped := bytes.Clone(big)
	flipped[2_000_001] ^= 4
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"same", big, ""},
		{"flip", flipped, "differs at byte 2000001"},
		{"short", big[:len(big)-1], "size differs"},
		{"long", append(bytes.Clone(big), 0), "size differs"},
	} {
		got := sameFile(a, write(c.name, c.b))
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// benchSet makes a split tar.gz of $HAULBENCH_SIZE (default 512M) for the
// profiling benchmarks below.
func benchSet(b *testing.B) *Set {
	b.Helper()
	size := int64(512 << 20)
	if v := os.Getenv("HAULBENCH_SIZE"); v != "" {
		n, err := units.ParseSize(v)
		if err != nil {
			b.Fatalf("HAULBENCH_SIZE: %v", err)
		}
		size = n
	}
	s, err := BigSet(context.Background(), b.TempDir(), "set", size, max(size/8, 1<<20), 8<<20, 1)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkFetchLocal is haul's fetch engine in-process from a local
// directory (the source that costs least), for CPU profiles of what
// hashing and bookkeeping cost:
//
//	go test ./internal/bench -run '^$' -bench FetchLocal -benchtime 3x -cpuprofile cpu.out
func BenchmarkFetchLocal(b *testing.B) {
	s := benchSet(b)
	b.SetBytes(s.Size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dest := filepath.Join(b.TempDir(), "dest"+strconv.Itoa(i))
		if _, err := fetch.Fetch(context.Background(), fetch.Options{Sources: []string{s.Dir}, Dest: dest}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is `haul verify` in-process on a fetched set.
func BenchmarkVerify(b *testing.B) {
	s := benchSet(b)
	dest := filepath.Join(b.TempDir(), "dest")
	if _, err := fetch.Fetch(context.Background(), fetch.Options{Sources: []string{s.Dir}, Dest: dest}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(s.Size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := fetch.Verify(context.Background(), fetch.Options{Dest: dest})
		if err != nil {
			b.Fatal(err)
		}
		if !rep.OK {
			b.Fatalf("verify: %+v", rep)
		}
	}
}
