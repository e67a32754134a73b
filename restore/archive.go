package restore

import (
	"archive/tar"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/haul-dev/haul/integrity"
	"github.com/klauspost/compress/zip"
)

// archive is an opened set: its format, its parts in order, and a decoder
// positioned at the first tar header. Opening writes nothing.
type archive struct {
	format Format
	j      *Join
	prog   progress

	dec       decoder
	prefix    []byte // decoded bytes already read: the first tar header
	cipher    *ecbCipher
	encrypted bool
	tarOff    int64 // bytes of the decoded stream before the tar (the encryption header)
	tarTotal  int64 // size of the tar stream when known, else -1

	zr *zip.Reader

	need int64 // a lower bound of the space the tree takes
}

// openArchive detects the format, checks that the set is complete (Bitrix:
// every volume up to LN) and, for an encrypted archive, the password. With
// lenient, an encrypted archive without a password is opened anyway for a
// structural check of its compression layer.
func openArchive(parts []Part, password string, lenient bool, prog progress) (*archive, error) {
	j, err := NewJoin(parts)
	if err != nil {
		return nil, err
	}
	a := &archive{j: j, prog: prog, tarTotal: -1}
	ok := false
	defer func() {
		if !ok {
			a.close()
		}
	}()
	if a.format, err = Detect(j.Parts()); err != nil {
		return nil, err
	}
	switch a.format {
	case FormatZip:
		if err := a.openZip(); err != nil {
			return nil, err
		}
		if password != "" {
			prog.warn("the archive is not a Bitrix encrypted one; the password is not used")
		}
		ok = true
		return a, nil
	case FormatBitrix:
		s, err := orderBitrix(j.Parts(), prog)
		if err != nil {
			return nil, err
		}
		_ = j.Close()
		if a.j, err = NewJoin(s.parts); err != nil {
			return nil, err
		}
		a.dec = newBitrixDecoder(a.j, s)
		a.tarTotal = s.tarBytes()
		a.need = max(a.tarTotal, a.j.Size())
	case FormatTar:
		a.dec = &plainDecoder{r: newPosReader(j, 0, j.Size())}
		a.tarTotal = j.Size()
		a.need = j.Size()
	case FormatTarGz:
		a.dec = newGzipDecoder(j, newPosReader(j, 0, j.Size()), "gzip")
		a.need = max(j.Size(), a.lastISize())
	default:
		name := map[Format]string{FormatTarZst: "zstd", FormatTarXz: "xz", FormatTarBz2: "bzip2"}[a.format]
		if a.dec, err = newStreamDecoder(j, newPosReader(j, 0, j.Size()), name); err != nil {
			return nil, err
		}
		a.need = j.Size()
	}
	if err := a.sniff(password, lenient); err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

// sniff reads the first decoded block: an encryption header (checked
// against the password before anything is written) or the first tar header.
func (a *archive) sniff(password string, lenient bool) error {
	block := make([]byte, 512)
	n, err := io.ReadFull(a.dec, block)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return err
	}
	block = block[:n]
	if n == 512 && isEncryptedHeader(block) {
		a.encrypted = true
		a.tarOff = 512
		if a.tarTotal >= 0 {
			a.tarTotal -= 512
		}
		if password == "" && lenient {
			return nil // compression layer only
		}
		if a.cipher, err = bitrixCipher(block, password); err != nil {
			return err
		}
		n, err = io.ReadFull(a.dec, block)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return err
		}
		block = block[:n]
		a.cipher.decrypt(block)
	} else if password != "" {
		a.prog.warn("the archive is not a Bitrix encrypted one; the password is not used")
	}
	if n > 0 && !isTarHeader(block) {
		if n < 512 && err == io.ErrUnexpectedEOF {
			part, off := a.j.Locate(a.dec.inPos())
			return &integrity.FormatError{Format: "tar", Part: part, Offset: off, Err: &describedError{"unexpected end of data (truncated)", io.ErrUnexpectedEOF}}
		}
		return fmt.Errorf("restore: %w: %s decodes to data that is not a tar archive; use --assemble FILE to just join the parts",
			ErrUnsupported, a.j.Parts()[0].Name)
	}
	a.prefix = block
	return nil
}

// lastISize is the ISIZE field of the last gzip member: the size of a
// single-member archive (mod 4 GiB), a lower bound in any case.
func (a *archive) lastISize() int64 {
	if a.j.Size() < 18 {
		return 0
	}
	var b [4]byte
	if _, err := a.j.ReadAt(b[:], a.j.Size()-4); err != nil {
		return 0
	}
	return int64(binary.LittleEndian.Uint32(b[:]))
}

func (a *archive) openZip() error {
	zr, err := zip.NewReader(a.j, a.j.Size())
	if err != nil {
		var je *joinError
		if errors.As(err, &je) {
			return err
		}
		last := a.j.Parts()[len(a.j.Parts())-1]
		return &integrity.FormatError{Format: "zip", Part: last.Name, Offset: last.Size, Err: fmt.Errorf("central directory: %w", err)}
	}
	a.zr = zr
	for _, f := range zr.File {
		a.need += int64(f.UncompressedSize64)
	}
	return nil
}

