package restore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/blowfish"
)

// Encrypted Bitrix archives (SPEC, Restore). The decoded stream starts
// with a plaintext 512-byte block: 100 bytes (32 random hex characters
// then zeros), "Bitrix Encrypted File" padded to 90, the version padded to
// 10, 56 zeros, then those first 256 bytes encrypted. Everything after it
// is encrypted in ECB mode without padding (the stream is made of 512-byte
// blocks, so it always ends on a cipher block). The key is the 32 ASCII
// characters of the lowercase hex MD5 of the password.
//
// Bitrix's CTar has used two ciphers under the same version "1.2":
// AES-256 (its default today; the 32 characters are the 256-bit key) and,
// in older versions, Blowfish (the same 32 characters as the key). The
// header does not say which, so, as CTar's own reader does, each is tried
// on bytes 256-511 and the one that gives back bytes 0-255 is used.

const (
	bitrixSignature  = "Bitrix Encrypted File"
	bitrixMaxVersion = "1.2"
	encHeaderLen     = 512
)

var errEncryptedTail = errors.New("encrypted stream does not end on a whole cipher block (truncated)")

// bitrixCiphers are the ciphers CTar has used, in the order its reader
// tries them.
var bitrixCiphers = []struct {
	name string
	make func(key []byte) (cipher.Block, error)
}{
	{"AES-256", aes.NewCipher},
	{"Blowfish", func(key []byte) (cipher.Block, error) { return blowfish.NewCipher(key) }},
}

// ecbCipher decrypts the stream after the header: ECB, each block on its
// own, which is why decryption can start at any block boundary (a volume
// boundary, a read-ahead chunk).
type ecbCipher struct {
	b    cipher.Block
	name string
}

// decrypt decrypts in place the whole blocks at the start of p and
// returns how many bytes that is; a partial block at the end is left.
func (c *ecbCipher) decrypt(p []byte) int {
	bs := c.b.BlockSize()
	whole := len(p) - len(p)%bs
	for i := 0; i < whole; i += bs {
		c.b.Decrypt(p[i:i+bs], p[i:i+bs])
	}
	return whole
}

// encHeader is the plaintext block that starts an encrypted archive.
type encHeader struct {
	version string
	plain   []byte // bytes 0-255
	sealed  []byte // bytes 256-511: plain, encrypted
}

// parseEncHeader reads the plaintext block; ok is false when b does not
// start with one (fewer than 512 bytes, or no signature at byte 100).
func parseEncHeader(b []byte) (h encHeader, ok bool) {
	if len(b) < encHeaderLen || string(bytes.Trim(b[100:190], "\x00 ")) != bitrixSignature {
		return h, false
	}
	return encHeader{
		version: string(bytes.Trim(b[190:200], "\x00 ")),
		plain:   b[:256],
		sealed:  b[256:encHeaderLen],
	}, true
}

// isEncryptedHeader reports whether a 512-byte block is the header of an
// encrypted Bitrix archive.
func isEncryptedHeader(b []byte) bool {
	_, ok := parseEncHeader(b)
	return ok
}

// bitrixKey is the key CTar derives from a password.
func bitrixKey(password string) []byte {
	sum := md5.Sum([]byte(password))
	return []byte(hex.EncodeToString(sum[:]))
}

// bitrixCipher checks the password against the header block and returns
// the cipher that opens the rest of the stream. Nothing has been written
// when it fails, and the message never holds the password.
func bitrixCipher(block []byte, password string) (*ecbCipher, error) {
	h, ok := parseEncHeader(block)
	if !ok {
		return nil, fmt.Errorf("restore: %w: no Bitrix encryption header", ErrUnsupported)
	}
	if !versionAtMost(h.version, bitrixMaxVersion) {
		return nil, fmt.Errorf("restore: %w: Bitrix encryption version %q (haul reads up to %s)", ErrUnsupported, h.version, bitrixMaxVersion)
	}
	if password == "" {
		return nil, fmt.Errorf("restore: the archive is encrypted: give its password with --password-file: %w", ErrPassword)
	}
	key := bitrixKey(password)
	got := make([]byte, len(h.sealed))
	for _, bc := range bitrixCiphers {
		b, err := bc.make(key)
		if err != nil {
			return nil, fmt.Errorf("restore: %s: %w", bc.name, err)
		}
		c := &ecbCipher{b: b, name: bc.name}
		copy(got, h.sealed)
		c.decrypt(got)
		if bytes.Equal(got, h.plain) {
			return c, nil
		}
	}
	return nil, fmt.Errorf("restore: the password does not open this archive (tried AES-256 and Blowfish, as Bitrix does): %w", ErrPassword)
}

// testable tells whether Test can prove anything of an opened archive.
// Without its password an encrypted archive is checked down to its
// compression layer (gzip CRCs, BX sizes); a raw .enc set has none, so
// nothing in it can be proven and Test must not report success.
func (a *archive) testable() error {
	if a.encrypted && a.cipher == nil && a.format == FormatTar {
		return fmt.Errorf("restore: %s is encrypted and not compressed: without its password nothing in it can be checked: %w",
			a.j.Parts()[0].Name, ErrPassword)
	}
	return nil
}

// versionAtMost compares dotted versions numerically.
func versionAtMost(v, limit string) bool {
	a, b := strings.Split(v, "."), strings.Split(limit, ".")
	for i := 0; i < max(len(a), len(b)); i++ {
		x, y := 0, 0
		var err error
		if i < len(a) {
			if x, err = strconv.Atoi(a[i]); err != nil || x < 0 {
				return false
			}
		}
		if i < len(b) {
			y, _ = strconv.Atoi(b[i])
		}
		if x != y {
			return x < y
		}
	}
	return true
}
