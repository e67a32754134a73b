package integrity

import (
	"bytes"
	"encoding/hex"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/haul-dev/haul/internal/gen"
)

// FuzzParseETag: the first line is an ETag, the second (optional) a
// comma-separated list of upload part sizes. An accepted ETag is 32
// lowercase hex digits and, for a multipart one, its part count, and it
// prints back to itself; ETagReference makes a reference only from
// sizes that are the part count's and add up to the size.
func FuzzParseETag(f *testing.F) {
	gen.AddSeeds(f, "FuzzParseETag")
	f.Fuzz(func(t *testing.T, in []byte) {
		etag, sizesLine := cutName(in)
		sum, parts, ok := ParseETag(etag)
		if !ok {
			if _, ok := ETagReference(etag, 0, nil); ok {
				t.Fatalf("ETagReference took %q, which ParseETag refuses", etag)
			}
			return
		}
		if !isHexLen(sum, 32) || strings.ToLower(sum) != sum || parts < 0 {
			t.Fatalf("%q gave sum %q parts %d", etag, sum, parts)
		}
		again := sum
		if parts > 0 {
			again += "-" + strconv.Itoa(parts)
		}
		if s2, p2, ok := ParseETag(`"` + again + `"`); !ok || s2 != sum || p2 != parts {
			t.Fatalf("%q → %q reads back as %q %d %v", etag, again, s2, p2, ok)
		}
		var sizes []int64
		var size int64
		for _, f := range strings.Split(string(sizesLine), ",") {
			if n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64); err == nil && n >= 0 && n < 1<<40 {
				sizes = append(sizes, n)
				size += n
			}
		}
		r, ok := ETagReference(etag, size, sizes)
		switch {
		case !ok:
		case parts == 0 && (r.Algo != MD5 || r.Sum != sum):
			t.Fatalf("plain ETag %q gave %+v", etag, r)
		case parts > 0 && (r.Algo != MultipartMD5 || len(r.PartSizes) != parts):
			t.Fatalf("multipart ETag %q with sizes %v gave %+v", etag, sizes, r)
		}
	})
}

// FuzzHTTPReferences: each line "Header: value" is one response header.
// Every reference stated is a known digest of the right length in hex,
// from HTTP, stated once, and the result does not depend on anything but
// the headers.
func FuzzHTTPReferences(f *testing.F) {
	gen.AddSeeds(f, "FuzzHTTPReferences")
	f.Fuzz(func(t *testing.T, in []byte) {
		h := http.Header{}
		for _, line := range bytes.Split(in, []byte("\n")) {
			k, v, ok := strings.Cut(string(line), ":")
			if ok && k != "" {
				h.Add(k, v)
			}
		}
		refs := HTTPReferences(h)
		seen := map[string]bool{}
		for _, r := range refs {
			b, err := hex.DecodeString(r.Sum)
			if err != nil || DigestSize(r.Algo) == 0 || len(b) != DigestSize(r.Algo) || r.Origin != OriginHTTP {
				t.Fatalf("headers %v gave %+v", h, r)
			}
			if seen[r.Algo+r.Sum] {
				t.Fatalf("headers %v state %s %s twice", h, r.Algo, r.Sum)
			}
			seen[r.Algo+r.Sum] = true
		}
		if again := HTTPReferences(h); !reflect.DeepEqual(again, refs) {
			t.Fatalf("two reads of %v differ: %+v, %+v", h, refs, again)
		}
	})
}
