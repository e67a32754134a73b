package integrity

import (
	"strings"
	"testing"
)

// TestStrongest: a whole-part SHA-256 (or a manifest proven piece by
// piece) makes the proof pass skip weaker digests; a weaker reference
// that is the only one is kept.
func TestStrongest(t *testing.T) {
	sums := Reference{Algo: SHA256, Sum: strings.Repeat("ab", 32), Origin: "SHA256SUMS"}
	etag := Reference{Algo: MultipartMD5, Sum: strings.Repeat("cd", 16), Origin: OriginETag, PartSizes: []int64{5 << 20}}
	crc := Reference{Algo: CRC32C, Sum: "01020304", Origin: OriginS3}
	for _, tc := range []struct {
		name     string
		refs     []Reference
		manifest bool
		want     []Reference
	}{
		{"sums beside an etag", []Reference{etag, sums, crc}, false, []Reference{sums}},
		{"etag alone", []Reference{etag}, false, []Reference{etag}},
		{"etag and crc alone", []Reference{etag, crc}, false, []Reference{etag, crc}},
		{"a proven manifest beside an etag", []Reference{etag}, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Strongest(tc.refs, tc.manifest)
			if len(got) != len(tc.want) {
				t.Fatalf("kept %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].Label() != tc.want[i].Label() {
					t.Fatalf("kept %v, want %v", got, tc.want)
				}
			}
		})
	}
}
