package integrity

import (
	"bytes"
	"compress/gzip"
	"errors"
	"slices"
	"strconv"
	"testing"
)

func TestGzipCheck(t *testing.T) {
	// Three members: text (Huffman-coded), random (stored blocks), text.
	data, starts := gzipMembers(t, textBytes(200_000), randBytes(6, 150_000), textBytes(50_000))
	total := int64(200_000 + 150_000 + 50_000)
	// Inside member 1's data, and the CRC32 in member 1's trailer.
	midMember1 := starts[1] + (starts[2]-starts[1])/2
	crcMember1 := starts[2] - 8

	t.Run("sound", func(t *testing.T) {
		res := check("site.tar.gz", data, nil, CheckOptions{Gzip: true})
		if res.Err != nil || !slices.Equal(res.VerifiedBy, []string{"gzip"}) || res.Uncompressed != total {
			t.Fatalf("got %+v, want verified by gzip, %d bytes inside", res, total)
		}
	})

	for _, tc := range []struct {
		name   string
		data   []byte
		cause  []error // any of these
		lo, hi int64   // the reported offset lies in [lo, hi]
	}{
		{"byte flipped in member 1's data", flip(data, midMember1), []error{ErrChecksum, ErrCorrupt}, midMember1, starts[2]},
		{"byte flipped in member 1's CRC", flip(data, crcMember1), []error{ErrChecksum}, starts[2], starts[2]},
		{"byte flipped in member 0's data", flip(data, 1000), []error{ErrChecksum, ErrCorrupt}, 1000, starts[1]},
		{"truncated inside a member", data[:midMember1], []error{ErrTruncated}, midMember1, midMember1},
		{"truncated inside a header", data[:starts[2]+5], []error{ErrTruncated}, starts[2] + 5, starts[2] + 5},
		{"trailing garbage", append(bytes.Clone(data), "garbage"...), []error{ErrTrailingData}, starts[3], starts[3]},
		{"trailing zeros", append(bytes.Clone(data), make([]byte, 512)...), []error{ErrTrailingData}, starts[3], starts[3]},
		{"not gzip", randBytes(7, 1000), []error{ErrNotGzip}, 0, 10},
		{"empty", nil, []error{ErrTruncated}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := check("site.tar.gz.3", tc.data, nil, CheckOptions{Gzip: true})
			var fe *FormatError
			if !errors.As(res.Err, &fe) || fe.Part != "site.tar.gz.3" || fe.Format != "gzip" {
				t.Fatalf("got %v, want a gzip FormatError in site.tar.gz.3", res.Err)
			}
			if !slices.ContainsFunc(tc.cause, func(c error) bool { return errors.Is(res.Err, c) }) || !errors.Is(res.Err, ErrFormat) {
				t.Fatalf("got %v, want one of %v", res.Err, tc.cause)
			}
			if fe.Offset < tc.lo || fe.Offset > tc.hi {
				t.Fatalf("offset %d, want within [%d, %d]: %v", fe.Offset, tc.lo, tc.hi, res.Err)
			}
			if len(res.VerifiedBy) != 0 || res.Uncompressed != 0 {
				t.Fatalf("a broken part must not be verified: %+v", res)
			}
		})
	}

	t.Run("the message names the damaged member", func(t *testing.T) {
		res := check("site.tar.gz.3", flip(data, midMember1), nil, CheckOptions{Gzip: true})
		want := "member 1 (starts at byte " + itoa(starts[1]) + ")"
		if res.Err == nil || !bytes.Contains([]byte(res.Err.Error()), []byte(want)) {
			t.Fatalf("%v does not say %q", res.Err, want)
		}
	})
}

func TestGzipCheckWithReferences(t *testing.T) {
	data, _ := gzipMembers(t, textBytes(10_000))
	ref := Reference{Algo: SHA256, Sum: independentSums(data)[SHA256], Origin: "SHA256SUMS"}
	res := check("p.gz", data, []Reference{ref}, CheckOptions{Gzip: true})
	if !slices.Equal(res.VerifiedBy, []string{"sha256:SHA256SUMS", "gzip"}) {
		t.Fatalf("verified by %v", res.VerifiedBy)
	}
	// A reference mismatch is reported before a structural error.
	res = check("p.gz", flip(data, 100), []Reference{ref}, CheckOptions{Gzip: true})
	var me *MismatchError
	if !errors.As(res.Err, &me) {
		t.Fatalf("got %v, want the mismatch first", res.Err)
	}
}

