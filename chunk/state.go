package chunk

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"time"

	"github.com/haul-dev/haul/integrity"
)

// StateVersion is the format version of state.json this haul writes:
// 2 has binary piece digests, in-piece progress and the generation that
// ties state.log to it. Version 1 files (hex digests, no log) still load.
const StateVersion = 2

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
	// Gen numbers the snapshots: state.log applies to the snapshot of
	// its own generation only (store.go).
	Gen   uint64  `json:"gen,omitempty"`
	Parts []*Part `json:"parts"`
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
	// Hashes are the digests (PieceHash) of each done piece as written.
	Hashes Digests `json:"hashes,omitzero"`
	// Partial is how far each unfinished piece durably got, so that a
	// resumed piece continues there rather than from its start.
	Partial []Progress `json:"partial,omitempty"`
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
	// Dev, Ino, MtimeNS and DiskSize are the part file as it was when it
	// was last proven (Stamp): a file that stats the same still holds the
	// proven bytes, so a verdict costs one stat; one that differs is
	// proven again by its content before it counts.
	Dev      uint64 `json:"dev,omitempty"`
	Ino      uint64 `json:"ino,omitempty"`
	MtimeNS  int64  `json:"mtime_ns,omitempty"`
	DiskSize int64  `json:"disk_size,omitempty"`
	// CRC32C is the CRC-32C (Castagnoli, hex) of the whole part as it was
	// proven. Restore computes it over the bytes it reads and stops on a
	// difference: it guards against change after proof, at a fraction of
	// a SHA-256's cost.
	CRC32C string `json:"crc32c,omitempty"`
	// SetCRC is the CRC-32C of the copy a failed decode of the whole set
	// discarded (the part was one of its suspects): a copy fetched again
	// with the same digest is what the source holds, and fetching it once
	// more cannot cure the set.
	SetCRC string `json:"set_crc,omitempty"`
	// Found says the part's bytes were found in DEST rather than fetched
	// under this state (the state was rebuilt): they count only when a
	// reference or a check proves them, else they are fetched again.
	Found bool `json:"found,omitempty"`
}

// Stamp is what a stat says about a part file: enough to tell that the
// file was replaced (another inode), rewritten (mtime) or cut (size).
type Stamp struct {
	Size     int64
	Dev, Ino uint64
	MtimeNS  int64
}

// StampOf returns the stamp of a file's FileInfo (from os.Stat).
func StampOf(fi os.FileInfo) Stamp {
	s := Stamp{Size: fi.Size(), MtimeNS: fi.ModTime().UnixNano()}
	s.Dev, s.Ino = devIno(fi)
	return s
}

// Stamp returns the stamp recorded when the part was last proven; the
// zero Stamp when none was.
func (p *Part) Stamp() Stamp {
	return Stamp{Size: p.DiskSize, Dev: p.Dev, Ino: p.Ino, MtimeNS: p.MtimeNS}
}

// SetProof records the file a part was proven in and its CRC-32C.
func (p *Part) SetProof(s Stamp, crc string) {
	p.DiskSize, p.Dev, p.Ino, p.MtimeNS, p.CRC32C = s.Size, s.Dev, s.Ino, s.MtimeNS, crc
}

// ClearProof forgets the recorded file and digest: the bytes are no
// longer the proven ones.
func (p *Part) ClearProof() { p.SetProof(Stamp{}, "") }

// Progress says that the first Bytes bytes of a piece are fsynced in the
// part file, and Sum is their digest in Algo (a PieceHash value): a
// resumed piece re-reads them, checks Sum and goes on from there.
type Progress struct {
	Piece int    `json:"piece"`
	Bytes int64  `json:"bytes"`
	Algo  string `json:"algo,omitempty"`
	Sum   []byte `json:"sum"`
}

// ProgressOf returns the progress recorded for piece i.
func (p *Part) ProgressOf(i int) (Progress, bool) {
	for _, pr := range p.Partial {
		if pr.Piece == i {
			return pr, true
		}
	}
	return Progress{}, false
}

// SetProgress records pr, replacing what piece pr.Piece had; zero bytes
// forget the piece's progress.
func (p *Part) SetProgress(pr Progress) {
	for k := range p.Partial {
		if p.Partial[k].Piece == pr.Piece {
			if pr.Bytes <= 0 {
				p.Partial = append(p.Partial[:k], p.Partial[k+1:]...)
			} else {
				p.Partial[k] = pr
			}
			return
		}
	}
	if pr.Bytes > 0 {
		p.Partial = append(p.Partial, pr)
	}
}

// SetPiece records piece i (of n) as durable with digest sum.
func (p *Part) SetPiece(i, n int, sum []byte) {
	p.Done.Set(i)
	p.Hashes.Set(i, n, sum)
	p.SetProgress(Progress{Piece: i})
}

// ClearPiece forgets piece i: its bytes must be fetched again.
func (p *Part) ClearPiece(i int) {
	p.Done.Clear(i)
	p.Hashes.Clear(i)
	p.SetProgress(Progress{Piece: i})
}

// ResetPieces forgets every piece and all progress inside pieces.
func (p *Part) ResetPieces() {
	p.Done, p.Partial, p.Found = nil, nil, false
	p.Hashes.Reset()
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

// BytesDone is the sum of the sizes of done pieces and of the durable
// progress inside unfinished ones.
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
	for _, pr := range p.Partial {
		if !p.Done.Has(pr.Piece) {
			done += pr.Bytes
		}
	}
	return done
}

// Complete reports whether the part's bytes are all present on disk
// under their final name.
func (p *Part) Complete() bool { return p.Status == Verified || p.Status == Unverified }

// Unchanged reports whether fi, the stat of p's file, is the file p was
// proven in: same size, device, inode and mtime, with a digest recorded.
func (p *Part) Unchanged(fi os.FileInfo) bool {
	return p.CRC32C != "" && fi.Mode().IsRegular() && StampOf(fi) == p.Stamp()
}

// FileCRC32C returns the CRC-32C (hex) of the file at path, read in one
// sequential pass; it stops with ctx's error when ctx ends.
func FileCRC32C(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close() // read-only
	h := crc32.New(castagnoli)
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			return fmt.Sprintf("%08x", h.Sum32()), nil
		}
		if err != nil {
			return "", err
		}
	}
}

// Clone returns a copy of p that shares no piece bookkeeping with it, for
// a record encoded while p goes on changing.
func (p *Part) Clone() *Part {
	cp := *p
	cp.Done = slices.Clone(p.Done)
	cp.Hashes = p.Hashes.Clone()
	cp.Partial = slices.Clone(p.Partial)
	return &cp
}

// Kept returns the durable bytes of the parts not yet complete, and how
// many of them are progress inside unfinished pieces: what a stopped run
// leaves for the next, which pulls none of it again.
func (s *State) Kept() (kept, inPieces int64) {
	for _, p := range s.Parts {
		if p.Complete() {
			continue
		}
		kept += p.BytesDone(s.PieceSize)
		for _, pr := range p.Partial {
			if !p.Done.Has(pr.Piece) {
				inPieces += pr.Bytes
			}
		}
	}
	return kept, inPieces
}
