package chunk

import (
	"bytes"
	"fmt"
	"hash"
	"io"
)

// SamePieceHash reports whether two Part.PieceHash values name the same
// digest ("" is SHA-256).
func SamePieceHash(a, b string) bool {
	norm := func(s string) string {
		if s == "" {
			return PieceSHA256
		}
		return s
	}
	return norm(a) == norm(b)
}

// ResumeDigest reads back the bytes pr says are durable in the piece that
// starts at off of f, and returns their digest in algo, ready to go on
// with the rest of the piece, and whether they still match pr.Sum (one
// read feeds both digests when pr was recorded in another one).
func ResumeDigest(f io.ReaderAt, off int64, pr Progress, algo string, buf []byte) (hash.Hash, bool, error) {
	h := NewPieceHash(algo)
	check, w := h, io.Writer(h)
	if !SamePieceHash(pr.Algo, algo) {
		check = NewPieceHash(pr.Algo)
		w = io.MultiWriter(h, check)
	}
	if _, err := io.CopyBuffer(w, io.NewSectionReader(f, off, pr.Bytes), buf); err != nil {
		return nil, false, fmt.Errorf("read back piece %d: %w", pr.Piece, err)
	}
	return h, bytes.Equal(check.Sum(nil), pr.Sum), nil
}
