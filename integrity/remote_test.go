package integrity

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"testing"
)

func b64(hexSum string) string {
	b, _ := hex.DecodeString(hexSum)
	return base64.StdEncoding.EncodeToString(b)
}

func TestETagReference(t *testing.T) {
	const sum = "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name  string
		etag  string
		size  int64
		parts []int64
		want  Reference
		ok    bool
	}{
		{"single part", sum, 10, nil, Reference{Algo: MD5, Sum: sum, Origin: OriginETag}, true},
		{"quoted, upper case", `"` + "0123456789ABCDEF0123456789ABCDEF" + `"`, 10, nil, Reference{Algo: MD5, Sum: sum, Origin: OriginETag}, true},
		{"multipart with its part sizes", sum + "-2", 15, []int64{10, 5}, Reference{Algo: MultipartMD5, Sum: sum, Origin: OriginETag, PartSizes: []int64{10, 5}}, true},
		{"multipart without part sizes", sum + "-2", 15, nil, Reference{}, false},
		{"multipart, wrong number of sizes", sum + "-3", 15, []int64{10, 5}, Reference{}, false},
		{"multipart, sizes do not add up", sum + "-2", 16, []int64{10, 5}, Reference{}, false},
		{"weak", `W/"` + sum + `"`, 10, nil, Reference{}, false},
		{"nginx", `"5f1a2b3c-1a2b"`, 10, nil, Reference{}, false},
		{"too short", "0123456789abcdef", 10, nil, Reference{}, false},
		{"not hex", "0123456789abcdef0123456789abcdeg", 10, nil, Reference{}, false},
		{"bad count", sum + "-0", 10, []int64{}, Reference{}, false},
		{"empty", "", 0, nil, Reference{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ETagReference(tc.etag, tc.size, tc.parts)
			if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v %v, want %+v %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestSSEHidesMD5(t *testing.T) {
	for _, tc := range []struct {
		h    http.Header
		want bool
	}{
		{http.Header{}, false},
		{http.Header{"X-Amz-Server-Side-Encryption": {"AES256"}}, false},
		{http.Header{"X-Amz-Server-Side-Encryption": {"aws:kms"}}, true},
		{http.Header{"X-Amz-Server-Side-Encryption-Customer-Algorithm": {"AES256"}}, true},
	} {
		if got := SSEHidesMD5(tc.h); got != tc.want {
			t.Errorf("SSEHidesMD5(%v) = %v", tc.h, got)
		}
	}
}

// S3 checksum headers as a server sends them, checked end to end.
func TestS3ChecksumReferences(t *testing.T) {
	data := randBytes(30, 100_000)
	sums := independentSums(data)
	h := http.Header{}
	h.Set("x-amz-checksum-crc32", b64(sums[CRC32]))
	h.Set("x-amz-checksum-crc32c", b64(sums[CRC32C]))
	h.Set("x-amz-checksum-crc64nvme", b64(sums[CRC64NVME]))
	h.Set("x-amz-checksum-sha1", b64(sums[SHA1]))
	h.Set("x-amz-checksum-sha256", b64(sums[SHA256]))
	h.Set("x-amz-checksum-type", "FULL_OBJECT")
	refs := S3ChecksumReferences(h)
	want := []string{"crc32:s3", "crc32c:s3", "crc64nvme:s3", "sha1:s3", "sha256:s3"}
	res := check("p", data, refs, CheckOptions{})
	if res.Err != nil || !slices.Equal(res.VerifiedBy, want) {
		t.Fatalf("got %+v, want verified by %v", res, want)
	}
	for _, r := range refs {
		t.Run(r.Algo+" flipped byte", func(t *testing.T) {
			var me *MismatchError
			if res := check("p", flip(data, 5), []Reference{r}, CheckOptions{}); !errors.As(res.Err, &me) || me.Ref != r.Algo+":s3" {
				t.Fatalf("got %v", res.Err)
			}
		})
	}

	t.Run("composite values are skipped", func(t *testing.T) {
		h := http.Header{}
		h.Set("x-amz-checksum-crc32c", b64(sums[CRC32C])+"-3")
		h.Set("x-amz-checksum-sha256", b64(sums[SHA256]))
		if refs := S3ChecksumReferences(h); len(refs) != 1 || refs[0].Algo != SHA256 {
			t.Fatalf("got %+v, want only sha256", refs)
		}
		h.Set("x-amz-checksum-type", "COMPOSITE")
		if refs := S3ChecksumReferences(h); len(refs) != 0 {
			t.Fatalf("got %+v from a COMPOSITE object", refs)
		}
	})
	t.Run("malformed values are skipped", func(t *testing.T) {
		h := http.Header{}
		h.Set("x-amz-checksum-crc32", "not base64!")
		h.Set("x-amz-checksum-sha256", b64(sums[SHA1])) // wrong length
		if refs := S3ChecksumReferences(h); len(refs) != 0 {
			t.Fatalf("got %+v", refs)
		}
	})
}

func TestHTTPReferences(t *testing.T) {
	data := textBytes(3000)
	sums := independentSums(data)
	for _, tc := range []struct {
		name string
		h    http.Header
		want []Reference
	}{
		{"Content-MD5", http.Header{"Content-Md5": {b64(sums[MD5])}},
			[]Reference{{Algo: MD5, Sum: sums[MD5], Origin: OriginHTTP}}},
		{"Digest (RFC 3230)", http.Header{"Digest": {"SHA-256=" + b64(sums[SHA256]) + ", MD5=" + b64(sums[MD5]), "id-sha-256=" + b64(sums[SHA1]) + ",sha=" + b64(sums[SHA1])}},
			[]Reference{
				{Algo: SHA256, Sum: sums[SHA256], Origin: OriginHTTP},
				{Algo: MD5, Sum: sums[MD5], Origin: OriginHTTP},
				{Algo: SHA1, Sum: sums[SHA1], Origin: OriginHTTP},
			}},
		{"Digest crc32c in hex, leading zeros dropped", http.Header{"Digest": {"CRC32c=a72a4df"}},
			[]Reference{{Algo: CRC32C, Sum: "0a72a4df", Origin: OriginHTTP}}},
		{"Repr-Digest (RFC 9530)", http.Header{"Repr-Digest": {"sha-256=:" + b64(sums[SHA256]) + ":, sha-512=:" + b64(sums[SHA512]) + ":;p=1, unixsum=:AAA=:"}},
			[]Reference{
				{Algo: SHA256, Sum: sums[SHA256], Origin: OriginHTTP},
				{Algo: SHA512, Sum: sums[SHA512], Origin: OriginHTTP},
			}},
		{"the same statement twice is one reference", http.Header{"Content-Md5": {b64(sums[MD5])}, "Digest": {"md5=" + b64(sums[MD5])}},
			[]Reference{{Algo: MD5, Sum: sums[MD5], Origin: OriginHTTP}}},
		{"malformed values are skipped", http.Header{"Content-Md5": {"abc"}, "Digest": {"sha-256=%%%", "crc32c=123456789"}, "Repr-Digest": {"sha-256=" + b64(sums[SHA256])}}, nil},
		{"nothing", http.Header{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := HTTPReferences(tc.h); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
	// Digest's crc32c of "dog" is the RFC 3230 registry's example.
	if res := check("dog", []byte("dog"), HTTPReferences(http.Header{"Digest": {"crc32c=0a72a4df"}}), CheckOptions{}); !res.Verified() {
		t.Fatalf("crc32c of dog: %+v", res)
	}
	// And every HTTP reference checks the bytes it describes.
	h := http.Header{"Content-Md5": {b64(sums[MD5])}, "Repr-Digest": {"sha-256=:" + b64(sums[SHA256]) + ":"}}
	if res := check("p", data, HTTPReferences(h), CheckOptions{}); !slices.Equal(res.VerifiedBy, []string{"md5:http", "sha256:http"}) {
		t.Fatalf("got %+v", res)
	}
}
