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
