package integrity

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// randBytes returns n reproducible pseudo-random bytes.
func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// textBytes returns n bytes of compressible text.
func textBytes(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		b.WriteString("line ")
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString(" of a log file that compresses well\n")
	}
	return b.Bytes()[:n]
}

// gzipMembers gzips each chunk as its own member and returns the
// concatenation and the offset where each member starts (plus the end).
func gzipMembers(t testing.TB, chunks ...[]byte) (data []byte, starts []int64) {
	t.Helper()
	var out bytes.Buffer
	for _, c := range chunks {
		starts = append(starts, int64(out.Len()))
		zw := gzip.NewWriter(&out)
		if _, err := zw.Write(c); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out.Bytes(), append(starts, int64(out.Len()))
}

// bitrixHead builds the empty first gzip member of a Bitrix volume exactly
// as SPEC describes it: FEXTRA set, "LN" + uint16 at byte 12 (first volume
// only; lastVolume < 0 leaves it out), "BX" + uint32 at byte 16.
func bitrixHead(lastVolume int, tarBytes uint32) []byte {
	b := []byte{0x1f, 0x8b, 8, 0x04, 0, 0, 0, 0, 0, 3}
	b = binary.LittleEndian.AppendUint16(b, 10) // XLEN
	if lastVolume >= 0 {
		b = append(b, 'L', 'N')
		b = binary.LittleEndian.AppendUint16(b, uint16(lastVolume))
	} else {
		b = append(b, 0, 0, 0, 0)
	}
	b = append(b, 'B', 'X')
	b = binary.LittleEndian.AppendUint32(b, tarBytes)
	b = append(b, 0x03, 0x00) // deflate: one empty final fixed block
	return append(b, 0, 0, 0, 0, 0, 0, 0, 0)
}

// bitrixVolume builds a whole volume holding tar, in two gzip members.
func bitrixVolume(t testing.TB, lastVolume int, bx uint32, tar []byte) []byte {
	t.Helper()
	half := len(tar) / 2
	body, _ := gzipMembers(t, tar[:half], tar[half:])
	return append(bitrixHead(lastVolume, bx), body...)
}

// flip returns a copy of b with the byte at off inverted.
func flip(b []byte, off int64) []byte {
	c := bytes.Clone(b)
	c[off] ^= 0xff
	return c
}

// check runs a Checker over data in uneven writes and returns its result.
func check(part string, data []byte, refs []Reference, opts CheckOptions) Result {
	c := NewChecker(part, int64(len(data)), refs, opts)
	defer c.Close()
	for i, step := 0, 1; i < len(data); step = step*3 + 1 {
		n := min(step, len(data)-i)
		c.Write(data[i : i+n])
		i += n
	}
	return c.Result()
}
