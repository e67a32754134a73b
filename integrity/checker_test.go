package integrity

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/minio/crc64nvme"
)

// independentSums computes each algorithm's digest of data with the
// standard packages directly, not through the Checker's code.
func independentSums(data []byte) map[string]string {
	s256 := sha256.Sum256(data)
	s512 := sha512.Sum512(data)
	s1 := sha1.Sum(data)
	m := md5.Sum(data)
	return map[string]string{
		SHA256:    hex.EncodeToString(s256[:]),
		SHA512:    hex.EncodeToString(s512[:]),
		SHA1:      hex.EncodeToString(s1[:]),
		MD5:       hex.EncodeToString(m[:]),
		CRC32:     hex.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(data))),
		CRC32C:    hex.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))),
		CRC64NVME: hex.EncodeToString(binary.BigEndian.AppendUint64(nil, crc64nvme.Checksum(data))),
	}
}

func TestCheckerEveryAlgorithm(t *testing.T) {
	data := randBytes(1, 300_000)
	sums := independentSums(data)
	for _, algo := range []string{SHA256, SHA512, SHA1, MD5, CRC32, CRC32C, CRC64NVME} {
		ref := Reference{Algo: algo, Sum: sums[algo], Origin: "SUMS"}
		t.Run(algo+"/good", func(t *testing.T) {
			res := check("p", data, []Reference{ref}, CheckOptions{})
			if res.Err != nil || !slices.Equal(res.VerifiedBy, []string{algo + ":SUMS"}) {
				t.Fatalf("got %+v, want verified by %s:SUMS", res, algo)
			}
		})
		t.Run(algo+"/flipped byte", func(t *testing.T) {
			res := check("p", flip(data, 123_456), []Reference{ref}, CheckOptions{})
			var me *MismatchError
			if !errors.As(res.Err, &me) || me.Ref != algo+":SUMS" || me.Part != "p" || me.Want != sums[algo] {
				t.Fatalf("got %v, want a %s:SUMS mismatch on p", res.Err, algo)
			}
			if !errors.Is(res.Err, ErrMismatch) || len(res.VerifiedBy) != 0 || res.Verified() {
				t.Fatalf("a mismatch must not verify: %+v", res)
			}
		})
	}
}

// The standard check values ("123456789") pin the CRC variants and their
// byte order, which S3 headers use.
func TestCheckerKnownCRCValues(t *testing.T) {
	data := []byte("123456789")
	for _, tc := range []struct{ algo, sum string }{
		{CRC32, "cbf43926"},
		{CRC32C, "e3069283"},
		{CRC64NVME, "ae8b14860a799888"},
	} {
		t.Run(tc.algo, func(t *testing.T) {
			res := check("p", data, []Reference{{Algo: tc.algo, Sum: tc.sum, Origin: OriginS3}}, CheckOptions{})
			if !res.Verified() {
				t.Fatalf("check value %s of %s not accepted: %v", tc.sum, tc.algo, res.Err)
			}
		})
	}
}

func TestCheckerComputesEachDigestOnce(t *testing.T) {
	data := textBytes(10_000)
	sums := independentSums(data)
	refs := []Reference{
		{Algo: SHA256, Sum: sums[SHA256], Origin: "SHA256SUMS"},
		{Algo: SHA256, Sum: sums[SHA256], Origin: "p.sha256"},
		{Algo: MD5, Sum: sums[MD5], Origin: OriginETag},
		{Algo: MD5, Sum: sums[MD5], Origin: OriginHTTP},
	}
	c := NewChecker("p", int64(len(data)), refs, CheckOptions{})
	if len(c.hashList) != 2 {
		t.Fatalf("%d digests for sha256 and md5, want 2", len(c.hashList))
	}
	c.Write(data)
	res := c.Result()
	want := []string{"sha256:SHA256SUMS", "sha256:p.sha256", "md5:etag", "md5:http"}
	if res.Err != nil || !slices.Equal(res.VerifiedBy, want) {
		t.Fatalf("got %+v, want verified by %v", res, want)
	}
}

