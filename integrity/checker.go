package integrity

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"strconv"
)

// readBufferSize is the read size of the sequential passes over a part.
const readBufferSize = 1 << 20

// CheckOptions selects the structural checks and extra output of a Checker.
type CheckOptions struct {
	// Gzip checks that the part is one or more complete gzip members: each
	// member's CRC32 and ISIZE match its data, and the part ends exactly at
	// a member boundary (no truncation, no trailing bytes).
	Gzip bool
	// Bitrix checks the part as a Bitrix volume (SPEC, Restore); it implies
	// Gzip. The first member must be empty and carry the header that
	// ParseBitrixVolumeHeader reads, and the tar bytes of the other
	// members must equal its BX field and be whole 512-byte blocks. LN is
	// not checked here (it concerns the set) but reported in Result.Bitrix.
	Bitrix bool
	// PieceSize, when > 0, also computes the SHA-256 of each piece of this
	// size into Result.Pieces (for the resume state or a remote compare).
	PieceSize int64
}

// Result is the verdict on one part.
type Result struct {
	// VerifiedBy are the labels of the references and structural checks
	// that passed, in reference order then "gzip", "bitrix". Empty with a
	// nil Err means nothing could prove the part: it is unverified.
	VerifiedBy []string
	// BadPieces are the indexes of the pieces that fail a manifest's piece
	// hashes, counted in pieces of BadPieceSize bytes. A part with no
	// piece hashes has none even when it is bad.
	BadPieces    []int
	BadPieceSize int64
	// Pieces are the SHA-256 (hex) of each piece when CheckOptions.PieceSize
	// was set.
	Pieces []string
	// Bitrix is the volume header, when CheckOptions.Bitrix was set and the
	// part starts with one.
	Bitrix *BitrixHeader
	// Uncompressed is the total decompressed size of the gzip members when
	// the gzip check passed, else 0.
	Uncompressed int64
	// Err is the first failure: a *MismatchError (a size mismatch first,
	// then references in order) or else a *FormatError from a structural
	// check. VerifyFile may also return I/O and context errors here.
	Err error
}

// Verified reports whether the part is proven: nothing failed and at least
// one reference or structural check passed.
func (r Result) Verified() bool { return r.Err == nil && len(r.VerifiedBy) > 0 }

// Checker is an io.Writer that checks a part against all its references and
// structural checks in one pass over its bytes, written in order. Each
// digest is computed once however many references need it, and a
// reference with piece hashes (a haul manifest) is proven by its pieces
// alone, which pin every byte, so its whole-part SHA-256 is not computed
// a second time. The gzip check decodes in a goroutine of its own while
// Write hashes; Result or Close ends it.
//
// Write never fails before Result or Close: the verdict comes from Result.
// A Checker is not safe for concurrent use.
type Checker struct {
	part string
	size int64
	refs []Reference // the checkable ones, in order
	opts CheckOptions

	hashes    map[string]hash.Hash
	hashList  []hash.Hash
	multi     map[string]*multipartHasher
	multiList []*multipartHasher
	pieces    map[int64]*pieceHasher
	pieceList []*pieceHasher
	gz        *gzipCheck

	head  [BitrixHeaderLen]byte
	headN int
	n     int64

	done   bool
	result Result
}

// NewChecker returns a Checker for the part called part (the name errors
// carry), size bytes long (a negative size skips the size check), against
// refs. References that are not Checkable are ignored. Call Result once
// every byte is written, or Close to give up; either releases the
// goroutine of a gzip check.
func NewChecker(part string, size int64, refs []Reference, opts CheckOptions) *Checker {
	c := &Checker{
		part:   part,
		size:   size,
		opts:   opts,
		hashes: map[string]hash.Hash{},
		multi:  map[string]*multipartHasher{},
		pieces: map[int64]*pieceHasher{},
	}
	for _, r := range refs {
		if !Checkable(r) {
			continue
		}
		c.refs = append(c.refs, r)
		switch {
		case r.hasPieces():
			c.pieceHasher(r.PieceSize)
		case r.Algo == MultipartMD5:
			key := fmt.Sprint(r.PartSizes)
			if c.multi[key] == nil {
				m := newMultipartHasher(r.PartSizes)
				c.multi[key] = m
				c.multiList = append(c.multiList, m)
			}
		default:
			if c.hashes[r.Algo] == nil {
				h := newHash(r.Algo)
				c.hashes[r.Algo] = h
				c.hashList = append(c.hashList, h)
			}
		}
	}
	if opts.PieceSize > 0 {
		c.pieceHasher(opts.PieceSize)
	}
	if opts.Bitrix {
		c.opts.Gzip = true
	}
	if c.opts.Gzip {
		c.gz = newGzipCheck()
	}
	return c
}

