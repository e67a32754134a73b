// A name is a claim: a part named for a format must start with that
// format's signature, or it is not what its name says (an error page
// served in its place, a file of another kind).

package integrity

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// SignatureLen is how many first bytes CheckSignature needs at most.
const SignatureLen = 128

// ErrSignature is wrapped by a FormatError whose part does not start with
// the signature of the format its name claims.
var ErrSignature = errors.New("not the format its name says")

// ErrWebPage is wrapped (with ErrSignature) when the part is a web page:
// what a server answers for an expired presigned link or a captive portal.
var ErrWebPage = errors.New("the server answered with a web page — the link may have expired")

// claim is a format a name can claim and how its files begin.
type claim struct {
	format string
	match  func(head []byte) bool
	sig    string // how a file of the format may begin
}

func prefix(sig string) func([]byte) bool {
	return func(h []byte) bool { return bytes.HasPrefix(h, []byte(sig)) }
}

var (
	claimGzip = claim{"gzip", prefix("\x1f\x8b"), "\x1f\x8b"}
	claimZstd = claim{"zstd", func(h []byte) bool {
		// A zstd frame, or a skippable frame (magic 0x184D2A50-5F).
		return bytes.HasPrefix(h, []byte("\x28\xb5\x2f\xfd")) || len(h) >= 4 && h[0]&0xf0 == 0x50 && h[1] == 0x2a && h[2] == 0x4d && h[3] == 0x18
	}, "\x28\xb5\x2f\xfd"}
	claimXz    = claim{"xz", prefix("\xfd7zXZ\x00"), "\xfd7zXZ\x00"}
	claimBzip2 = claim{"bzip2", prefix("BZh"), "BZh"}
	claimZip   = claim{"zip", func(h []byte) bool {
		// A local file header, or the end record of an empty archive.
		return bytes.HasPrefix(h, []byte("PK\x03\x04")) || bytes.HasPrefix(h, []byte("PK\x05\x06")) || bytes.HasPrefix(h, []byte("PK\x07\x08"))
	}, "PK\x03\x04"}
	// An encrypted Bitrix archive starts with a plaintext header: 100
	// bytes, then this signature (SPEC, Restore).
	claimBitrixEnc = claim{"encrypted Bitrix", func(h []byte) bool {
		return len(h) >= 121 && string(h[100:121]) == "Bitrix Encrypted File"
	}, strings.Repeat("\x00", 100) + "Bitrix Encrypted File"}
)

// claimOf returns the format a part's name claims, if any. A name with a
// numeric suffix claims one only for its first number (x.tar.zst.000):
// later pieces of a stream split at arbitrary bytes begin anywhere.
func claimOf(name string) (claim, bool) {
	n := strings.ToLower(name)
	if i := strings.LastIndexByte(n, '.'); i >= 0 && isDigits(n[i+1:]) {
		if strings.Trim(n[i+1:], "0") != "" {
			return claim{}, false
		}
		n = n[:i]
	}
	switch {
	case strings.HasSuffix(n, ".gz"), strings.HasSuffix(n, ".tgz"):
		return claimGzip, true // .tar.gz, a Bitrix first volume, .enc.gz
	case strings.HasSuffix(n, ".zst"), strings.HasSuffix(n, ".tzst"):
		return claimZstd, true
	case strings.HasSuffix(n, ".xz"), strings.HasSuffix(n, ".txz"):
		return claimXz, true
	case strings.HasSuffix(n, ".bz2"), strings.HasSuffix(n, ".tbz2"), strings.HasSuffix(n, ".tbz"):
		return claimBzip2, true
	case strings.HasSuffix(n, ".zip"):
		return claimZip, true
	case strings.HasSuffix(n, ".enc"):
		return claimBitrixEnc, true
	}
	return claim{}, false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// CheckSignature checks that a part called name, whose first bytes are
// head (up to SignatureLen of them; all of them when the part is
// shorter), starts as the format its name claims. It returns nil when the
// name claims none, else a *FormatError wrapping ErrSignature (and
// ErrWebPage when the part is a web page).
func CheckSignature(name string, head []byte) error {
	c, ok := claimOf(name)
	if !ok || c.match(head) {
		return nil
	}
	err := fmt.Errorf("%w: the name says %s, but the part does not start as one", ErrSignature, c.format)
	switch t := bytes.TrimLeft(head, " \t\r\n\ufeff"); {
	case len(head) == 0:
		err = fmt.Errorf("%w: the name says %s, but the part is empty", ErrSignature, c.format)
	case len(t) > 0 && t[0] == '<':
		err = fmt.Errorf("%w: the name says %s, but %w", ErrSignature, c.format, ErrWebPage)
	}
	return &FormatError{Format: c.format, Part: name, Offset: 0, Err: err}
}

// ClaimedSignature returns the first bytes a part called name must start
// with (a file of the format its name claims may start so), nil when the
// name claims no format. Test sets of random bytes under such names use
// it.
func ClaimedSignature(name string) []byte {
	if c, ok := claimOf(name); ok {
		return []byte(c.sig)
	}
	return nil
}
