package fetch

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/source/open"
)

// slowSource serves a real source through slow reads (small chunks with
// a pause), records every range asked for, and flips the byte at flipAt
// the first time a read delivers it (when flipAt >= 0).
type slowSource struct {
	source.Source
	mu     sync.Mutex
	ranges [][2]int64
	flipAt int64
}

func (s *slowSource) ReadRange(ctx context.Context, obj source.Object, off, n int64) (io.ReadCloser, error) {
	rc, err := s.Source.ReadRange(ctx, obj, off, n)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.ranges = append(s.ranges, [2]int64{off, n})
	s.mu.Unlock()
	return &slowReader{s: s, rc: rc, pos: off}, nil
}

type slowReader struct {
	s   *slowSource
	rc  io.ReadCloser
	pos int64 // offset in the object of the next byte
}

func (r *slowReader) Read(p []byte) (int, error) {
	time.Sleep(10 * time.Millisecond) // about 400 KB/s per connection
	n, err := r.rc.Read(p[:min(len(p), 4<<10)])
	r.s.mu.Lock()
	if at := r.s.flipAt; at >= r.pos && at < r.pos+int64(n) {
		p[at-r.pos] ^= 0x01
		r.s.flipAt = -1
	}
	r.s.mu.Unlock()
	r.pos += int64(n)
	return n, err
}

func (r *slowReader) Close() error { return r.rc.Close() }