func (c *Checker) pieceHasher(size int64) {
	if c.pieces[size] == nil {
		ph := newPieceHasher(size)
		c.pieces[size] = ph
		c.pieceList = append(c.pieceList, ph)
	}
}

// Write feeds the next bytes of the part to every digest and check.
func (c *Checker) Write(p []byte) (int, error) {
	if c.done {
		return 0, ErrCheckerDone
	}
	if c.gz != nil {
		c.gz.write(p) // first, so that decoding runs while we hash
	}
	if c.headN < len(c.head) {
		c.headN += copy(c.head[c.headN:], p)
	}
	for _, h := range c.hashList {
		h.Write(p)
	}
	for _, m := range c.multiList {
		m.Write(p)
	}
	for _, ph := range c.pieceList {
		ph.Write(p)
	}
	c.n += int64(len(p))
	return len(p), nil
}

// Close abandons the check if Result has not run: it stops the gzip
// decoder and waits for it. It is safe to defer; after Result it does
// nothing. It always returns nil.
func (c *Checker) Close() error {
	if c.done {
		return nil
	}
	c.done = true
	if c.gz != nil {
		c.gz.abort()
	}
	c.result = Result{Err: fmt.Errorf("check %s: %w", c.part, ErrCheckerDone)}
	return nil
}

// Result finishes the check and returns the verdict; later calls return
// the same verdict.
func (c *Checker) Result() Result {
	if c.done {
		return c.result
	}
	c.done = true
	if c.gz != nil {
		c.gz.finish()
	}
	var res Result
	var mismatch error
	if c.size >= 0 && c.n != c.size {
		mismatch = &MismatchError{Part: c.part, Ref: "size", Want: strconv.FormatInt(c.size, 10), Got: strconv.FormatInt(c.n, 10), Piece: -1}
	}
	pieceSums := map[int64][]string{}
	sumsAt := func(size int64) []string {
		if s, ok := pieceSums[size]; ok {
			return s
		}
		s := c.pieces[size].Sums()
		pieceSums[size] = s
		return s
	}
	sums := map[string][]byte{}
	for _, r := range c.refs {
		var err error
		switch {
		case r.hasPieces():
			bad, _ := PieceMismatches(r, r.PieceSize, sumsAt(r.PieceSize))
			if len(bad) > 0 {
				got := ""
				if s := sumsAt(r.PieceSize); bad[0] < len(s) {
					got = s[bad[0]]
				}
				want := ""
				if bad[0] < len(r.Pieces) {
					want = r.Pieces[bad[0]]
				}
				err = &MismatchError{Part: c.part, Ref: r.Label(), Want: want, Got: got, Piece: bad[0]}
				if res.BadPieceSize == 0 || res.BadPieceSize == r.PieceSize {
					res.BadPieceSize = r.PieceSize
					res.BadPieces = mergeSorted(res.BadPieces, bad)
				}
			}
		case r.Algo == MultipartMD5:
			err = c.compare(r, c.multi[fmt.Sprint(r.PartSizes)].Sum())
		default:
			got, ok := sums[r.Algo]
			if !ok {
				got = c.hashes[r.Algo].Sum(nil)
				sums[r.Algo] = got
			}
			err = c.compare(r, got)
		}
		if err != nil {
			if mismatch == nil {
				mismatch = err
			}
			continue
		}
		res.VerifiedBy = appendLabel(res.VerifiedBy, r.Label())
	}
	if c.opts.PieceSize > 0 {
		res.Pieces = sumsAt(c.opts.PieceSize)
	}
	formatErr := c.structural(&res)
	switch {
	case mismatch != nil:
		res.Err = mismatch
	case formatErr != nil:
		res.Err = formatErr
	}
	c.result = res
	return res
}

// compare checks a computed digest against r; got is nil when the digest
// could not be formed (a multipart ETag over the wrong number of bytes).
func (c *Checker) compare(r Reference, got []byte) error {
	want, _ := r.SumBytes() // Checkable vouched for the hex
	if got != nil && bytes.Equal(want, got) {
		return nil
	}
	return &MismatchError{Part: c.part, Ref: r.Label(), Want: hex.EncodeToString(want), Got: hex.EncodeToString(got), Piece: -1}
}

