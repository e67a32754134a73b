package integrity

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"io"

	"github.com/minio/crc64nvme"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// newHash returns a fresh hash for a whole-part algorithm, nil for one
// haul does not compute. CRCs sum to big-endian bytes, the order S3 uses.
func newHash(algo string) hash.Hash {
	switch algo {
	case SHA256:
		return sha256.New()
	case SHA512:
		return sha512.New()
	case SHA1:
		return sha1.New()
	case MD5:
		return md5.New()
	case CRC32:
		return crc32.NewIEEE()
	case CRC32C:
		return crc32.New(castagnoli)
	case CRC64NVME:
		return crc64nvme.New()
	}
	return nil
}

// multipartHasher computes an S3 multipart ETag: the MD5 of the
// concatenated binary MD5s of each upload part, parts cut at sizes.
type multipartHasher struct {
	sizes []int64
	i     int   // current upload part
	left  int64 // bytes still due in part i
	cur   hash.Hash
	sums  []byte
	extra bool // bytes beyond the last part arrived
}

func newMultipartHasher(sizes []int64) *multipartHasher {
	return &multipartHasher{sizes: sizes, left: sizes[0], cur: md5.New()}
}

func (m *multipartHasher) Write(p []byte) {
	for len(p) > 0 {
		m.settle()
		if m.i >= len(m.sizes) {
			m.extra = true
			return
		}
		n := int64(len(p))
		if n > m.left {
			n = m.left
		}
		m.cur.Write(p[:n])
		m.left -= n
		p = p[n:]
	}
}

// settle closes every finished upload part, including zero-length ones.
func (m *multipartHasher) settle() {
	for m.i < len(m.sizes) && m.left == 0 {
		m.sums = m.cur.Sum(m.sums)
		m.cur.Reset()
		m.i++
		if m.i < len(m.sizes) {
			m.left = m.sizes[m.i]
		}
	}
}

// Sum returns the multipart MD5, or nil when the bytes seen do not fill
// exactly the part sizes (then the ETag cannot match).
func (m *multipartHasher) Sum() []byte {
	m.settle()
	if m.i < len(m.sizes) || m.extra {
		return nil
	}
	s := md5.Sum(m.sums)
	return s[:]
}

// pieceHasher computes the SHA-256 of each pieceSize-long piece of a
// stream, the last one shorter.
type pieceHasher struct {
	size int64
	left int64
	h    hash.Hash
	sums [][sha256.Size]byte
	open bool // h holds bytes of an unfinished piece
}

func newPieceHasher(size int64) *pieceHasher {
	return &pieceHasher{size: size, left: size, h: sha256.New()}
}

func (ph *pieceHasher) Write(p []byte) (int, error) {
	n0 := len(p)
	for len(p) > 0 {
		n := int64(len(p))
		if n > ph.left {
			n = ph.left
		}
		ph.h.Write(p[:n])
		ph.open = true
		ph.left -= n
		p = p[n:]
		if ph.left == 0 {
			ph.cut()
		}
	}
	return n0, nil
}

func (ph *pieceHasher) cut() {
	var s [sha256.Size]byte
	ph.h.Sum(s[:0])
	ph.sums = append(ph.sums, s)
	ph.h.Reset()
	ph.left = ph.size
	ph.open = false
}

// Sums closes the last short piece and returns every piece's hash, hex.
func (ph *pieceHasher) Sums() []string {
	if ph.open {
		ph.cut()
	}
	out := make([]string, len(ph.sums))
	for i := range ph.sums {
		out[i] = hex.EncodeToString(ph.sums[i][:])
	}
	return out
}

// PieceHashes reads r to its end and returns the SHA-256 (hex) of each
// pieceSize-long piece, the last one shorter, and the bytes read. An empty
// stream has no pieces. This is what a haul manifest's "pieces" hold.
func PieceHashes(r io.Reader, pieceSize int64) (pieces []string, size int64, err error) {
	if pieceSize <= 0 {
		return nil, 0, errPieceSize(pieceSize)
	}
	ph := newPieceHasher(pieceSize)
	size, err = io.CopyBuffer(ph, r, make([]byte, readBufferSize))
	if err != nil {
		return nil, size, err
	}
	return ph.Sums(), size, nil
}

// PieceMismatches compares piece hashes computed elsewhere (the SHA-256 of
// each piece as written during a fetch, hex, "" where unknown) with a
// reference's pieces. It returns the indexes that differ or are unknown.
// ok is false when ref has no usable pieces or they are cut at a piece
// size other than pieceSize: then the pieces cannot be compared this way.
func PieceMismatches(ref Reference, pieceSize int64, hashes []string) (bad []int, ok bool) {
	if !ref.hasPieces() || ref.PieceSize != pieceSize {
		return nil, false
	}
	n := max(len(ref.Pieces), len(hashes))
	for i := 0; i < n; i++ {
		if i >= len(ref.Pieces) || i >= len(hashes) || !hexEqual(ref.Pieces[i], hashes[i]) {
			bad = append(bad, i)
		}
	}
	return bad, true
}

// hexEqual compares two hex strings, ignoring case.
func hexEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerHex(a[i]) != lowerHex(b[i]) {
			return false
		}
	}
	return true
}

func lowerHex(c byte) byte {
	if 'A' <= c && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}
