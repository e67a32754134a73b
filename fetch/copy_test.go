package fetch

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/source"
)

// refusing hands out readers whose kernel copy moves one small stretch
// and is then refused (source.FileCopier), as when the kernel cannot copy
// between the source's and DEST's file systems.
type refusing struct {
	source.Source
	copied, refused atomic.Int64
}

type refusingReader struct {
	io.ReadCloser
	s     *refusing
	calls int
}

func (s *refusing) ReadRange(ctx context.Context, obj source.Object, off, n int64) (io.ReadCloser, error) {
	rc, err := s.Source.ReadRange(ctx, obj, off, n)
	if err != nil {
		return nil, err
	}
	return &refusingReader{ReadCloser: rc, s: s}, nil
}

func (r *refusingReader) CopyTo(dst *os.File, off int64, n int) (int, error) {
	if r.calls++; r.calls > 1 {
		r.s.refused.Add(1)
		return 0, errors.ErrUnsupported
	}
	k, err := r.ReadCloser.(source.FileCopier).CopyTo(dst, off, min(n, 10_000))
	r.s.copied.Add(int64(k))
	return k, err
}

// TestKernelCopyThenRead: from a local source the bytes of each piece go
// into the part file inside the kernel; when the kernel refuses part-way,
// the rest of the piece is read through memory from where the copy
// stopped. The part ends identical, proven, and pulled once: no byte is
// read twice and none is skipped.
func TestKernelCopyThenRead(t *testing.T) {
	src := t.TempDir()
	const name = "db.tar.gz"
	size := 3<<20 + 20_123 // every piece longer than the stretch copied
	parts := makeSet(t, src, name, 1, size)
	writeSums(t, src, parts)
	dest := t.TempDir()
	var s *refusing
	e := followedRun(t, src, dest, func(inner source.Source, _ *engine) source.Source {
		s = &refusing{Source: inner}
		return s
	})
	assertSet(t, dest, parts)
	if p := e.st.Find(name); p.Status != chunk.Verified || !slices.Equal(p.VerifiedBy, []string{"sha256:SHA256SUMS"}) {
		t.Fatalf("%s: %s by %v, want verified by sha256:SHA256SUMS", name, p.Status, p.VerifiedBy)
	}
	pieces := int64(chunk.Pieces(int64(size), 1<<20))
	if s.copied.Load() != pieces*10_000 || s.refused.Load() != pieces {
		t.Fatalf("the kernel copied %d bytes and refused %d times; want %d and %d (each piece begun by a copy, then read)", s.copied.Load(), s.refused.Load(), pieces*10_000, pieces)
	}
	if got := e.pulled.Load(); got != int64(size) {
		t.Fatalf("pulled %d bytes for a part of %d", got, size)
	}
}