// structural collects the gzip and Bitrix verdicts into res and returns
// the first structural failure.
func (c *Checker) structural(res *Result) error {
	if c.gz == nil {
		return nil
	}
	g := c.gz
	var h BitrixHeader
	var isBitrix bool
	if c.opts.Bitrix {
		if h, isBitrix = ParseBitrixVolumeHeader(c.head[:c.headN]); isBitrix {
			res.Bitrix = &h
		}
	}
	if ge := g.err; ge != nil {
		at := func(off int64) string { return fmt.Sprintf("at byte %d", off) }
		return &FormatError{Format: "gzip", Part: c.part, Offset: ge.off, Err: ge.describe(at)}
	}
	res.VerifiedBy = appendLabel(res.VerifiedBy, LabelGzip)
	res.Uncompressed = g.out
	if !c.opts.Bitrix {
		return nil
	}
	if !isBitrix {
		return &FormatError{Format: "bitrix", Part: c.part, Offset: 0, Err: ErrBitrixHeader}
	}
	if g.members[0] != 0 {
		return &FormatError{Format: "bitrix", Part: c.part, Offset: 0,
			Err: fmt.Errorf("%w: the first gzip member holds %d bytes, not 0", ErrBitrixHeader, g.members[0])}
	}
	tar := g.out - g.members[0]
	if tar != h.TarBytes {
		return &FormatError{Format: "bitrix", Part: c.part, Offset: 16,
			Err: fmt.Errorf("%w: BX says %d tar bytes, the volume holds %d", ErrBitrixSize, h.TarBytes, tar)}
	}
	if tar%512 != 0 {
		return &FormatError{Format: "bitrix", Part: c.part, Offset: 16,
			Err: fmt.Errorf("%w: %d tar bytes are not whole 512-byte blocks", ErrBitrixSize, tar)}
	}
	res.VerifiedBy = appendLabel(res.VerifiedBy, LabelBitrix)
	return nil
}

func appendLabel(labels []string, l string) []string {
	if slices.Contains(labels, l) {
		return labels
	}
	return append(labels, l)
}

// mergeSorted returns the sorted union of two sorted index lists.
func mergeSorted(a, b []int) []int {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// VerifyFile checks the file at path, the part called part, in one
// sequential pass with a large buffer. It stops early with ctx's error
// (wrapped) when ctx ends; an I/O error is returned the same way.
func VerifyFile(ctx context.Context, path, part string, size int64, refs []Reference, opts CheckOptions) Result {
	f, err := os.Open(path)
	if err != nil {
		return Result{Err: fmt.Errorf("verify %s: %w", part, err)}
	}
	defer f.Close() // read-only: a Close error cannot lose data
	c := NewChecker(part, size, refs, opts)
	defer c.Close()
	buf := make([]byte, readBufferSize)
	for {
		if err := ctx.Err(); err != nil {
			return Result{Err: fmt.Errorf("verify %s: %w", part, err)}
		}
		n, err := f.Read(buf)
		if n > 0 {
			c.Write(buf[:n])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return Result{Err: fmt.Errorf("verify %s: %w", part, err)}
		}
	}
	return c.Result()
}

// CompareSum checks a digest computed elsewhere (by a remote sha256sum, a
// piece hash, a server) against ref. algo names the digest's algorithm.
// It returns nil on a match, a *MismatchError (without Part) on a
// difference, and an error wrapping ErrNotComparable when algo is not
// ref's algorithm or ref has no usable whole-part sum.
func CompareSum(algo string, got []byte, ref Reference) error {
	if algo != ref.Algo || !Checkable(ref) || !isHexLen(ref.Sum, 2*DigestSize(ref.Algo)) {
		return fmt.Errorf("compare %s digest with %s: %w", algo, ref.Label(), ErrNotComparable)
	}
	want, _ := ref.SumBytes()
	if bytes.Equal(want, got) {
		return nil
	}
	return &MismatchError{Ref: ref.Label(), Want: hex.EncodeToString(want), Got: hex.EncodeToString(got), Piece: -1}
}

func errPieceSize(n int64) error {
	return fmt.Errorf("piece size %d: must be positive", n)
}
