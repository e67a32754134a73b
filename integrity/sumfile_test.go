package integrity

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const (
	h256a = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	h256b = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
	hmd5  = "098f6bcd4621d373cade4e832627b4f6"
	hsha1 = "a94a8fe5ccb19ba61c4c0875d41aa07ea6e7d3a3"
)

func TestIsReferenceFile(t *testing.T) {
	for name, want := range map[string]bool{
		"SHA256SUMS": true, "SHA512SUMS": true, "SHA1SUMS": true, "MD5SUMS": true, "sha256sums.txt": true,
		"site.tar.gz.sha256": true, "site.tar.gz.md5": true, "site.tar.gz.sha1": true, "site.tar.gz.sha512": true,
		"site.tar.gz.sha256sum": true, "site.tar.gz.MD5": true, "set.haul.json": true,
		"backups/2026/SHA256SUMS": true, "https://host/dir/site.tar.gz.sha256": true,
		"site.tar.gz": false, "site.tar.gz.1": false, ".sha256": false, "db.tar.zst.000": false,
		"SHA256SUMS.asc": false, "manifest.json": false, "site.json": false,
	} {
		if got := IsReferenceFile(name); got != want {
			t.Errorf("IsReferenceFile(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestParseSumFile(t *testing.T) {
	for _, tc := range []struct {
		name, file, text string
		want             map[string][]Reference
	}{
		{"GNU text and binary", "SHA256SUMS",
			h256a + "  site.tar.gz\n" + h256b + " *site.tar.gz.1\n",
			map[string][]Reference{
				"site.tar.gz":   {{Algo: SHA256, Sum: h256a, Origin: "SHA256SUMS"}},
				"site.tar.gz.1": {{Algo: SHA256, Sum: h256b, Origin: "SHA256SUMS"}},
			}},
		{"escaped names", "SHA256SUMS",
			`\` + h256a + `  we\\ird\nname` + "\n" + `\SHA256 (back\\slash) = ` + h256b + "\n",
			map[string][]Reference{
				"we\\ird\nname": {{Algo: SHA256, Sum: h256a, Origin: "SHA256SUMS"}},
				"back\\slash":   {{Algo: SHA256, Sum: h256b, Origin: "SHA256SUMS"}},
			}},
		{"BSD lines take the algorithm from the tag", "CHECKSUMS",
			"SHA256 (site.tar.gz) = " + h256a + "\nMD5 (site.tar.gz) = " + hmd5 + "\nSHA1(site.tar.gz)= " + hsha1 + "\n",
			map[string][]Reference{"site.tar.gz": {
				{Algo: SHA256, Sum: h256a, Origin: "CHECKSUMS"},
				{Algo: MD5, Sum: hmd5, Origin: "CHECKSUMS"},
				{Algo: SHA1, Sum: hsha1, Origin: "CHECKSUMS"},
			}}},
		{"algorithm from the hash length", "sums.txt",
			hmd5 + "  a\n" + strings.ToUpper(h256a) + "  b\n",
			map[string][]Reference{
				"a": {{Algo: MD5, Sum: hmd5, Origin: "sums.txt"}},
				"b": {{Algo: SHA256, Sum: h256a, Origin: "sums.txt"}},
			}},
		{"leading ./ and directories match by base name", "MD5SUMS",
			hmd5 + "  ./site.tar.gz\n" + hmd5 + "  backups/site.tar.gz.1\n",
			map[string][]Reference{
				"site.tar.gz":   {{Algo: MD5, Sum: hmd5, Origin: "MD5SUMS"}},
				"site.tar.gz.1": {{Algo: MD5, Sum: hmd5, Origin: "MD5SUMS"}},
			}},
		{"a name without a directory wins", "SHA256SUMS",
			h256a + "  other/x\n" + h256b + "  x\n",
			map[string][]Reference{"x": {{Algo: SHA256, Sum: h256b, Origin: "SHA256SUMS"}}}},
		{"the same name in two directories is ambiguous", "SHA256SUMS",
			h256a + "  a/x\n" + h256b + "  b/x\n" + h256a + "  y\n",
			map[string][]Reference{"y": {{Algo: SHA256, Sum: h256a, Origin: "SHA256SUMS"}}}},
		{"a per-file sum file holding only the hash", "site.tar.gz.sha256",
			h256a + "\n",
			map[string][]Reference{"site.tar.gz": {{Algo: SHA256, Sum: h256a, Origin: "site.tar.gz.sha256"}}}},
		{"a per-file sum file of standard input", "site.tar.gz.md5",
			hmd5 + "  -\n",
			map[string][]Reference{"site.tar.gz": {{Algo: MD5, Sum: hmd5, Origin: "site.tar.gz.md5"}}}},
		{"CRLF, BOM, comments, blank lines, duplicates", "SHA1SUMS",
			"\uFEFF# made by hand\r\n\r\n" + hsha1 + "  a\r\n" + hsha1 + "  a\r\n",
			map[string][]Reference{"a": {{Algo: SHA1, Sum: hsha1, Origin: "SHA1SUMS"}}}},
		{"origin is the base name without a query", "https://host/set/SHA256SUMS?X-Amz-Signature=secret",
			h256a + "  a\n",
			map[string][]Reference{"a": {{Algo: SHA256, Sum: h256a, Origin: "SHA256SUMS"}}}},
		{"empty", "SHA256SUMS", "", map[string][]Reference{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSumFile(tc.file, strings.NewReader(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestParseSumFileErrors(t *testing.T) {
	good := h256a + "  a\n" + h256b + "  b\n"
	for _, tc := range []struct {
		name, file, text string
		line             int
		says             string
	}{
		{"garbage line", "SHA256SUMS", good + "this is not a checksum line\n", 3, "not a checksum line"},
		{"wrong length for the file's algorithm", "SHA256SUMS", good + hmd5 + "  c\n", 3, "64 hex digits"},
		{"wrong length for the tag", "CHECKSUMS", "MD5 (a) = " + h256a + "\n", 1, "32 hex digits"},
		{"length fits no algorithm", "sums", "abcdef  a\n", 1, "cannot tell the algorithm"},
		{"no name", "SHA256SUMS", h256a + "\n", 1, "without a file name"},
		{"only blanks after the hash", "SHA256SUMS", h256a + "  \n", 1, "without a file name"},
		{"BSD without =", "CHECKSUMS", "SHA256 (a) " + h256a + "\n", 1, `no "="`},
		{"BSD with a bad hash", "CHECKSUMS", "SHA256 (a) = xyz\n", 1, "not a hex hash"},
		{"bad escape", "SHA256SUMS", `\` + h256a + `  a\tb` + "\n", 1, "unknown escape"},
		{"contradiction", "SHA256SUMS", h256b + "  a\n" + good, 2, "listed again"},
		{"a line too long", "SHA256SUMS", good + strings.Repeat("x", maxSumLine+1) + "\n", 3, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSumFile("/srv/set/"+tc.file, strings.NewReader(tc.text))
			var se *SumFileError
			if !errors.As(err, &se) || se.File != tc.file || se.Line != tc.line {
				t.Fatalf("got %v, want an error in %s line %d", err, tc.file, tc.line)
			}
			if !errors.Is(err, ErrReferenceFile) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("%q does not say %q", err, tc.says)
			}
			if want := tc.file + " line "; !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("%q does not start with %q", err, want)
			}
		})
	}
}

// Sum-file references go straight into a Checker.
func TestSumFileReferencesCheck(t *testing.T) {
	data := textBytes(5000)
	copy(data, ClaimedSignature("site.tar.gz")) // a name is a claim
	sums := independentSums(data)
	text := sums[SHA256] + "  ./site.tar.gz\n"
	refs, err := ParseReferenceFile("SHA256SUMS", strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if res := check("site.tar.gz", data, refs["site.tar.gz"], CheckOptions{}); !res.Verified() || res.VerifiedBy[0] != "sha256:SHA256SUMS" {
		t.Fatalf("got %+v", res)
	}
}
