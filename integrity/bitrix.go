package integrity

import (
	"encoding/binary"
	"path"
	"strings"
)

// BitrixHeaderLen is how many leading bytes of a volume
// ParseBitrixVolumeHeader needs.
const BitrixHeaderLen = 22

// BitrixHeader is what the first gzip member of a Bitrix volume states.
type BitrixHeader struct {
	// LastVolume is the number of the last volume of the set (LN); only
	// the first volume carries it. -1 when absent.
	LastVolume int `json:"last_volume"`
	// TarBytes is how many bytes of the tar stream this volume holds (BX).
	TarBytes int64 `json:"tar_bytes"`
}

// ParseBitrixVolumeHeader reads the Bitrix fields at the start of a volume
// (SPEC, Restore): a gzip member header (1f 8b 08) with FEXTRA set and an
// extra field long enough to hold them; at byte 16 "BX" and a
// little-endian uint32, the tar bytes of the volume; at byte 12 "LN" and
// a little-endian uint16, the number of the last volume, on the first
// volume only. ok is false when b is not such a header (BX is required).
func ParseBitrixVolumeHeader(b []byte) (h BitrixHeader, ok bool) {
	if len(b) < BitrixHeaderLen || b[0] != 0x1f || b[1] != 0x8b || b[2] != 8 || b[3]&0x04 == 0 {
		return BitrixHeader{}, false
	}
	// XLEN: the extra field spans bytes 12 .. 12+XLEN; the fields must lie in it.
	if xlen := binary.LittleEndian.Uint16(b[10:12]); 12+int(xlen) < BitrixHeaderLen {
		return BitrixHeader{}, false
	}
	if string(b[16:18]) != "BX" {
		return BitrixHeader{}, false
	}
	h.TarBytes = int64(binary.LittleEndian.Uint32(b[18:22]))
	h.LastVolume = -1
	if string(b[12:14]) == "LN" {
		h.LastVolume = int(binary.LittleEndian.Uint16(b[14:16]))
	}
	return h, true
}

// DetectChecks chooses the structural checks that apply to a part from its
// name, its first bytes (at least BitrixHeaderLen of them, fewer for a
// shorter part) and the names of the other parts of its set:
//
//  1. A part that starts with a Bitrix volume header (ParseBitrixVolumeHeader)
//     is a whole gzip file by SPEC: Bitrix and Gzip.
//  2. Otherwise a part that starts with the gzip magic, whose name ends in
//     .gz or .tgz, and that no other part continues (NAME.1, NAME.001, ...
//     in setNames) is a whole gzip file: Gzip.
//  3. Anything else gets no per-part check. In particular the pieces of an
//     archive split at arbitrary bytes (x.tar.gz, x.tar.gz.1, ... or
//     x.tar.gz.000, .001, ...) are not gzip files on their own even when
//     the first starts with the magic; they need a StreamChecker across
//     the set.
func DetectChecks(name string, head []byte, setNames []string) CheckOptions {
	if _, ok := ParseBitrixVolumeHeader(head); ok {
		return CheckOptions{Gzip: true, Bitrix: true}
	}
	if len(head) < 3 || head[0] != 0x1f || head[1] != 0x8b || head[2] != 8 {
		return CheckOptions{}
	}
	ext := strings.ToLower(path.Ext(name))
	if ext != ".gz" && ext != ".tgz" {
		return CheckOptions{}
	}
	for _, other := range setNames {
		if isContinuation(name, other) {
			return CheckOptions{}
		}
	}
	return CheckOptions{Gzip: true}
}

// isContinuation reports whether other is name followed by "." and digits.
func isContinuation(name, other string) bool {
	rest, ok := strings.CutPrefix(other, name+".")
	if !ok || rest == "" {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] < '0' || rest[i] > '9' {
			return false
		}
	}
	return true
}