func TestCheckerIgnoresOddReferences(t *testing.T) {
	data := textBytes(1000)
	for _, tc := range []struct {
		name string
		ref  Reference
	}{
		{"unknown algorithm", Reference{Algo: "blake3", Sum: "00", Origin: "B3SUMS"}},
		{"multipart without part sizes", Reference{Algo: MultipartMD5, Sum: independentSums(data)[MD5], Origin: OriginETag}},
		{"bad hex", Reference{Algo: SHA256, Sum: "zz", Origin: "SHA256SUMS"}},
		{"wrong length", Reference{Algo: MD5, Sum: "abcd", Origin: "MD5SUMS"}},
		{"empty", Reference{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := check("p", data, []Reference{tc.ref}, CheckOptions{})
			if res.Err != nil || len(res.VerifiedBy) != 0 {
				t.Fatalf("got %+v, want unverified with no error", res)
			}
		})
	}
}

func TestCheckerSizeMismatch(t *testing.T) {
	data := textBytes(1000)
	ref := Reference{Algo: SHA256, Sum: independentSums(data)[SHA256], Origin: "SHA256SUMS"}
	c := NewChecker("p", 999, []Reference{ref}, CheckOptions{})
	c.Write(data)
	var me *MismatchError
	if res := c.Result(); !errors.As(res.Err, &me) || me.Ref != "size" || me.Want != "999" || me.Got != "1000" {
		t.Fatalf("got %v, want a size mismatch", res.Err)
	}
}

func TestMultipartETag(t *testing.T) {
	sizes := []int64{70_000, 70_000, 12_345}
	data := randBytes(2, int(sizes[0]+sizes[1]+sizes[2]))
	// The ETag S3 gives: MD5 of the concatenated binary MD5s of the parts, "-N".
	var concat []byte
	off := int64(0)
	for _, n := range sizes {
		s := md5.Sum(data[off : off+n])
		concat = append(concat, s[:]...)
		off += n
	}
	final := md5.Sum(concat)
	etag := `"` + hex.EncodeToString(final[:]) + `-3"`
	size := int64(len(data))

	ref, ok := ETagReference(etag, size, sizes)
	if !ok || ref.Algo != MultipartMD5 || ref.Label() != "md5:etag" {
		t.Fatalf("ETagReference(%s) = %+v, %v", etag, ref, ok)
	}
	t.Run("good", func(t *testing.T) {
		if res := check("p", data, []Reference{ref}, CheckOptions{}); !res.Verified() || res.VerifiedBy[0] != "md5:etag" {
			t.Fatalf("got %+v", res)
		}
	})
	t.Run("flipped byte", func(t *testing.T) {
		var me *MismatchError
		if res := check("p", flip(data, 100_000), []Reference{ref}, CheckOptions{}); !errors.As(res.Err, &me) || me.Ref != "md5:etag" {
			t.Fatalf("got %v, want an md5:etag mismatch", res.Err)
		}
	})
	t.Run("same total cut elsewhere", func(t *testing.T) {
		other, ok := ETagReference(etag, size, []int64{80_000, 60_000, 12_345})
		if !ok {
			t.Fatal("sizes that add up must give a reference")
		}
		if res := check("p", data, []Reference{other}, CheckOptions{}); res.Err == nil {
			t.Fatal("wrong part sizes must not match")
		}
	})
}

