package integrity

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Algorithms a Reference can name. Values are lowercase so they print as-is
// in verified_by labels ("sha256:SHA256SUMS").
const (
	SHA256    = "sha256"
	SHA512    = "sha512"
	SHA1      = "sha1"
	MD5       = "md5"
	CRC32     = "crc32"  // IEEE, as S3 x-amz-checksum-crc32
	CRC32C    = "crc32c" // Castagnoli, as S3 x-amz-checksum-crc32c
	CRC64NVME = "crc64nvme"
	// MultipartMD5 is an S3 multipart ETag: MD5 of the concatenated binary
	// MD5s of each upload part, "-N". PartSizes must hold the real sizes.
	MultipartMD5 = "md5-multipart"
)

// Origins of a Reference, used in verified_by labels.
const (
	OriginETag     = "etag"     // S3 or HTTP ETag
	OriginS3       = "s3"       // S3 additional checksum
	OriginHTTP     = "http"     // Content-MD5, Digest, Repr-Digest
	OriginManifest = "manifest" // a haul manifest
)

// Labels of the structural checks in verified_by.
const (
	LabelGzip   = "gzip"   // every gzip member's CRC32 and ISIZE
	LabelBitrix = "bitrix" // the Bitrix volume header agrees with the volume
)

// Reference is one independent statement of what a part must be.
type Reference struct {
	// Algo is one of the algorithm constants above.
	Algo string `json:"algo"`
	// Sum is the expected digest, lowercase hex (for MultipartMD5 the hex
	// of the final MD5, without the "-N" suffix).
	Sum string `json:"sum"`
	// Origin names where the statement came from: a sum file's base name
	// ("SHA256SUMS", "site.tar.gz.sha256"), or one of the Origin constants.
	Origin string `json:"origin"`
	// PartSizes are the S3 upload part sizes, in order, for MultipartMD5.
	PartSizes []int64 `json:"part_sizes,omitempty"`
	// PieceSize and Pieces are set by a haul manifest: the SHA-256 (hex) of
	// each PieceSize-long piece of the part, the last one shorter.
	PieceSize int64    `json:"piece_size,omitempty"`
	Pieces    []string `json:"pieces,omitempty"`
}

// Label is the name a passed reference has in verified_by: "sha256:SHA256SUMS",
// "md5:etag", "crc32c:s3", or "manifest".
func (r Reference) Label() string {
	if r.Origin == OriginManifest {
		return OriginManifest
	}
	algo := r.Algo
	if algo == MultipartMD5 {
		algo = MD5
	}
	return algo + ":" + r.Origin
}

// SumBytes returns Sum decoded from hex.
func (r Reference) SumBytes() ([]byte, error) {
	b, err := hex.DecodeString(strings.ToLower(r.Sum))
	if err != nil {
		return nil, fmt.Errorf("reference %s: bad hex %q: %w", r.Label(), r.Sum, err)
	}
	return b, nil
}

// Checkable reports whether a Checker can test a part against r: the
// algorithm is known, Sum is hex of the algorithm's digest length, a
// MultipartMD5 has PartSizes, and piece hashes (if any) are well-formed.
// References that are not checkable are ignored by the Checker, never
// counted as failures.
func Checkable(r Reference) bool {
	size := DigestSize(r.Algo)
	if size == 0 {
		return false
	}
	if !isHexLen(r.Sum, 2*size) && !r.hasPieces() {
		return false
	}
	if r.Algo == MultipartMD5 {
		if len(r.PartSizes) == 0 {
			return false
		}
		for _, n := range r.PartSizes {
			if n < 0 {
				return false
			}
		}
	}
	return true
}

// hasPieces reports whether r carries usable piece hashes: then the
// pieces alone pin every byte of the part.
func (r Reference) hasPieces() bool {
	if r.Algo != SHA256 || r.PieceSize <= 0 || len(r.Pieces) == 0 {
		return false
	}
	for _, p := range r.Pieces {
		if !isHexLen(p, 64) {
			return false
		}
	}
	return true
}

// DigestSize returns the length in bytes of algo's digest, or 0 for an
// algorithm haul does not compute.
func DigestSize(algo string) int {
	switch algo {
	case SHA256:
		return 32
	case SHA512:
		return 64
	case SHA1:
		return 20
	case MD5, MultipartMD5:
		return 16
	case CRC32, CRC32C:
		return 4
	case CRC64NVME:
		return 8
	}
	return 0
}

// isHexLen reports whether s is n hex digits (either case).
func isHexLen(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
