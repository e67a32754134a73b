package integrity

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/haul-dev/haul/internal/gen"
)

// Fuzz targets for every parser of untrusted bytes in this package (issue
// 15). Each input is one []byte; the seeds are the files of the
// repository's testdata/fuzz/<Target>/, added with f.Add so that they run
// in every plain `go test`. A crash found by fuzzing is added there as a
// file holding the raw input.

// cutName splits a fuzz input into a file name (its first line) and the
// rest.
func cutName(in []byte) (string, []byte) {
	name, rest, _ := bytes.Cut(in, []byte("\n"))
	return string(name), rest
}

// FuzzParseSumFile: the first line is the sum file's name, the rest its
// content. A parse that succeeds names only base names with well-formed
// hashes, and writing its references back as BSD lines reads back the same.
func FuzzParseSumFile(f *testing.F) {
	gen.AddSeeds(f, "FuzzParseSumFile")
	f.Fuzz(func(t *testing.T, in []byte) {
		name, data := cutName(in)
		refs, err := ParseSumFile(name, bytes.NewReader(data))
		if err != nil {
			var se *SumFileError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SumFileError", err)
			}
			return
		}
		var out strings.Builder
		for _, key := range slices.Sorted(mapKeys(refs)) {
			if key == "" || key == "." || key == ".." || strings.Contains(key, "/") {
				t.Fatalf("reference for %q, not a base name", key)
			}
			for _, r := range refs[key] {
				if r.Origin != originName(name) {
					t.Fatalf("origin %q, want %q", r.Origin, originName(name))
				}
				if r.Sum == "" || r.Sum != strings.ToLower(r.Sum) || !isHexLen(r.Sum, len(r.Sum)) {
					t.Fatalf("%s: sum %q is not lowercase hex", key, r.Sum)
				}
				if n := DigestSize(r.Algo); n > 0 && len(r.Sum) != 2*n {
					t.Fatalf("%s: %s sum of %d digits", key, r.Algo, len(r.Sum))
				}
				if key == "-" {
					continue // names standard input when written back
				}
				out.WriteString(bsdLine(r.Algo, key, r.Sum))
			}
		}
		for k := range refs {
			if k == "-" {
				delete(refs, k)
			}
		}
		again, err := ParseSumFile("SUMS", strings.NewReader(out.String()))
		if err != nil {
			t.Fatalf("written back:\n%s\ndoes not parse: %v", out.String(), err)
		}
		for _, rs := range refs {
			for i := range rs {
				rs[i].Origin = "SUMS"
			}
		}
		if len(refs) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(refs, again) {
			t.Fatalf("round trip:\n%v\nbecame\n%v\nthrough\n%s", refs, again, out.String())
		}
	})
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// bsdLine writes "TAG(NAME)= HASH", escaping the name as coreutils does.
func bsdLine(algo, name, sum string) string {
	prefix := ""
	if strings.ContainsAny(name, "\\\n\r") {
		prefix = "\\"
		name = strings.NewReplacer("\\", "\\\\", "\n", "\\n", "\r", "\\r").Replace(name)
	}
	return prefix + strings.ToUpper(algo) + "(" + name + ")= " + sum + "\n"
}

// FuzzReadManifest: a manifest that reads writes back to one that reads
// the same, and every part name is a base name.
func FuzzReadManifest(f *testing.F) {
	gen.AddSeeds(f, "FuzzReadManifest")
	f.Fuzz(func(t *testing.T, data []byte) {
		h, parts, err := ReadManifest("x.haul.json", bytes.NewReader(data))
		if err != nil {
			var se *SumFileError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SumFileError", err)
			}
			return
		}
		for _, p := range parts {
			if p.Name == "" || p.Name == "." || p.Name == ".." || strings.ContainsAny(p.Name, "/\x00") || path.Base(p.Name) != p.Name {
				t.Fatalf("part name %q is not a base name", p.Name)
			}
		}
		if h.Created.IsZero() {
			return // the writer would stamp the current time
		}
		var buf bytes.Buffer
		if err := WriteManifest(&buf, h, parts); err != nil {
			t.Fatalf("a manifest that reads does not write: %v", err)
		}
		h2, parts2, err := ReadManifest("x.haul.json", &buf)
		if err != nil {
			t.Fatalf("written back, it does not read: %v\n%s", err, buf.String())
		}
		if h2.PieceSize != h.PieceSize || h2.Version != h.Version || !h2.Created.Equal(h.Created.UTC().Truncate(1e9)) {
			t.Fatalf("header %+v became %+v", h, h2)
		}
		if len(parts) == 0 && len(parts2) == 0 {
			return
		}
		for i := range parts {
			if parts[i].Pieces == nil {
				parts[i].Pieces = []string{} // an empty part may omit "pieces"; the writer writes []
			}
		}
		if !reflect.DeepEqual(parts, parts2) {
			t.Fatalf("parts %+v became %+v", parts, parts2)
		}
	})
}