// runSlow fetches dir's part through a slowSource with 8 connections and
// 256 KiB pieces and returns the source and the engine after the run.
func runSlow(t *testing.T, dir, dest string, flipAt int64) (*slowSource, *engine) {
	t.Helper()
	opts := testOptions(dir, dest)
	opts.Connections = 8
	opts.PieceSize = 256 << 10
	opts.Progress = &recorder{}
	opts.defaults()
	op, err := open.Open(context.Background(), dir, source.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	src := &slowSource{Source: op.Source, flipAt: flipAt}
	e := &engine{opts: &opts, src: src}
	if err := e.prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return src, e
}

// TestEndgameSplitsLastPieces: a part of 4 pieces fetched with 8
// connections. Once every piece is handed out, the idle connections take
// the second halves of the pieces in flight (ranges that do not start at
// a piece boundary), the part ends byte-identical and proven, and the
// bytes dropped at the split points stay small.
func TestEndgameSplitsLastPieces(t *testing.T) {
	for _, manifest := range []bool{false, true} {
		t.Run(map[bool]string{false: "sums", true: "manifest"}[manifest], func(t *testing.T) {
			src, dest := t.TempDir(), t.TempDir()
			parts := makeSet(t, src, "db.dump", 1, 1<<20)
			writeSums(t, src, parts)
			if manifest {
				writeManifestFile(t, src, 256<<10)
			}
			s, e := runSlow(t, src, dest, -1)
			assertSet(t, dest, parts)
			if sum := e.summary(); sum.Verified != 1 {
				t.Fatalf("verified %d parts, want 1", sum.Verified)
			}
			split := 0
			for _, r := range s.ranges {
				if r[0]%(256<<10) != 0 {
					split++
				}
			}
			if split < 4 {
				t.Fatalf("%d ranges start inside a piece (%v); want the 4 idle connections to take halves", split, s.ranges)
			}
			if over := e.pulled.Load() - 1<<20; over < 0 || over > int64(len(s.ranges))*4<<10 {
				t.Fatalf("pulled %d bytes for a part of %d: %d over, more than one read per request", e.pulled.Load(), 1<<20, over)
			}
		})
	}
}

// TestEndgameSplitPieceDamaged: a byte flipped in the second half of a
// split piece. The piece's digest, read back from the file once both
// halves are written, fails the manifest; that piece alone is fetched
// again, whole, and the part ends identical.
func TestEndgameSplitPieceDamaged(t *testing.T) {
	src, dest := t.TempDir(), t.TempDir()
	parts := makeSet(t, src, "db.dump", 1, 1<<20)
	writeManifestFile(t, src, 256<<10)
	at := int64(3<<18 + 250<<10) // near the end of piece 3: in a stolen half
	s, e := runSlow(t, src, dest, at)
	assertSet(t, dest, parts)
	p := e.st.Find("db.dump")
	if p.Status != chunk.Verified {
		t.Fatalf("status %s (%s), want verified", p.Status, p.Error)
	}
	if s.flipAt != -1 {
		t.Fatal("no read covered the byte to damage")
	}
	if over := e.pulled.Load() - 1<<20; over < 256<<10 || over > 256<<10+int64(len(s.ranges))*4<<10 {
		t.Fatalf("pulled %d bytes: want the part and the damaged piece once more (plus a read per request)", e.pulled.Load())
	}
	// The retry line names the part and the piece once each.
	rec := e.opts.Progress.(*recorder)
	var retries []string
	for _, ev := range rec.events {
		if ev.Kind == chunk.EventRetry {
			retries = append(retries, ev.Message)
		}
	}
	want := "db.dump piece 3: does not match the manifest; retrying (1/"
	if len(retries) != 1 || !strings.HasPrefix(retries[0], want) || strings.Count(retries[0], "db.dump") != 1 {
		t.Fatalf("retry lines %q, want one that starts %q and names the part once", retries, want)
	}
}

func writeManifestFile(t *testing.T, dir string, pieceSize int64) {
	t.Helper()
	var b bytes.Buffer
	if err := WriteManifest(context.Background(), dir, source.OpenOptions{}, pieceSize, &b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "set.haul.json"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSplitKeep: a split leaves the owner the bytes it delivers while the
// new span delivers the rest, so a slow mirror's span does not end last.
func TestSplitKeep(t *testing.T) {
	for _, tc := range []struct {
		owner, fastest float64
		want           int64
	}{
		{0, 100, 500},        // owner not measured yet: half
		{100, 100, 500},      // equals: half
		{100, 0, 500},        // nothing faster: half
		{10, 90, 100},        // a tenth of the rate: a tenth of the bytes
		{1, 1000, 1000 / 16}, // at least a sixteenth
	} {
		if got := splitKeep(1000, tc.owner, tc.fastest); got != tc.want {
			t.Errorf("splitKeep(1000, %v, %v) = %d, want %d", tc.owner, tc.fastest, got, tc.want)
		}
	}
}

// TestStealSpans: the endgame splits a span of a slow copy even when few
// bytes are left, if it still needs a long while (a mirror at 8 KB/s
// holding 6 KiB would end the run a second late), but not a small span
// that ends soon, a span still waiting for its answer, or one whose read
// must not be split (an SFTP copy).
func TestStealSpans(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name    string
		left    int64
		rate    float64 // bytes per second it has shown
		waiting bool
		noSplit bool
		want    bool
	}{
		{"small and slow", 6 << 10, 8_000, false, false, true},
		{"small and quick", 6 << 10, 1 << 20, false, false, false},
		{"large", 200 << 10, 100_000, false, false, true},
		{"waiting for its answer", 200 << 10, 100_000, true, false, false},
		{"read from an SFTP copy", 200 << 10, 100_000, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := newSpan(0, 256<<10)
			age := 2 * time.Second
			sp.start, sp.from = now.Add(-age), 0
			sp.pos = int64(tc.rate * age.Seconds())
			sp.end = sp.pos + tc.left
			sp.waiting = tc.waiting
			sp.noSplit = tc.noSplit
			fl := &flight{off: 0, n: 256 << 10, spans: []*span{sp}, head: sp}
			r := &partRun{p: &chunk.Part{Name: "a", Size: 256 << 10, Status: chunk.Partial}, n: 1, flights: map[int]*flight{0: fl}}
			e := &engine{opts: &Options{}, src: &slowSource{}, flying: map[*partRun]bool{r: true}}
			e.answer = time.Millisecond
			j, ok, busy := e.steal()
			if ok != tc.want {
				t.Fatalf("steal = %v, want %v", ok, tc.want)
			}
			if tc.waiting && !busy {
				t.Fatal("a span waiting for its answer does not keep idle workers looking")
			}
			if ok && j.sp.pos != sp.end {
				t.Fatalf("the new span [%d, %d) does not start where the owner's now ends (%d)", j.sp.pos, j.sp.end, sp.end)
			}
		})
	}
}

// TestSpanAnsweredRate: the time a span waited for a connection or an
// answer is not counted in its rate.
func TestSpanAnsweredRate(t *testing.T) {
	sp := newSpan(0, 1<<20)
	sp.start = time.Now().Add(-10 * time.Second) // waited 10 s for a free connection
	sp.answered(false)
	sp.pos = 100_000
	sp.start = sp.start.Add(-time.Second) // then moved 100 000 bytes in a second
	if r := sp.rate(time.Now(), 0); r < 90_000 || r > 110_000 {
		t.Fatalf("rate %.0f B/s, want about 100 000 (the wait before the answer counted)", r)
	}
}
