package integrity

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
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
	// piece hashes has none even when it is bad, and neither has a
	// Checker's verdict on a manifest it proved wrong by the whole-part
	// SHA-256 (VerifyFile finds them with a second read).
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
	// CRC32C is the CRC-32C (Castagnoli, hex) of every byte written: the
	// digest restore checks the part against later (chunk.Part.CRC32C).
	CRC32C string
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
// digest is computed once however many references need it, so SHA-256
// runs at most once over each byte:
//
//   - A reference with piece hashes (a haul manifest) is proven by its
//     pieces, which pin every byte, when no other reference needs the
//     whole-part SHA-256; its own whole-part sum is then not computed.
//   - When another reference needs the whole-part SHA-256 anyway (a sum
//     file, see NeedsWholeSHA256), the manifest is proven by that same
//     digest against its whole-part sum, which pins every byte as well,
//     and no piece is hashed. Should it fail, the Checker cannot say
//     which pieces are bad (Result.BadPieces stays empty); VerifyFile
//     then reads the part a second time to hash the pieces and tell.
//
// The gzip check decodes in a goroutine of its own while Write hashes;
// Result or Close ends it.
//
// Write never fails before Result or Close: the verdict comes from Result.
// A Checker is not safe for concurrent use.
type Checker struct {
	part string
	size int64
	refs []Reference // the checkable ones, in order
	// byWhole[i] is set when refs[i] has piece hashes but is proven by
	// the whole-part SHA-256 against its Sum.
	byWhole []bool
	opts    CheckOptions

	hashes    map[string]hash.Hash
	hashList  []hash.Hash
	multi     map[string]*multipartHasher
	multiList []*multipartHasher
	pieces    map[int64]*pieceHasher
	pieceList []*pieceHasher
	gz        *gzipCheck

	head  [SignatureLen]byte
	headN int
	n     int64
	crc   uint32

	done   bool
	result Result
	// The verdicts behind result.Err, kept so that locate can replace a
	// whole-part mismatch with the piece that causes it.
	sizeErr, sigErr, formatErr error
	verdicts                   []error // per refs[i]; nil where it passed
	sums                       map[string][]byte
	pieceSums                  map[int64][]string
}

// NeedsWholeSHA256 reports whether a Checker for refs computes the
// whole-part SHA-256 for a reference other than a manifest's pieces: some
// checkable reference states it (a SHA256SUMS line, an S3 checksum). The
// Checker then proves a manifest by that same digest instead of hashing
// its pieces, so callers need not hash pieces with SHA-256 either.
func NeedsWholeSHA256(refs []Reference) bool {
	return slices.ContainsFunc(refs, func(r Reference) bool {
		return r.Algo == SHA256 && Checkable(r) && !r.hasPieces()
	})
}