func TestManifestPiecesFindBadPiece(t *testing.T) {
	const pieceSize = 4096
	data := randBytes(3, 5*pieceSize+100) // 6 pieces, the last short
	refs := manifestOf(t, data, pieceSize).References()
	c := NewChecker("p", int64(len(data)), refs, CheckOptions{})
	if len(c.hashList) != 0 {
		t.Fatal("a manifest with pieces must not cost a second whole-part SHA-256")
	}
	c.Close()

	for _, tc := range []struct {
		name string
		data []byte
		bad  []int
	}{
		{"good", data, nil},
		{"byte flipped in piece 3", flip(data, 3*pieceSize+7), []int{3}},
		{"bytes flipped in pieces 0 and 5", flip(flip(data, 0), 5*pieceSize+99), []int{0, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := check("p", tc.data, refs, CheckOptions{})
			if !slices.Equal(res.BadPieces, tc.bad) {
				t.Fatalf("bad pieces %v, want %v", res.BadPieces, tc.bad)
			}
			if tc.bad == nil {
				if !slices.Equal(res.VerifiedBy, []string{"manifest"}) || res.Err != nil {
					t.Fatalf("got %+v, want verified by manifest", res)
				}
				return
			}
			var me *MismatchError
			if !errors.As(res.Err, &me) || me.Ref != "manifest" || me.Piece != tc.bad[0] || res.BadPieceSize != pieceSize {
				t.Fatalf("got %v (piece size %d), want a manifest mismatch at piece %d", res.Err, res.BadPieceSize, tc.bad[0])
			}
		})
	}
	t.Run("short part", func(t *testing.T) {
		short := data[:2*pieceSize+10]
		c := NewChecker("p", int64(len(data)), refs, CheckOptions{})
		c.Write(short)
		res := c.Result()
		if !slices.Equal(res.BadPieces, []int{2, 3, 4, 5}) {
			t.Fatalf("bad pieces %v, want the cut piece and all after it", res.BadPieces)
		}
	})
}

func TestCheckerPieceHashesOption(t *testing.T) {
	data := randBytes(4, 10_000)
	res := check("p", data, nil, CheckOptions{PieceSize: 3000})
	want, _, err := PieceHashes(bytes.NewReader(data), 3000)
	if err != nil {
		t.Fatal(err)
	}
	first := sha256.Sum256(data[:3000])
	if len(res.Pieces) != 4 || !slices.Equal(res.Pieces, want) || res.Pieces[0] != hex.EncodeToString(first[:]) {
		t.Fatalf("pieces %v, want %v", res.Pieces, want)
	}
	if res.Verified() || res.Err != nil {
		t.Fatal("piece hashes alone prove nothing")
	}
}