// FuzzBitrixVolumeHeader: the LN/BX fields read back as written, and a
// volume header always gets the gzip and Bitrix checks.
func FuzzBitrixVolumeHeader(f *testing.F) {
	gen.AddSeeds(f, "FuzzBitrixVolumeHeader")
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := ParseBitrixVolumeHeader(b)
		if !ok {
			if h != (BitrixHeader{}) {
				t.Fatalf("not a header, yet %+v", h)
			}
			return
		}
		if len(b) < BitrixHeaderLen || !bytes.HasPrefix(b, gzipMagic) || b[3]&4 == 0 || string(b[16:18]) != "BX" {
			t.Fatalf("accepted % x", b[:min(len(b), 22)])
		}
		if h.TarBytes < 0 || h.TarBytes > 1<<32-1 || h.LastVolume < -1 || h.LastVolume > 1<<16-1 {
			t.Fatalf("out of range: %+v", h)
		}
		w := bytes.Clone(b)
		binary.LittleEndian.PutUint32(w[18:22], uint32(h.TarBytes))
		if h.LastVolume >= 0 {
			copy(w[12:14], "LN")
			binary.LittleEndian.PutUint16(w[14:16], uint16(h.LastVolume))
		}
		if !bytes.Equal(w, b) {
			t.Fatalf("%+v does not write back to the same bytes", h)
		}
		if c := DetectChecks("x.tar.gz.3", b, nil); !c.Gzip || !c.Bitrix {
			t.Fatalf("a Bitrix volume header gets checks %+v", c)
		}
	})
}

// FuzzGzipCheck: the first byte chooses where the part is cut in two
// writes, the rest is the part. The gzip walker's verdict agrees with the
// standard library's multi-member reader both ways (never "verified" for
// what does not decode, never "broken" for what does), an error is a
// *FormatError inside the part, and a Bitrix verdict holds: an empty first
// member and BX tar bytes in whole blocks.
func FuzzGzipCheck(f *testing.F) {
	gen.AddSeeds(f, "FuzzGzipCheck")
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		data := in[1:]
		cut := int(in[0]) * len(data) / 255
		opts := DetectChecks("x.tar.gz", data, nil)
		opts.Gzip = true
		c := NewChecker("x.tar.gz", int64(len(data)), nil, opts)
		c.Write(data[:cut])
		c.Write(data[cut:])
		res := c.Result()

		members, total, stdErr := stdGunzip(data)
		gzipOK := slices.Contains(res.VerifiedBy, LabelGzip)
		if gzipOK != (stdErr == nil) {
			t.Fatalf("walker: %v (verified by %v); standard library: %v", res.Err, res.VerifiedBy, stdErr)
		}
		if res.Err != nil {
			var fe *FormatError
			if !errors.As(res.Err, &fe) || fe.Part != "x.tar.gz" || fe.Offset < 0 || fe.Offset > int64(len(data)) {
				t.Fatalf("error %v is not a FormatError inside the part", res.Err)
			}
			if len(res.VerifiedBy) > 0 && !(opts.Bitrix && gzipOK) {
				t.Fatalf("error %v with verified_by %v", res.Err, res.VerifiedBy)
			}
		}
		if gzipOK && res.Uncompressed != total {
			t.Fatalf("walker counts %d bytes, the standard library %d", res.Uncompressed, total)
		}
		if slices.Contains(res.VerifiedBy, LabelBitrix) {
			h, _ := ParseBitrixVolumeHeader(data)
			if members[0] != 0 || total != h.TarBytes || total%512 != 0 {
				t.Fatalf("Bitrix verified: first member %d bytes, %d tar bytes, BX %d", members[0], total, h.TarBytes)
			}
		}

		s := NewStreamChecker()
		s.StartPart("a")
		s.Write(data[:cut])
		s.StartPart("b")
		s.Write(data[cut:])
		err := s.Finish()
		if (err == nil) != (stdErr == nil) {
			t.Fatalf("stream walker: %v; standard library: %v", err, stdErr)
		}
		var fe *FormatError
		if err != nil && (!errors.As(err, &fe) || fe.Part == "a" && fe.Offset > int64(cut) || fe.Part == "b" && fe.Offset > int64(len(data)-cut)) {
			t.Fatalf("stream error %v is not inside its part (cut at %d of %d)", err, cut, len(data))
		}
	})
}

// stdGunzip decodes every member with the standard library, the oracle.
// reservedFlags fails for a gzip member header at br's position whose
// reserved FLG bits are set: RFC 1952 (2.3.1.2) says a decompressor must
// reject it, and haul's walker does (as GNU gzip does), while Go's
// compress/gzip ignores them; the oracle follows the RFC. (br is a
// bytes.Reader, which gzip.Reader reads without buffering ahead, so its
// position is the next member's first byte.)
func reservedFlags(data []byte, br *bytes.Reader) error {
	off := len(data) - br.Len()
	if h := data[off:]; len(h) >= 4 && h[0] == 0x1f && h[1] == 0x8b && h[3]&0xe0 != 0 {
		return fmt.Errorf("gzip member at byte %d: reserved flag bits 0x%02x set", off, h[3]&0xe0)
	}
	return nil
}

func stdGunzip(data []byte) (members []int64, total int64, err error) {
	br := bytes.NewReader(data)
	if err := reservedFlags(data, br); err != nil {
		return nil, 0, err
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, 0, err
	}
	for {
		zr.Multistream(false)
		n, err := io.Copy(io.Discard, zr)
		if err != nil {
			return nil, 0, err
		}
		members = append(members, n)
		total += n
		if err := reservedFlags(data, br); err != nil {
			return nil, 0, err
		}
		if err := zr.Reset(br); err == io.EOF {
			return members, total, nil
		} else if err != nil {
			return nil, 0, err
		}
	}
}
