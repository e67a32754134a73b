package chunk

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
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

// Part is one part of the set and its progress. It is held for every
// part of a set, 100,000 of them and more, so what most parts never have
// (an address, an encoding, progress inside pieces, retries, a set
// check's digest, a version token that the part's ETag or mtime does not
// already say) lives out of line, behind accessors, and costs nothing
// when absent: the struct is 256 bytes where it was 408. state.json keeps
// the same fields (partjson.go).
type Part struct {
	Name string
	Size int64
	// ETag and the modification time (ModTime) are those the source
	// listed for the bytes on disk.
	ETag  string
	mtime int64 // ModTime in Unix nanoseconds; 0 when zero or kept in partExtra
	// refs are every reference known for the part (Refs, refs.go).
	refs []byte
	// Done marks the pieces whose bytes are fsynced in NAME.partial (or NAME).
	Done Bitmap
	// Hashes are the digests (PieceHash) of each done piece as written.
	Hashes Digests
	// PieceHash names the digest in Hashes: PieceSHA256 (also "") when
	// the pieces are compared with a manifest's as they land (a manifest
	// and no other whole-part SHA-256 reference, or a repair), else
	// PieceCRC32C, which re-checks local data on resume at a fraction of
	// the CPU.
	PieceHash  string
	Status     string
	VerifiedBy []string
	Error      string
	// Dev, Ino, MtimeNS and DiskSize are the part file as it was when it
	// was last proven (Stamp): a file that stats the same still holds the
	// proven bytes, so a verdict costs one stat; one that differs is
	// proven again by its content before it counts.
	Dev      uint64
	Ino      uint64
	MtimeNS  int64
	DiskSize int64
	// CRC32C is the CRC-32C (Castagnoli, hex) of the whole part as it was
	// proven. Restore computes it over the bytes it reads and stops on a
	// difference: it guards against change after proof, at a fraction of
	// a SHA-256's cost.
	CRC32C string

	x *partExtra // nil while the part has none of it
}

// partExtra is what few parts have.
type partExtra struct {
	// version is the source's version token (source.Object.Version) the
	// bytes on disk belong to, when it is not the one the part's ETag,
	// ModTime and Size make (derivedVersion).
	version string
	// url is the part's own address for per-object sources (HTTP). Secret.
	url string
	// encoding is a stored Content-Encoding reported by the source.
	encoding string
	// partial is how far each unfinished piece durably got, so that a
	// resumed piece continues there rather than from its start.
	partial []Progress
	// attempts counts whole-part re-fetches after a failed verification.
	attempts int
	// setCRC is the CRC-32C of the copy a failed decode of the whole set
	// discarded (the part was one of its suspects): a copy fetched again
	// with the same digest is what the source holds, and fetching it once
	// more cannot cure the set.
	setCRC string
	// refs are the references refs cannot say in a few bytes.
	refs []integrity.Reference
	// mtime is a modification time Unix nanoseconds cannot hold.
	mtime time.Time
	// found says the part's bytes were found in DEST rather than fetched
	// under this state (the state was rebuilt): they count only when a
	// reference or a check proves them, else they are fetched again.
	found bool
}

// extra returns p's out-of-line fields, making them when wanted is set;
// nil otherwise when there are none.
func (p *Part) extra(want bool) *partExtra {
	if p.x == nil && want {
		p.x = &partExtra{}
	}
	return p.x
}

// tidy drops the out-of-line fields when none is set any more.
func (p *Part) tidy() {
	if x := p.x; x != nil && x.version == "" && x.url == "" && x.encoding == "" && len(x.partial) == 0 &&
		x.attempts == 0 && x.setCRC == "" && !x.found && len(x.refs) == 0 && x.mtime.IsZero() {
		p.x = nil
	}
}

// VersionToken is the version of an object listed with etag, mtime and
// size (source.Object.Version): its ETag when it has one, else its
// modification time and size.
func VersionToken(etag string, mtime time.Time, size int64) string {
	if etag != "" {
		return "etag:" + etag
	}
	return "mtime:" + mtime.UTC().Format(time.RFC3339Nano) + ",size:" + strconv.FormatInt(size, 10)
}

// derivedVersion is the VersionToken of p's ETag, ModTime and Size; "" for
// a part that has neither an ETag nor a ModTime (one created before its
// source was listed: its version is unknown, and matches none).
func (p *Part) derivedVersion() string {
	if p.ETag == "" && p.ModTime().IsZero() {
		return ""
	}
	return VersionToken(p.ETag, p.ModTime(), p.Size)
}

// epochNS stands for a modification time of exactly 1970-01-01T00:00:00Z
// in Part.mtime, where 0 is the zero time.
const epochNS = math.MinInt64

// ModTime is the modification time the source listed for the bytes on
// disk, in UTC; the zero time when none is known.
func (p *Part) ModTime() time.Time {
	switch p.mtime {
	case 0:
		if p.x != nil {
			return p.x.mtime
		}
		return time.Time{}
	case epochNS:
		return time.Unix(0, 0).UTC()
	}
	return time.Unix(0, p.mtime).UTC()
}

// SetModTime records t as the part's modification time. Eight bytes hold
// it; a time Unix nanoseconds cannot (before 1678, after 2262) is kept
// out of line.
func (p *Part) SetModTime(t time.Time) {
	p.mtime = 0
	if p.x != nil {
		p.x.mtime = time.Time{}
	}
	switch {
	case t.IsZero():
	case t.Before(time.Unix(0, math.MinInt64+1)) || t.After(time.Unix(0, math.MaxInt64)):
		p.extra(true).mtime = t.UTC()
	case t.UnixNano() == 0:
		p.mtime = epochNS
	default:
		p.mtime = t.UnixNano()
	}
	p.tidy()
}