func (a *archive) close() {
	if a.dec != nil {
		a.dec.close()
	}
	_ = a.j.Close()
}

// start begins decoding in the background; the returned reader yields
// the tar stream.
func (a *archive) start(ctx context.Context) *readAhead {
	return startReadAhead(ctx, a.j, a.dec, a.prefix, a.cipher, a.prog.bytes)
}

// dataError marks an error from reading an entry's data, as opposed to
// writing it.
type dataError struct{ err error }

func (e *dataError) Error() string { return e.err.Error() }
func (e *dataError) Unwrap() error { return e.err }

// entryData is an entry's data; its read errors are marked.
type entryData struct{ tr *tar.Reader }

func (d entryData) Read(p []byte) (int, error) {
	n, err := d.tr.Read(p)
	if err != nil && err != io.EOF {
		err = &dataError{err}
	}
	return n, err
}

// walkTar calls visit for every entry of the tar stream. visit reads the
// entry's data from r. An absurd size (more than what is left of a stream
// of known length) is refused before visit sees the entry.
func (a *archive) walkTar(ctx context.Context, ra *readAhead, visit func(hdr *tar.Header, r io.Reader) error) error {
	lt := newLenientTar(ra)
	tr := tar.NewReader(lt)
	data := entryData{tr}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return a.tarErr(ra, err, "")
		}
		if notes := lt.take(); len(notes) > 0 {
			a.prog.warn(fmt.Sprintf("%s: %s", hdr.Name, strings.Join(notes, "; ")))
		}
		if a.tarTotal >= 0 && hasData(hdr) {
			if left := a.tarTotal - ra.outPos; hdr.Size > left {
				if parts := a.j.Parts(); len(parts) > 1 {
					// A set cut short, far likelier than a hostile header.
					return &EndsEarlyError{Entry: hdr.Name, Claims: hdr.Size, Left: max(left, 0), Last: parts[len(parts)-1].Name}
				}
				return &UnsafeError{Name: hdr.Name, Reason: fmt.Sprintf("its header claims %d bytes, only %d are left in the archive", hdr.Size, max(left, 0))}
			}
		}
		if err := visit(hdr, data); err != nil {
			var te *dataError
			if errors.As(err, &te) {
				return a.tarErr(ra, te.err, hdr.Name)
			}
			return err
		}
	}
}

// hasData reports whether an entry's size is data that follows its header
// (not for links and directories, and not the logical size of a sparse file).
func hasData(h *tar.Header) bool {
	if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA && h.Typeflag != tar.TypeCont && h.Typeflag != 'D' {
		return false
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return false
		}
	}
	return true
}

// tarErr turns an error of the tar layer into the most useful report: a
// decode error further on in the stream is the cause and names the
// damaged part; a clean stream that ends inside an entry means the
// entry's header lies about its size; anything else is a tar format error.
func (a *archive) tarErr(ra *readAhead, err error, name string) error {
	var fe *integrity.FormatError
	var je *joinError
	if errors.As(err, &fe) || errors.As(err, &je) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	outPos := ra.outPos
	if derr := ra.drain(); derr != nil {
		return derr
	}
	if name != "" && errors.Is(err, io.ErrUnexpectedEOF) {
		return &UnsafeError{Name: name, Reason: "its header claims more data than the archive holds"}
	}
	pos := ra.inPos
	if a.format == FormatTar && a.cipher == nil {
		pos = a.tarOff + outPos
	}
	part, off := a.j.Locate(pos)
	if errors.Is(err, tar.ErrHeader) {
		err = &describedError{"invalid header", err}
	} else if errors.Is(err, io.ErrUnexpectedEOF) {
		err = &describedError{"unexpected end of data (truncated)", err}
	}
	return &integrity.FormatError{Format: "tar", Part: part, Offset: off,
		Err: &describedError{fmt.Sprintf("%v (tar offset %d)", err, outPos), err}}
}

// zipErr locates an error reading a zip entry: the entry's compressed
// data is the span its CRC covers.
func (a *archive) zipErr(f *zip.File, err error) error {
	var je *joinError
	if errors.As(err, &je) || errors.Is(err, context.Canceled) {
		return err
	}
	off, oerr := f.DataOffset()
	if oerr != nil {
		return formatErr(a.j, "zip", a.j.Size(), err)
	}
	if errors.Is(err, zip.ErrChecksum) {
		err = &describedError{"checksum error", err}
	} else {
		err = describe(err)
	}
	err = &describedError{fmt.Sprintf("%v in entry %s", err, f.Name), err}
	end := off + int64(f.CompressedSize64)
	fe := spanErr(a.j, "zip", off, max(end, off+1), err).(*integrity.FormatError)
	if parts := a.j.between(off, max(end, off+1)); len(parts) > 0 {
		// Name where the entry's data starts.
		fe.Part, fe.Offset = a.j.Locate(off + 1)
		fe.Offset--
		if len(parts) == 1 {
			fe.Part = parts[0]
		}
	}
	return fe
}