// NewChecker returns a Checker for the part called part (the name errors
// carry), size bytes long (a negative size skips the size check), against
// refs. References that are not Checkable are ignored. Call Result once
// every byte is written, or Close to give up; either releases the
// goroutine of a gzip check.
func NewChecker(part string, size int64, refs []Reference, opts CheckOptions) *Checker {
	c := &Checker{
		part:      part,
		size:      size,
		opts:      opts,
		hashes:    map[string]hash.Hash{},
		multi:     map[string]*multipartHasher{},
		pieces:    map[int64]*pieceHasher{},
		sums:      map[string][]byte{},
		pieceSums: map[int64][]string{},
	}
	whole := NeedsWholeSHA256(refs)
	for _, r := range refs {
		if !Checkable(r) {
			continue
		}
		// Piece sums asked for at the manifest's piece size cost
		// nothing more and locate bad pieces at once.
		byWhole := whole && r.hasPieces() && isHexLen(r.Sum, 2*DigestSize(SHA256)) && opts.PieceSize != r.PieceSize
		c.refs = append(c.refs, r)
		c.byWhole = append(c.byWhole, byWhole)
		switch {
		case byWhole:
			c.hash(SHA256)
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
			c.hash(r.Algo)
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

func (c *Checker) hash(algo string) {
	if c.hashes[algo] == nil {
		h := newHash(algo)
		c.hashes[algo] = h
		c.hashList = append(c.hashList, h)
	}
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
	c.crc = crc32.Update(c.crc, castagnoli, p)
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
	if c.size >= 0 && c.n != c.size {
		c.sizeErr = &MismatchError{Part: c.part, Ref: "size", Want: strconv.FormatInt(c.size, 10), Got: strconv.FormatInt(c.n, 10), Piece: -1}
	}
	c.verdicts = make([]error, len(c.refs))
	for i, r := range c.refs {
		var err error
		switch {
		case c.byWhole[i]:
			err = c.compare(r, c.sum(SHA256))
		case r.hasPieces():
			err = c.comparePieces(&res, r, c.piecesAt(r.PieceSize))
		case r.Algo == MultipartMD5:
			err = c.compare(r, c.multi[fmt.Sprint(r.PartSizes)].Sum())
		default:
			err = c.compare(r, c.sum(r.Algo))
		}
		c.verdicts[i] = err
		if err == nil {
			res.VerifiedBy = appendLabel(res.VerifiedBy, r.Label())
		}
	}
	if c.opts.PieceSize > 0 {
		res.Pieces = c.piecesAt(c.opts.PieceSize)
	}
	c.formatErr = c.structural(&res)
	c.sigErr = CheckSignature(c.part, c.head[:c.headN])
	res.CRC32C = fmt.Sprintf("%08x", c.crc)
	res.Err = c.firstErr()
	c.result = res
	return res
}

// firstErr is the verdict's error: a size mismatch, else a part that is
// not the format its name claims (the clearest word on an error page
// served in its place), else the first reference's mismatch in order,
// else a structural failure.
func (c *Checker) firstErr() error {
	if c.sizeErr != nil {
		return c.sizeErr
	}
	if c.sigErr != nil {
		return c.sigErr
	}
	for _, err := range c.verdicts {
		if err != nil {
			return err
		}
	}
	return c.formatErr
}

// sum returns the whole-part digest of algo, computed once.
func (c *Checker) sum(algo string) []byte {
	s, ok := c.sums[algo]
	if !ok {
		s = c.hashes[algo].Sum(nil)
		c.sums[algo] = s
	}
	return s
}

// piecesAt returns the piece sums at size, computed once.
func (c *Checker) piecesAt(size int64) []string {
	s, ok := c.pieceSums[size]
	if !ok {
		s = c.pieces[size].Sums()
		c.pieceSums[size] = s
	}
	return s
}

// comparePieces checks the piece sums of the part against r's pieces. On
// a difference it adds the bad pieces to res (when they are counted in
// the same piece size as those already there) and returns a
// *MismatchError at the first bad piece.
func (c *Checker) comparePieces(res *Result, r Reference, sums []string) error {
	bad, _ := PieceMismatches(r, r.PieceSize, sums)
	if len(bad) == 0 {
		return nil
	}
	got, want := "", ""
	if bad[0] < len(sums) {
		got = sums[bad[0]]
	}
	if bad[0] < len(r.Pieces) {
		want = r.Pieces[bad[0]]
	}
	if res.BadPieceSize == 0 || res.BadPieceSize == r.PieceSize {
		res.BadPieceSize = r.PieceSize
		res.BadPieces = mergeSorted(res.BadPieces, bad)
	}
	return &MismatchError{Part: c.part, Ref: r.Label(), Want: want, Got: got, Piece: bad[0]}
}

// locateSizes returns the piece sizes of the manifests that the
// whole-part SHA-256 proved wrong, which Result cannot tell the bad
// pieces of; nil when there are none (or before Result).
func (c *Checker) locateSizes() []int64 {
	var sizes []int64
	for i, err := range c.verdicts {
		if c.byWhole[i] && err != nil && !slices.Contains(sizes, c.refs[i].PieceSize) {
			sizes = append(sizes, c.refs[i].PieceSize)
		}
	}
	return sizes
}

// locate finishes a verdict that locateSizes said was incomplete, with
// the piece sums (by piece size) of a second pass over the same bytes:
// each manifest the whole-part SHA-256 failed is compared piece by piece,
// so that the result names its bad pieces as the piece path would have.
// A manifest whose pieces all match keeps its whole-part mismatch (its
// own sum contradicts its pieces). It returns the new verdict, which
// later calls of Result return too.
func (c *Checker) locate(sums map[int64][]string) Result {
	res := c.result
	for i, r := range c.refs {
		if !c.byWhole[i] || c.verdicts[i] == nil {
			continue
		}
		if err := c.comparePieces(&res, r, sums[r.PieceSize]); err != nil {
			c.verdicts[i] = err
		}
	}
	res.Err = c.firstErr()
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
//
// When a manifest was proven wrong by the whole-part SHA-256 (see
// Checker), VerifyFile reads the file a second time, hashing only the
// manifest's pieces, so that Result.BadPieces and the MismatchError's
// Piece name the damage as they do when the pieces are hashed in the
// first pass: a caller can then fetch those pieces alone again. A part
// that is good is read once.
func VerifyFile(ctx context.Context, path, part string, size int64, refs []Reference, opts CheckOptions) Result {
	f, err := os.Open(path)
	if err != nil {
		return Result{Err: fmt.Errorf("verify %s: %w", part, err)}
	}
	defer f.Close() // read-only: a Close error cannot lose data
	c := NewChecker(part, size, refs, opts)
	defer c.Close()
	// No bigger than the part: 100,000 small parts proven one after the
	// other would otherwise churn through 100 GB of buffers.
	bufSize := int64(readBufferSize)
	if size >= 0 {
		bufSize = min(bufSize, max(size+1, 4<<10))
	}
	buf := make([]byte, bufSize)
	if err := readInto(ctx, c, f, buf); err != nil {
		return Result{Err: fmt.Errorf("verify %s: %w", part, err)}
	}
	res := c.Result()
	sizes := c.locateSizes()
	if len(sizes) == 0 {
		return res
	}
	hashers := make([]io.Writer, len(sizes))
	for i, n := range sizes {
		hashers[i] = newPieceHasher(n)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Result{Err: fmt.Errorf("verify %s: locate bad pieces: %w", part, err)}
	}
	if err := readInto(ctx, io.MultiWriter(hashers...), f, buf); err != nil {
		return Result{Err: fmt.Errorf("verify %s: locate bad pieces: %w", part, err)}
	}
	sums := map[int64][]string{}
	for i, n := range sizes {
		sums[n] = hashers[i].(*pieceHasher).Sums()
	}
	return c.locate(sums)
}

// readInto writes every byte of f to w through buf, checking ctx between
// reads.
func readInto(ctx context.Context, w io.Writer, f *os.File, buf []byte) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := f.Read(buf)
		if n > 0 {
			w.Write(buf[:n]) // neither writer fails before it is finished
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
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