// Version is the source's version token (source.Object.Version) the
// bytes on disk belong to.
func (p *Part) Version() string {
	switch {
	case p.x == nil || p.x.version == "":
		return p.derivedVersion()
	case p.x.version == noVersion:
		return ""
	}
	return p.x.version
}

// SetVersion records the version token v. Set ETag, the ModTime and Size
// first: a token they make is not stored again (about 60 bytes a part).
func (p *Part) SetVersion(v string) {
	if v == p.derivedVersion() {
		if p.x != nil {
			p.x.version = ""
			p.tidy()
		}
		return
	}
	if v == "" {
		v = noVersion
	}
	p.extra(true).version = v
}

// noVersion stands for an empty version token where the part's fields
// would make another one.
const noVersion = "\x00"

// SetListing records what the source listed for the part's bytes: its
// ETag, modification time and version token (set after the two, so that
// a token they make is not stored).
func (p *Part) SetListing(etag string, mtime time.Time, version string) {
	p.ETag = etag
	p.SetModTime(mtime)
	p.SetVersion(version)
}

// URL is the part's own address for per-object sources (HTTP). Secret.
func (p *Part) URL() string {
	if p.x == nil {
		return ""
	}
	return p.x.url
}

// Encoding is a stored Content-Encoding reported by the source.
func (p *Part) Encoding() string {
	if p.x == nil {
		return ""
	}
	return p.x.encoding
}

// SetAddress records the part's own URL and stored encoding.
func (p *Part) SetAddress(url, encoding string) {
	if url == "" && encoding == "" && p.x == nil {
		return
	}
	x := p.extra(true)
	x.url, x.encoding = url, encoding
	p.tidy()
}

// Attempts counts whole-part re-fetches after a failed verification.
func (p *Part) Attempts() int {
	if p.x == nil {
		return 0
	}
	return p.x.attempts
}

// SetAttempts records n re-fetches.
func (p *Part) SetAttempts(n int) {
	if n == 0 && p.x == nil {
		return
	}
	p.extra(true).attempts = n
	p.tidy()
}

// SetCRC is the CRC-32C of the copy a failed decode of the whole set
// discarded (the part was one of its suspects), "" when none: a copy
// fetched again with the same digest is what the source holds, and
// fetching it once more cannot cure the set.
func (p *Part) SetCRC() string {
	if p.x == nil {
		return ""
	}
	return p.x.setCRC
}

// SetSetCRC records crc as the digest of the copy a failed set check
// discarded ("" forgets it).
func (p *Part) SetSetCRC(crc string) {
	if crc == "" && p.x == nil {
		return
	}
	p.extra(true).setCRC = crc
	p.tidy()
}

// Found says the part's bytes were found in DEST rather than fetched
// under this state (the state was rebuilt): they count only when a
// reference or a check proves them, else they are fetched again.
func (p *Part) Found() bool { return p.x != nil && p.x.found }

// SetFound records whether the part's bytes were found in DEST.
func (p *Part) SetFound(found bool) {
	if !found && p.x == nil {
		return
	}
	p.extra(true).found = found
	p.tidy()
}

// Partial is how far each unfinished piece durably got, so that a
// resumed piece continues there rather than from its start. The slice is
// the part's own: change it with SetProgress or KeepProgress.
func (p *Part) Partial() []Progress {
	if p.x == nil {
		return nil
	}
	return p.x.partial
}

// KeepProgress keeps the progress inside pieces for which keep is true.
func (p *Part) KeepProgress(keep func(Progress) bool) {
	if p.x == nil {
		return
	}
	p.x.partial = slices.DeleteFunc(p.x.partial, func(pr Progress) bool { return !keep(pr) })
	if len(p.x.partial) == 0 {
		p.x.partial = nil
	}
	p.tidy()
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
	for _, pr := range p.Partial() {
		if pr.Piece == i {
			return pr, true
		}
	}
	return Progress{}, false
}

// SetProgress records pr, replacing what piece pr.Piece had; zero bytes
// forget the piece's progress.
func (p *Part) SetProgress(pr Progress) {
	if p.x != nil {
		x := p.x
		for k := range x.partial {
			if x.partial[k].Piece == pr.Piece {
				if pr.Bytes <= 0 {
					x.partial = append(x.partial[:k], x.partial[k+1:]...)
					if len(x.partial) == 0 {
						x.partial = nil
						p.tidy()
					}
				} else {
					x.partial[k] = pr
				}
				return
			}
		}
	}
	if pr.Bytes > 0 {
		x := p.extra(true)
		x.partial = append(x.partial, pr)
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
	p.Done = nil
	if p.x != nil {
		p.x.partial, p.x.found = nil, false
		p.tidy()
	}
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

// ByName returns the parts by name (the first of a name, as Find), for
// finding many: Find per part is quadratic.
func (s *State) ByName() map[string]*Part {
	m := make(map[string]*Part, len(s.Parts))
	for _, p := range slices.Backward(s.Parts) {
		m[p.Name] = p
	}
	return m
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
	for _, pr := range p.Partial() {
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
	if p.x != nil {
		x := *p.x
		x.partial = slices.Clone(x.partial)
		cp.x = &x
		// refs and x.refs are replaced whole (SetRefs), never changed in
		// place: the copy may share them.
	}
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
		for _, pr := range p.Partial() {
			if !p.Done.Has(pr.Piece) {
				inPieces += pr.Bytes
			}
		}
	}
	return kept, inPieces
}
