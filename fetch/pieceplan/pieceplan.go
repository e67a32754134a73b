// Package pieceplan holds the fetch engine's choices about pieces that
// depend on nothing but their inputs: the automatic piece size, and which
// digest each piece gets as it lands.
package pieceplan

import (
	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/integrity"
)

// AutoSize is the piece size when none was asked for: the default
// (max), unless the set is too small to give every connection about four
// pieces — then pieces shrink (to 256 KiB at the least, a multiple of
// 64 KiB), so that a set of parts smaller than 8 MiB does not fetch each
// part on one connection at one connection's cap.
func AutoSize(parts []source.Object, max int64, connections int) int64 {
	var total int64
	for _, o := range parts {
		total += o.Size
	}
	const min, align = 256 << 10, 64 << 10
	ps := total / int64(4*connections) / align * align
	return clamp(ps, min, max)
}

func clamp(v, lo, hi int64) int64 {
	if hi < lo {
		return hi
	}
	return max(lo, min(v, hi))
}

// Digest chooses the digest of each piece as it lands
// (Part.PieceHash), and the manifest's piece hashes to compare it with
// then. SHA-256, compared with the manifest, only when the manifest's
// pieces line up with ours and no other reference states the whole-part
// SHA-256: with one (SHA256SUMS), the proof pass computes that digest
// anyway and proves the manifest with it (fetch's provePart), so SHA-256 pieces
// would be a second pass over every byte; CRC32C is enough to re-check
// the bytes on disk when a run resumes.
//
// A repair keeps SHA-256 pieces with a manifest: it moves few pieces,
// fetch's markBadPieces hashed the others with SHA-256 already, and a piece that
// fails on arrival is read again before the copy counts as bad
// (fetch's fetchPiece), where a failed proof in a repair is final.
func Digest(refs []integrity.Reference, pieceSize int64, n int, repair bool) (algo string, compare []string) {
	compare = Refs(refs, pieceSize, n)
	if compare == nil || (!repair && integrity.NeedsWholeSHA256(refs)) {
		return chunk.PieceCRC32C, nil
	}
	return chunk.PieceSHA256, compare
}

// Refs returns per-piece hashes from a manifest whose pieces line up
// with ours, else nil.
func Refs(refs []integrity.Reference, pieceSize int64, n int) []string {
	for _, r := range refs {
		if r.PieceSize == pieceSize && len(r.Pieces) == n {
			return r.Pieces
		}
	}
	return nil
}
