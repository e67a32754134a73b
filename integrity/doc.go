// Package integrity proves parts correct. It owns references (independent
// statements of what a part must be), the parsers that find them in sum
// files, haul manifests, S3 and HTTP headers, and the one-pass Checker that
// tests a part against all of them plus the archive's own structure.
// It never prints and never touches the network.
//
// # Checking a part
//
//  1. Gather references: ParseReferenceFile for each reference file beside
//     the parts (IsReferenceFile), ETagReference, S3ChecksumReferences and
//     HTTPReferences for what the source states about each object.
//  2. Choose structural checks with DetectChecks from the part's name, its
//     first bytes and the set's names (gzip members; Bitrix volume headers).
//  3. Feed the part's bytes in order to a Checker (NewChecker, or
//     VerifyFile for a file on disk). Every digest the references need is
//     computed once in that single pass; a manifest is proven by its piece
//     hashes, or by the whole-part SHA-256 when another reference needs
//     that anyway (then VerifyFile reads a part that fails a second time
//     to find its bad pieces); the gzip decoder runs beside the hashing in
//     its own goroutine.
//  4. Result: the labels of what passed ("sha256:SHA256SUMS", "md5:etag",
//     "crc32c:s3", "manifest", "gzip", "bitrix"), the bad pieces when a
//     manifest can tell them, and the first failure: a *MismatchError or a
//     *FormatError naming the part and the byte offset. No failure and no
//     label means the part is unverified, never verified.
//
// References that cannot be checked (an unknown algorithm, a multipart ETag
// without part sizes, malformed hex) are ignored, not failed.
//
// # Manifest format
//
// A haul manifest (NAME.haul.json) states the size and SHA-256 of each part
// of a set and the SHA-256 of each fixed-size piece of it, so that a bad
// part can be repaired piece by piece. It is JSON Lines (UTF-8, one JSON
// object per line) so that it can be written and read as a stream:
//
//		{"haul_manifest":1,"piece_size":8388608,"created":"2026-11-20T03:00:00Z"}
//		{"name":"site.tar.gz","size":12582912,"sha256":"<64 hex>","pieces":["<64 hex>","<64 hex>"]}
//		{"name":"site.tar.gz.1","size":0,"sha256":"e3b0c442…","pieces":[]}
//		{"end":true,"parts":2}
//
//	 1. The first line is the header. "haul_manifest" is the format version
//	    (1); a reader refuses any other. "piece_size" is the piece size in
//	    bytes; "created" is an RFC 3339 time in UTC.
//	 2. Each following line is a part: "name" is its base name (no "/"),
//	    "size" its length in bytes, "sha256" the lowercase hex SHA-256 of the
//	    whole part, and "pieces" the SHA-256 of bytes [i*piece_size,
//	    (i+1)*piece_size) for i = 0, 1, …, the last piece shorter; an empty
//	    part has no pieces. A name appears once.
//	 3. The last line is {"end":true,"parts":N} with N the number of part
//	    lines. A manifest without it was cut short and is refused.
//	 4. Blank lines are ignored, and so are unknown fields within a line; a
//	    change that old readers cannot ignore gets a new version number.
//
// The same bytes can be checked by hand: the "sha256" of a part is what
// sha256sum prints for it, and piece i is
// `dd if=PART bs=PIECE_SIZE skip=i count=1 | sha256sum`.
package integrity