func TestCheckerCloseStopsDecoder(t *testing.T) {
	data, _ := gzipMembers(t, randBytes(8, 1<<20))
	c := NewChecker("p", int64(len(data)), nil, CheckOptions{Gzip: true})
	c.Write(data[:len(data)/2])
	c.Close()
	select {
	case <-c.gz.done:
	default:
		t.Fatal("the decoder goroutine still runs after Close")
	}
	if _, err := c.Write(data); !errors.Is(err, ErrCheckerDone) {
		t.Fatalf("Write after Close: %v", err)
	}
	if res := c.Result(); !errors.Is(res.Err, ErrCheckerDone) {
		t.Fatalf("Result after Close: %v", res.Err)
	}
}

// A decoder that gave up early must not block the writer.
func TestCheckerKeepsHashingAfterDecoderFails(t *testing.T) {
	data := randBytes(9, 8<<20)
	ref := Reference{Algo: SHA256, Sum: independentSums(data)[SHA256], Origin: "SHA256SUMS"}
	res := check("p", data, []Reference{ref}, CheckOptions{Gzip: true})
	if !errors.Is(res.Err, ErrNotGzip) || !slices.Equal(res.VerifiedBy, []string{"sha256:SHA256SUMS"}) {
		t.Fatalf("got %+v", res)
	}
}

func TestBitrixVolumeCheck(t *testing.T) {
	tar := randBytes(10, 40*512)
	good := bitrixVolume(t, 7, uint32(len(tar)), tar)
	for _, tc := range []struct {
		name   string
		data   []byte
		cause  error
		format string
	}{
		{"first volume", good, nil, ""},
		{"later volume", bitrixVolume(t, -1, uint32(len(tar)), tar), nil, ""},
		{"BX too big", bitrixVolume(t, 7, uint32(len(tar)+512), tar), ErrBitrixSize, "bitrix"},
		{"BX too small", bitrixVolume(t, 7, uint32(len(tar)-512), tar), ErrBitrixSize, "bitrix"},
		{"not whole blocks", bitrixVolume(t, 7, uint32(len(tar)-100), tar[:len(tar)-100]), ErrBitrixSize, "bitrix"},
		{"plain gzip, no header", func() []byte { d, _ := gzipMembers(t, tar); return d }(), ErrBitrixHeader, "bitrix"},
		{"first member not empty", func() []byte {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Extra = bitrixHead(7, uint32(len(tar)))[12:22] // same fields, but the member holds a byte
			zw.Write([]byte("x"))
			zw.Close()
			body, _ := gzipMembers(t, tar)
			return append(b.Bytes(), body...)
		}(), ErrBitrixHeader, "bitrix"},
		{"byte flipped in the tar data", flip(good, int64(len(good)-3000)), ErrFormat, "gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := check("site.tar.gz", tc.data, nil, CheckOptions{Bitrix: true})
			if tc.format == "" {
				if res.Err != nil || !slices.Equal(res.VerifiedBy, []string{"gzip", "bitrix"}) {
					t.Fatalf("got %+v, want verified by gzip and bitrix", res)
				}
				if res.Bitrix == nil || res.Bitrix.TarBytes != int64(len(tar)) {
					t.Fatalf("header %+v", res.Bitrix)
				}
				return
			}
			var fe *FormatError
			if !errors.As(res.Err, &fe) || fe.Format != tc.format || (tc.cause != nil && !errors.Is(res.Err, tc.cause)) {
				t.Fatalf("got %v, want a %s error (%v)", res.Err, tc.format, tc.cause)
			}
			if slices.Contains(res.VerifiedBy, "bitrix") {
				t.Fatal("a broken volume must not be verified by bitrix")
			}
		})
	}
	t.Run("LN is reported", func(t *testing.T) {
		res := check("site.tar.gz", good, nil, CheckOptions{Bitrix: true})
		if res.Bitrix == nil || res.Bitrix.LastVolume != 7 {
			t.Fatalf("header %+v, want last volume 7", res.Bitrix)
		}
		res = check("site.tar.gz.3", bitrixVolume(t, -1, uint32(len(tar)), tar), nil, CheckOptions{Bitrix: true})
		if res.Bitrix == nil || res.Bitrix.LastVolume != -1 {
			t.Fatalf("header %+v, want no last volume", res.Bitrix)
		}
	})
}

