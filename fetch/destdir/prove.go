// The proof of a part as it completes in a fetch or a repair, and what
// to fetch again when it fails.

package destdir

import (
	"context"
	"slices"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/integrity"
)

// Prove runs the one sequential pass over a complete part file (path),
// with SHA-256 over each byte at most once. hashes are the SHA-256 of its
// pieces (pieceSize bytes each) as they landed, nil when they were not
// taken in SHA-256; setNames are the set's part names (PartNames).
//
//   - A manifest alone: its piece hashes were compared with each piece
//     as it landed (its SHA-256 over the bytes written and fsynced), so
//     they count without being computed again; the pass computes what the
//     other references and the structural checks need, and the CRC-32C.
//   - A manifest beside another whole-part SHA-256 reference (SHA256SUMS,
//     integrity.NeedsWholeSHA256), in a fetch: pieces landed with cheap
//     CRC32C digests (hashes is nil), and the pass proves both references
//     with one whole-part SHA-256. Should it fail, integrity.VerifyFile
//     reads the part again to find the bad pieces, and only those are
//     fetched again. (A repair compares its few pieces on arrival.)
//
// `haul verify` re-reads everything.
func Prove(ctx context.Context, path string, p *chunk.Part, pieceSize int64, hashes []string, setNames []string) integrity.Result {
	refs, proven := proofRefs(p, pieceSize, hashes)
	// The pass runs even when the pieces proved every reference: it
	// computes the CRC-32C restore checks the part against later, and the
	// signature check of the format the name claims.
	checks := Checks(path, p.Name, setNames)
	res := integrity.VerifyFile(ctx, path, p.Name, p.Size, refs, checks)
	res.VerifiedBy = append(proven, res.VerifiedBy...)
	return res
}

// proofRefs are the references the pass over part p computes (the
// strongest), and the labels of those that hashes, the pieces' manifest
// digests as they landed, proved already (nil hashes: none).
func proofRefs(p *chunk.Part, pieceSize int64, hashes []string) (refs []integrity.Reference, proven []string) {
	for _, ref := range p.Refs() {
		if hashes != nil {
			if bad, ok := integrity.PieceMismatches(ref, pieceSize, hashes); ok && len(bad) == 0 {
				proven = append(proven, ref.Label())
				continue
			}
		}
		refs = append(refs, ref)
	}
	return integrity.Strongest(refs, len(proven) > 0), proven
}

// RefetchPieces returns the pieces (of pieceSize bytes, n in all) of a
// part of size bytes to fetch again after a failed proof: those holding
// the bad pieces the proof located, which are counted in pieces of
// badSize bytes (a manifest's, which need not be ours), else all of them.
func RefetchPieces(size, pieceSize int64, n int, bad []int, badSize int64) []int {
	var out []int
	if badSize > 0 && pieceSize > 0 {
		for _, k := range bad {
			off := int64(k) * badSize
			if k < 0 || off >= size {
				continue // beyond the part: the manifest was cut for another size
			}
			end := min(off+badSize, size)
			for i := int(off / pieceSize); i <= int((end-1)/pieceSize) && i < n; i++ {
				out = append(out, i)
			}
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		out = make([]int, n)
		for i := range out {
			out[i] = i
		}
	}
	return out
}
