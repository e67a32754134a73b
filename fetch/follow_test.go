package fetch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/destdir"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/source/open"
)

// lastHeld holds the read of a part's last piece until the engine proves
// the part while it comes and that proof has read some of it: the last
// byte then lands after the proof began, as on any link slower than the
// disk.
type lastHeld struct {
	source.Source
	e      *engine
	last   int64 // offset of the last piece
	proved int64 // bytes the follower had read when the last piece was asked for
}

func (s *lastHeld) ReadRange(ctx context.Context, obj source.Object, off, n int64) (io.ReadCloser, error) {
	if off == s.last {
		for i := 0; i < 5000 && s.proved == 0; i++ {
			s.e.mu.Lock()
			if fw := s.e.runs[0].follow; fw != nil {
				s.proved = fw.Read()
			}
			s.e.mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}
	return s.Source.ReadRange(ctx, obj, off, n)
}

// damaged flips the byte at offset at in the first times reads that
// cover it.
type damaged struct {
	source.Source
	mu    sync.Mutex
	at    int64
	times int
}

func (d *damaged) ReadRange(ctx context.Context, obj source.Object, off, n int64) (io.ReadCloser, error) {
	rc, err := d.Source.ReadRange(ctx, obj, off, n)
	d.mu.Lock()
	hit := err == nil && d.at >= off && d.at < off+n && d.times > 0
	if hit {
		d.times--
	}
	d.mu.Unlock()
	if !hit {
		return rc, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	b[d.at-off] ^= 0x10
	return io.NopCloser(bytes.NewReader(b)), nil
}

// followedRun fetches dir (one part of size bytes, pieces of 1 MiB) into
// dest with src wrapped by wrap, and returns the engine after the run.
func followedRun(t *testing.T, dir, dest string, wrap func(source.Source, *engine) source.Source) *engine {
	t.Helper()
	opts := testOptions(dir, dest)
	opts.PieceSize = 1 << 20
	opts.Retries = 2
	opts.Progress = &recorder{}
	opts.defaults()
	op, err := open.Open(context.Background(), dir, source.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := &engine{opts: &opts}
	e.src = wrap(op.Source, e)
	if err := e.prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestFollowedPartProven: a part of destdir.FollowMin bytes or more is
// proven while it comes — the proof has read part of it before its last
// piece is even asked for — and ends proven by SHA256SUMS, byte-identical.
// A byte damaged on the way fails that proof; the part is fetched again
// and proven. Damaged on every read, it ends broken by the SHA-256
// mismatch and never under its final name.
func TestFollowedPartProven(t *testing.T) {
	src := t.TempDir()
	const name = "vm.img"
	size := int(destdir.FollowMin + 5<<20 + 123)
	parts := makeSet(t, src, name, 1, size)
	writeSums(t, src, parts)
	last := int64(size) / (1 << 20) << 20

	dest := t.TempDir()
	var held *lastHeld
	e := followedRun(t, src, dest, func(s source.Source, e *engine) source.Source {
		held = &lastHeld{Source: s, e: e, last: last}
		return held
	})
	if held.proved <= 0 {
		t.Fatal("the proof had read nothing of the part when its last piece was asked for")
	}
	assertSet(t, dest, parts)
	if p := e.st.Find(name); p.Status != chunk.Verified || !slices.Equal(p.VerifiedBy, []string{"sha256:SHA256SUMS"}) {
		t.Fatalf("%s: %s by %v, want verified by sha256:SHA256SUMS", name, p.Status, p.VerifiedBy)
	}

	for _, always := range []bool{false, true} {
		dest := t.TempDir()
		e := followedRun(t, src, dest, func(s source.Source, _ *engine) source.Source {
			d := &damaged{Source: s, at: int64(size) / 2, times: 1}
			if always {
				d.times = 1 << 40
			}
			return d
		})
		p := e.st.Find(name)
		_, statErr := os.Stat(filepath.Join(dest, name))
		if !always {
			if p.Status != chunk.Verified {
				t.Fatalf("damaged once: %s (%s), want verified after a fetch again", p.Status, p.Error)
			}
			assertSet(t, dest, parts)
			continue
		}
		if p.Status != chunk.Broken || !strings.Contains(p.Error, "sha256:SHA256SUMS mismatch") || !errors.Is(statErr, os.ErrNotExist) {
			t.Fatalf("damaged always: %s (%s), final name: %v; want broken by the SHA-256 and no final name", p.Status, p.Error, statErr)
		}
	}
}