func TestParseBitrixVolumeHeader(t *testing.T) {
	first := bitrixHead(12, 1<<20)
	later := bitrixHead(-1, 4096)
	noExtra := bytes.Clone(first)
	noExtra[3] = 0
	shortXLEN := bytes.Clone(first)
	shortXLEN[10] = 4
	for _, tc := range []struct {
		name string
		b    []byte
		want BitrixHeader
		ok   bool
	}{
		{"first volume", first, BitrixHeader{LastVolume: 12, TarBytes: 1 << 20}, true},
		{"later volume", later, BitrixHeader{LastVolume: -1, TarBytes: 4096}, true},
		{"no FEXTRA", noExtra, BitrixHeader{}, false},
		{"extra field too short", shortXLEN, BitrixHeader{}, false},
		{"too few bytes", first[:20], BitrixHeader{}, false},
		{"plain gzip", func() []byte { d, _ := gzipMembers(t, []byte("x")); return d }(), BitrixHeader{}, false},
		{"not gzip", []byte("BX this is not a gzip header at all"), BitrixHeader{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseBitrixVolumeHeader(tc.b)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("got %+v %v, want %+v %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestDetectChecks(t *testing.T) {
	gz, _ := gzipMembers(t, []byte("x"))
	bx := bitrixHead(2, 512)
	for _, tc := range []struct {
		name string
		head []byte
		set  []string
		want CheckOptions
	}{
		{"site.tar.gz", bx, []string{"site.tar.gz", "site.tar.gz.1"}, CheckOptions{Gzip: true, Bitrix: true}},
		{"site.tar.gz.1", bitrixHead(-1, 512), nil, CheckOptions{Gzip: true, Bitrix: true}},
		{"db.tar.gz", gz, []string{"db.tar.gz"}, CheckOptions{Gzip: true}},
		{"db.TGZ", gz, nil, CheckOptions{Gzip: true}},
		{"db.tar.gz", gz, []string{"db.tar.gz", "db.tar.gz.1"}, CheckOptions{}}, // split at arbitrary bytes
		{"db.tar.gz.000", gz, []string{"db.tar.gz.000", "db.tar.gz.001"}, CheckOptions{}},
		{"db.gz", []byte("not gzip"), nil, CheckOptions{}},
		{"db.tar", gz, nil, CheckOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DetectChecks(tc.name, tc.head, tc.set); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestStreamChecker(t *testing.T) {
	data, starts := gzipMembers(t, randBytes(12, 60_000), randBytes(11, 100_000))
	end := int64(len(data))
	// Member 1 starts inside part 1; part 3 holds the second half of member 1.
	cut := []int64{0, starts[1] / 3, starts[1] + 10, (starts[1] + end) / 2, end}
	names := []string{"db.tar.gz.000", "db.tar.gz.001", "db.tar.gz.002", "db.tar.gz.003"}
	run := func(d []byte, parts int) error {
		s := NewStreamChecker()
		defer s.Close()
		for i := 0; i < parts; i++ {
			s.StartPart(names[i])
			end := min(cut[i+1], int64(len(d)))
			s.Write(d[cut[i]:end])
		}
		return s.Finish()
	}
	if err := run(data, 4); err != nil {
		t.Fatalf("a sound split archive: %v", err)
	}
	t.Run("flipped byte", func(t *testing.T) {
		at := starts[1] + 80_000 // inside part 3, in member 1's stored data
		err := run(flip(data, at), 4)
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Part != "db.tar.gz.003" || fe.Offset < at-cut[3] || !errors.Is(err, ErrChecksum) {
			t.Fatalf("got %v, want a checksum error in db.tar.gz.003 at or after byte %d", err, at-cut[3])
		}
		want := "starts in db.tar.gz.001 at byte " + itoa(starts[1]-cut[1])
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Fatalf("%v does not say %q", err, want)
		}
	})
	t.Run("missing last part", func(t *testing.T) {
		err := run(data, 3)
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Part != "db.tar.gz.002" || fe.Offset != cut[3]-cut[2] || !errors.Is(err, ErrTruncated) {
			t.Fatalf("got %v, want truncated at the end of db.tar.gz.002", err)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