func TestVerifyFile(t *testing.T) {
	dir := t.TempDir()
	data := randBytes(5, 3<<20+17)
	path := filepath.Join(dir, "site.tar.gz.1")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ref := Reference{Algo: SHA256, Sum: independentSums(data)[SHA256], Origin: "SHA256SUMS"}

	t.Run("good", func(t *testing.T) {
		if res := VerifyFile(context.Background(), path, "site.tar.gz.1", int64(len(data)), []Reference{ref}, CheckOptions{}); !res.Verified() {
			t.Fatalf("got %+v", res)
		}
	})
	t.Run("bit rot", func(t *testing.T) {
		bad := filepath.Join(dir, "bad")
		if err := os.WriteFile(bad, flip(data, 2<<20), 0o600); err != nil {
			t.Fatal(err)
		}
		var me *MismatchError
		if res := VerifyFile(context.Background(), bad, "site.tar.gz.1", int64(len(data)), []Reference{ref}, CheckOptions{}); !errors.As(res.Err, &me) || me.Part != "site.tar.gz.1" {
			t.Fatalf("got %v, want a mismatch naming the part", res.Err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if res := VerifyFile(ctx, path, "p", int64(len(data)), []Reference{ref}, CheckOptions{Gzip: true}); !errors.Is(res.Err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", res.Err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if res := VerifyFile(context.Background(), filepath.Join(dir, "nope"), "p", 1, nil, CheckOptions{}); !errors.Is(res.Err, os.ErrNotExist) {
			t.Fatalf("got %v, want not-exist", res.Err)
		}
	})
}

func TestCompareSum(t *testing.T) {
	data := textBytes(100)
	sums := independentSums(data)
	got, _ := hex.DecodeString(sums[SHA256])
	ref := Reference{Algo: SHA256, Sum: sums[SHA256], Origin: "SHA256SUMS"}
	if err := CompareSum(SHA256, got, ref); err != nil {
		t.Fatalf("equal sums: %v", err)
	}
	var me *MismatchError
	if err := CompareSum(SHA256, make([]byte, 32), ref); !errors.As(err, &me) || me.Ref != "sha256:SHA256SUMS" {
		t.Fatalf("different sums: %v", err)
	}
	if err := CompareSum(MD5, got[:16], ref); !errors.Is(err, ErrNotComparable) {
		t.Fatalf("other algorithm: %v", err)
	}
}

func TestPieceMismatches(t *testing.T) {
	ref := Reference{Algo: SHA256, Origin: OriginManifest, PieceSize: 10, Pieces: []string{
		hex.EncodeToString(make([]byte, 32)), hex.EncodeToString(make([]byte, 32)), hex.EncodeToString(make([]byte, 32)),
	}}
	zero := hex.EncodeToString(make([]byte, 32))
	bad, ok := PieceMismatches(ref, 10, []string{zero, "", zero})
	if !ok || !slices.Equal(bad, []int{1}) {
		t.Fatalf("got %v %v, want [1] true", bad, ok)
	}
	if _, ok := PieceMismatches(ref, 20, nil); ok {
		t.Fatal("another piece size cannot be compared")
	}
}

// A manifest beside a sum file that states the whole-part SHA-256: the
// manifest is proven by that same digest (one SHA-256 pass, no piece
// hashes), and when it fails, VerifyFile still names the bad pieces so
// that only they need to move again.
func TestManifestBesideSHA256SUMS(t *testing.T) {
	const pieceSize = 4096
	data := randBytes(7, 5*pieceSize+100) // 6 pieces, the last short
	mp := manifestOf(t, data, pieceSize)
	manifest := mp.References()[0]
	sums := Reference{Algo: SHA256, Sum: independentSums(data)[SHA256], Origin: "SHA256SUMS"}
	dir := t.TempDir()
	verifyBytes := func(t *testing.T, b []byte, refs ...Reference) Result {
		t.Helper()
		path := filepath.Join(dir, t.Name()[len("TestManifestBesideSHA256SUMS/"):])
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return VerifyFile(context.Background(), path, "p", int64(len(data)), refs, CheckOptions{})
	}

	t.Run("one SHA-256 pass", func(t *testing.T) {
		if !NeedsWholeSHA256([]Reference{manifest, sums}) || NeedsWholeSHA256([]Reference{manifest}) {
			t.Fatal("NeedsWholeSHA256: want true with SHA256SUMS, false with the manifest alone")
		}
		c := NewChecker("p", int64(len(data)), []Reference{manifest, sums}, CheckOptions{})
		defer c.Close()
		if len(c.hashList) != 1 || len(c.pieceList) != 0 {
			t.Fatalf("%d whole-part digests and %d piece hashers, want one SHA-256 and no pieces", len(c.hashList), len(c.pieceList))
		}
	})
	t.Run("good", func(t *testing.T) {
		want := []string{"sha256:SHA256SUMS", "manifest"}
		for _, res := range []Result{check("p", data, []Reference{sums, manifest}, CheckOptions{}), verifyBytes(t, data, sums, manifest)} {
			if res.Err != nil || !slices.Equal(res.VerifiedBy, want) || len(res.BadPieces) != 0 {
				t.Fatalf("got %+v, want verified by %v", res, want)
			}
		}
	})
	for _, tc := range []struct {
		name string
		refs []Reference
		ref  string // the first mismatch, in reference order
	}{
		{"SHA256SUMS first", []Reference{sums, manifest}, "sha256:SHA256SUMS"},
		{"manifest first", []Reference{manifest, sums}, "manifest"},
	} {
		for _, bad := range [][]int{{3}, {0, 5}} {
			t.Run(fmt.Sprintf("%s/pieces %v damaged", tc.name, bad), func(t *testing.T) {
				b := data
				for _, k := range bad {
					b = flip(b, int64(k)*pieceSize+int64(len(data)%pieceSize)-1) // inside piece k, even the short last one
				}
				res := verifyBytes(t, b, tc.refs...)
				if !slices.Equal(res.BadPieces, bad) || res.BadPieceSize != pieceSize {
					t.Fatalf("bad pieces %v of %d bytes, want %v of %d", res.BadPieces, res.BadPieceSize, bad, pieceSize)
				}
				var me *MismatchError
				if !errors.As(res.Err, &me) || me.Ref != tc.ref || me.Part != "p" {
					t.Fatalf("got %v, want a %s mismatch on p", res.Err, tc.ref)
				}
				if me.Ref == "manifest" && (me.Piece != bad[0] || me.Want != mp.Pieces[bad[0]]) {
					t.Fatalf("got %v, want the manifest's piece %d named", res.Err, bad[0])
				}
				if res.Verified() || len(res.VerifiedBy) != 0 {
					t.Fatalf("damaged bytes verified by %v", res.VerifiedBy)
				}
				// A Checker fed as a stream has no second pass: the
				// verdict stands, without the bad pieces.
				if res := check("p", b, tc.refs, CheckOptions{}); !errors.Is(res.Err, ErrMismatch) || len(res.BadPieces) != 0 {
					t.Fatalf("streamed: got %v with bad pieces %v, want a mismatch without pieces", res.Err, res.BadPieces)
				}
			})
		}
	}
	t.Run("piece sums asked for at the manifest's size", func(t *testing.T) {
		res := check("p", flip(data, 2*pieceSize), []Reference{sums, manifest}, CheckOptions{PieceSize: pieceSize})
		if !slices.Equal(res.BadPieces, []int{2}) || len(res.Pieces) != 6 {
			t.Fatalf("bad pieces %v and %d piece sums, want [2] at once and 6 sums", res.BadPieces, len(res.Pieces))
		}
	})
	// The two references disagree: whichever the bytes match, the other
	// fails and the part is not accepted.
	t.Run("inconsistent/manifest sum wrong", func(t *testing.T) {
		wrong := manifest
		wrong.Sum = independentSums(data[1:])[SHA256] // its pieces still match the bytes
		res := verifyBytes(t, data, sums, wrong)
		var me *MismatchError
		if !errors.As(res.Err, &me) || me.Ref != "manifest" || me.Piece != -1 || res.Verified() {
			t.Fatalf("got %+v, want a whole-part manifest mismatch and the part not accepted", res)
		}
		if len(res.BadPieces) != 0 || slices.Contains(res.VerifiedBy, "manifest") {
			t.Fatalf("got bad pieces %v, verified by %v; want no piece blamed and no manifest label", res.BadPieces, res.VerifiedBy)
		}
	})
	t.Run("inconsistent/SHA256SUMS wrong", func(t *testing.T) {
		wrong := sums
		wrong.Sum = independentSums(data[1:])[SHA256]
		res := verifyBytes(t, data, wrong, manifest)
		var me *MismatchError
		if !errors.As(res.Err, &me) || me.Ref != "sha256:SHA256SUMS" || res.Verified() {
			t.Fatalf("got %+v, want a SHA256SUMS mismatch and the part not accepted", res)
		}
	})
}

// manifestOf returns the manifest line of part "p" holding data.
func manifestOf(t *testing.T, data []byte, pieceSize int64) ManifestPart {
	t.Helper()
	mp, err := BuildManifestPart("p", bytes.NewReader(data), pieceSize)
	if err != nil {
		t.Fatal(err)
	}
	return mp
}
