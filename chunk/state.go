package chunk

import (
	"crypto/sha256"
	"hash"
	"hash/crc32"
	"time"

	"github.com/haul-dev/haul/integrity"
)

// StateVersion is the format version of state.json.
const StateVersion = 1

// Part statuses, as shown by `haul status` and `haul verify`.
const (
	Pending    = "pending"    // nothing on disk yet
	Partial    = "partial"    // some pieces on disk
	Verified   = "verified"   // complete and proven by at least one reference or structural check
	Unverified = "unverified" // complete, but nothing could prove it
	Broken     = "broken"     // failed a reference after all retries
	Missing    = "missing"    // a reference names it but the source has no such part
)

// State is what DEST/.haul/state.json holds: the set and how far it got.
type State struct {
	Version int `json:"version"`
	// Sources are the SOURCE arguments as given. They may hold secrets
	// (presigned URLs); the file is 0600 and they are never printed.
	Sources   []string  `json:"sources"`
	PieceSize int64     `json:"piece_size"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
	Parts     []*Part   `json:"parts"`
}

// Part is one part of the set and its progress.
type Part struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	// Version is the source's version token (fetch.Object.Version) the
	// bytes on disk belong to.
	Version string    `json:"version"`
	ETag    string    `json:"etag,omitempty"`
	ModTime time.Time `json:"mtime,omitempty"`
	// URL is the part's own address for per-object sources (HTTP). Secret.
	URL string `json:"url,omitempty"`
	// Encoding is a stored Content-Encoding reported by the source.
	Encoding string `json:"encoding,omitempty"`
	// Refs are every reference known for the part.
	Refs []integrity.Reference `json:"refs,omitempty"`
	// Done marks the pieces whose bytes are fsynced in NAME.partial (or NAME).
	Done Bitmap `json:"done"`
	// Hashes are the digests (PieceHash) of each done piece as written,
	// hex; "" where not done.
	Hashes []string `json:"hashes,omitempty"`
	// PieceHash names the digest in Hashes: PieceSHA256 (also "") when
	// the pieces are compared with a manifest's as they land (a manifest
	// and no other whole-part SHA-256 reference, or a repair), else
	// PieceCRC32C, which re-checks local data on resume at a fraction of
	// the CPU.
	PieceHash  string   `json:"piece_hash,omitempty"`
	Status     string   `json:"status"`
	VerifiedBy []string `json:"verified_by,omitempty"`
	Error      string   `json:"error,omitempty"`
	// Attempts counts whole-part re-fetches after a failed verification.
	Attempts int `json:"attempts,omitempty"`
}

// Piece digests for Part.Hashes.
const (
	PieceSHA256 = "sha256"
	PieceCRC32C = "crc32c"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// NewPieceHash returns a hash for the piece digest algo ("" = SHA-256).
func NewPieceHash(algo string) hash.Hash {
	if algo == PieceCRC32C {
		return crc32.New(castagnoli)
	}
	return sha256.New()
}

// Pieces returns how many pieces a part of size bytes has with pieceSize.
func Pieces(size, pieceSize int64) int {
	if size <= 0 {
		return 0
	}
	return int((size + pieceSize - 1) / pieceSize)
}

// PieceRange returns the byte range [off, off+n) of piece i.
func PieceRange(size, pieceSize int64, i int) (off, n int64) {
	off = int64(i) * pieceSize
	n = pieceSize
	if off+n > size {
		n = size - off
	}
	return off, n
}

// Find returns the part called name, or nil.
func (s *State) Find(name string) *Part {
	for _, p := range s.Parts {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// BytesDone is the sum of the sizes of done pieces.
func (p *Part) BytesDone(pieceSize int64) int64 {
	if p.Status == Verified || p.Status == Unverified {
		return p.Size
	}
	var done int64
	for i := 0; i < Pieces(p.Size, pieceSize); i++ {
		if p.Done.Has(i) {
			_, n := PieceRange(p.Size, pieceSize, i)
			done += n
		}
	}
	return done
}

// Complete reports whether the part's bytes are all present on disk
// under their final name.
func (p *Part) Complete() bool { return p.Status == Verified || p.Status == Unverified }
