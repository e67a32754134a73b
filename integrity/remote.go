package integrity

import (
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
)

// ParseETag reads an S3-style ETag (quotes allowed). A plain MD5 ETag is
// 32 hex digits: parts is 0. A multipart ETag is 32 hex digits, "-" and
// the number of upload parts N ≥ 1: parts is N. Anything else (a weak
// ETag, an nginx "mtime-size" tag) is not ok.
func ParseETag(etag string) (md5hex string, parts int, ok bool) {
	etag = strings.Trim(strings.TrimSpace(etag), `"`)
	sum, count, multi := strings.Cut(etag, "-")
	if !isHexLen(sum, 32) {
		return "", 0, false
	}
	if !multi {
		return strings.ToLower(sum), 0, true
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 || strconv.Itoa(n) != count {
		return "", 0, false
	}
	return strings.ToLower(sum), n, true
}

// ETagReference turns an S3 ETag into a reference, when it is one:
//
//   - a plain MD5 ETag (32 hex digits) is the MD5 of the object: an MD5
//     reference with Origin "etag";
//   - a multipart ETag ("…-N") is an MultipartMD5 reference only when
//     partSizes holds the N real upload part sizes (from HEAD or GET with
//     partNumber, or GetObjectAttributes) and they add up to size; part
//     sizes are never guessed;
//   - anything else is no reference.
//
// Call it only for S3 or S3-compatible sources, and not when SSEHidesMD5
// says the ETag of an encrypted object is not an MD5: a 32-hex ETag from
// another kind of server is not known to be an MD5.
func ETagReference(etag string, size int64, partSizes []int64) (Reference, bool) {
	sum, parts, ok := ParseETag(etag)
	if !ok {
		return Reference{}, false
	}
	if parts == 0 {
		return Reference{Algo: MD5, Sum: sum, Origin: OriginETag}, true
	}
	if len(partSizes) != parts {
		return Reference{}, false
	}
	var total int64
	for _, n := range partSizes {
		if n < 0 || (n == 0 && parts > 1) {
			return Reference{}, false
		}
		total += n
	}
	if total != size {
		return Reference{}, false
	}
	return Reference{Algo: MultipartMD5, Sum: sum, Origin: OriginETag, PartSizes: append([]int64(nil), partSizes...)}, true
}

// SSEHidesMD5 reports whether S3 response headers say the object is
// encrypted in a way that makes its ETag something other than an MD5
// (SSE-KMS, DSSE-KMS, SSE-C). SSE-S3 (AES256) keeps MD5 ETags.
func SSEHidesMD5(h http.Header) bool {
	switch strings.ToLower(h.Get("X-Amz-Server-Side-Encryption")) {
	case "aws:kms", "aws:kms:dsse":
		return true
	}
	return h.Get("X-Amz-Server-Side-Encryption-Customer-Algorithm") != ""
}

// s3ChecksumHeaders are the S3 additional checksum headers, as returned
// with checksum mode enabled.
var s3ChecksumHeaders = []struct{ header, algo string }{
	{"X-Amz-Checksum-Crc32", CRC32},
	{"X-Amz-Checksum-Crc32c", CRC32C},
	{"X-Amz-Checksum-Crc64nvme", CRC64NVME},
	{"X-Amz-Checksum-Sha1", SHA1},
	{"X-Amz-Checksum-Sha256", SHA256},
}

// S3ChecksumReferences returns the whole-object checksums in S3 response
// headers (x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1, -sha256), each
// an Origin "s3" reference with the base64 value turned to hex. A
// composite checksum (value "…-N", or x-amz-checksum-type COMPOSITE) is a
// checksum of the part checksums, not of the object: it is skipped.
func S3ChecksumReferences(h http.Header) []Reference {
	if strings.EqualFold(h.Get("X-Amz-Checksum-Type"), "COMPOSITE") {
		return nil
	}
	var refs []Reference
	for _, c := range s3ChecksumHeaders {
		if r, ok := S3ChecksumReference(c.algo, h.Get(c.header)); ok {
			refs = append(refs, r)
		}
	}
	return refs
}

// S3ChecksumReference turns one S3 checksum value (base64, as in the
// x-amz-checksum-* headers or minio-go's ObjectInfo.Checksum* fields) of
// algorithm algo into a reference. A composite "…-N" value, a value of the
// wrong length or an unknown algorithm is no reference.
func S3ChecksumReference(algo, value string) (Reference, bool) {
	value = strings.TrimSpace(value)
	if value == "" || strings.Contains(value, "-") {
		return Reference{}, false
	}
	b, ok := decodeBase64(value)
	if !ok || DigestSize(algo) == 0 || len(b) != DigestSize(algo) || algo == MultipartMD5 {
		return Reference{}, false
	}
	return Reference{Algo: algo, Sum: hex.EncodeToString(b), Origin: OriginS3}, true
}

// HTTPReferences returns the whole-representation digests an HTTP response
// states, each with Origin "http":
//
//   - Content-MD5 (RFC 1864, base64 MD5);
//   - Digest (RFC 3230): sha-256, sha-512, sha (SHA-1) and md5 in base64,
//     crc32c in hex; other algorithms, including id-sha-*, are skipped;
//   - Repr-Digest (RFC 9530): sha-256, sha-512, sha and md5 as
//     structured byte sequences (":base64:").
//
// Pass the headers of a full (200) response or a HEAD: Content-MD5 of a
// 206 describes only the range sent. Content-Digest is not used for the
// same reason. Identical statements are returned once.
func HTTPReferences(h http.Header) []Reference {
	var refs []Reference
	add := func(algo string, b []byte) {
		if len(b) != DigestSize(algo) {
			return
		}
		r := Reference{Algo: algo, Sum: hex.EncodeToString(b), Origin: OriginHTTP}
		for _, have := range refs {
			if have.Algo == r.Algo && have.Sum == r.Sum {
				return
			}
		}
		refs = append(refs, r)
	}
	for _, v := range h.Values("Content-Md5") {
		if b, ok := decodeBase64(strings.TrimSpace(v)); ok {
			add(MD5, b)
		}
	}
	for _, item := range listItems(h.Values("Digest")) {
		key, val, _ := strings.Cut(item, "=")
		algo := httpDigestAlgos[strings.ToLower(strings.TrimSpace(key))]
		val = strings.TrimSpace(val)
		switch {
		case algo == "":
		case algo == CRC32C:
			if len(val) >= 1 && len(val) <= 8 && isHexLen(val, len(val)) {
				b, _ := hex.DecodeString(strings.Repeat("0", 8-len(val)) + val)
				add(CRC32C, b)
			}
		default:
			if b, ok := decodeBase64(val); ok {
				add(algo, b)
			}
		}
	}
	for _, item := range listItems(h.Values("Repr-Digest")) {
		key, val, _ := strings.Cut(item, "=")
		algo := reprDigestAlgos[strings.TrimSpace(key)]
		val, _, _ = strings.Cut(strings.TrimSpace(val), ";") // drop parameters
		if algo == "" || len(val) < 2 || val[0] != ':' || val[len(val)-1] != ':' {
			continue
		}
		if b, ok := decodeBase64(val[1 : len(val)-1]); ok {
			add(algo, b)
		}
	}
	return refs
}

var (
	// httpDigestAlgos maps RFC 3230 Digest algorithm names (lowercased).
	httpDigestAlgos = map[string]string{"sha-256": SHA256, "sha-512": SHA512, "sha": SHA1, "md5": MD5, "crc32c": CRC32C}
	// reprDigestAlgos maps RFC 9530 keys (lowercase by the syntax).
	reprDigestAlgos = map[string]string{"sha-256": SHA256, "sha-512": SHA512, "sha": SHA1, "md5": MD5}
)

// listItems splits comma-separated header values into trimmed items.
func listItems(values []string) []string {
	var items []string
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
	}
	return items
}

// decodeBase64 accepts standard base64 with or without padding.
func decodeBase64(s string) ([]byte, bool) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, true
	}
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b, true
	}
	return nil, false
}
