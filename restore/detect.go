package restore

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Format is an archive layout restore understands.
type Format string

// The formats, as Detect names them.
const (
	FormatTar    Format = "tar"     // uncompressed tar (also Bitrix without compression, encrypted or not)
	FormatTarGz  Format = "tar.gz"  // gzip, one member or many
	FormatTarZst Format = "tar.zst" // zstd, one frame or many
	FormatTarXz  Format = "tar.xz"
	FormatTarBz2 Format = "tar.bz2"
	FormatZip    Format = "zip"
	FormatBitrix Format = "bitrix" // Bitrix multi-volume: each volume its own gzip file with LN/BX fields
)

// Detect tells the format of a set from the first bytes of its first part
// and, when those say nothing, from its name (a split suffix such as
// ".000" or ".1" is ignored). Parts must be in archive order.
func Detect(parts []Part) (Format, error) {
	if len(parts) == 0 {
		return "", fmt.Errorf("restore: %w: the set has no parts", ErrUnsupported)
	}
	head, err := readHead(parts[0], 512)
	if err != nil {
		return "", err
	}
	if f, ok := detectBytes(head); ok {
		return f, nil
	}
	if f, ok := detectName(parts[0].Name); ok {
		return f, nil
	}
	return "", fmt.Errorf("restore: %w: cannot tell the format of %s from its name or first bytes (haul restores tar, tar.gz, tar.zst, tar.xz, tar.bz2, zip and Bitrix backups; --assemble joins any set)",
		ErrUnsupported, parts[0].Name)
}

func readHead(p Part, n int) ([]byte, error) {
	f, _, err := openPart(p, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	m, err := io.ReadFull(f, b)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("restore: %w", err)
	}
	return b[:m], nil
}

func detectBytes(b []byte) (Format, bool) {
	switch {
	case len(b) >= 3 && b[0] == 0x1f && b[1] == 0x8b && b[2] == 8:
		if _, ok := parseBitrixHeader(b); ok {
			return FormatBitrix, true
		}
		return FormatTarGz, true
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return FormatTarZst, true
	case len(b) >= 4 && b[1] == 0x2a && b[2] == 0x4d && b[3] == 0x18 && b[0]&0xf0 == 0x50:
		return FormatTarZst, true // starts with a zstd skippable frame
	case bytes.HasPrefix(b, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return FormatTarXz, true
	case len(b) >= 4 && string(b[:3]) == "BZh" && b[3] >= '1' && b[3] <= '9':
		return FormatTarBz2, true
	case bytes.HasPrefix(b, []byte("PK\x03\x04")), bytes.HasPrefix(b, []byte("PK\x05\x06")), bytes.HasPrefix(b, []byte("PK\x07\x08")):
		return FormatZip, true
	case isEncryptedHeader(b), isTarHeader(b):
		return FormatTar, true
	}
	return "", false
}

func detectName(name string) (Format, bool) {
	n := strings.ToLower(name)
	if i := strings.LastIndexByte(n, '.'); i >= 0 {
		if _, err := strconv.Atoi(n[i+1:]); err == nil {
			n = n[:i]
		}
	}
	for _, s := range []struct {
		suffix string
		f      Format
	}{
		{".tar.gz", FormatTarGz}, {".tgz", FormatTarGz},
		{".tar.zst", FormatTarZst}, {".tzst", FormatTarZst},
		{".tar.xz", FormatTarXz}, {".txz", FormatTarXz},
		{".tar.bz2", FormatTarBz2}, {".tbz2", FormatTarBz2}, {".tbz", FormatTarBz2},
		{".zip", FormatZip}, {".tar", FormatTar},
	} {
		if strings.HasSuffix(n, s.suffix) {
			return s.f, true
		}
	}
	return "", false
}

// isTarHeader reports whether b starts with a tar header whose checksum
// is right (any of V7, ustar, GNU), or with the zero block of an empty tar.
func isTarHeader(b []byte) bool {
	if len(b) < 512 {
		return false
	}
	b = b[:512]
	return isZero(b) || checksumOK(b)
}
