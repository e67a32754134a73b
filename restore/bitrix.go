package restore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/integrity"
)

// bitrixHeader is what the first member of a Bitrix volume says.
type bitrixHeader struct {
	last int   // LN: number of the last volume, -1 when absent
	size int64 // BX: tar bytes in this volume, -1 when absent
}

// readBitrixHeader reads the FEXTRA field of a volume's first member:
// LN + uint16 at byte 12, BX + uint32 at byte 16. ok is false when the
// file does not start like a Bitrix volume.
func readBitrixHeader(p Part) (h bitrixHeader, ok bool, err error) {
	f, _, err := openPart(p, false)
	if err != nil {
		return h, false, err
	}
	defer f.Close()
	var b [22]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return h, false, nil
	}
	h, ok = parseBitrixHeader(b[:])
	return h, ok, nil
}

func parseBitrixHeader(b []byte) (h bitrixHeader, ok bool) {
	if len(b) < 22 || b[0] != 0x1f || b[1] != 0x8b || b[2] != 8 || b[3]&4 == 0 {
		return h, false
	}
	if xlen := binary.LittleEndian.Uint16(b[10:12]); xlen < 10 {
		return h, false
	}
	if string(b[16:18]) != "BX" {
		return h, false
	}
	h.last, h.size = -1, int64(binary.LittleEndian.Uint32(b[18:22]))
	if string(b[12:14]) == "LN" {
		h.last = int(binary.LittleEndian.Uint16(b[14:16]))
	}
	return h, true
}

// bitrixSet is a Bitrix multi-volume set in volume order.
type bitrixSet struct {
	parts []Part  // volumes in order: NAME, NAME.1, ..., NAME.LN
	sizes []int64 // BX of each volume, -1 when absent
}

// orderBitrix puts the volumes in order by their number (so .10 comes after
// .9 whatever order they came in) and checks against LN that none is
// missing, naming every missing one before anything is extracted.
func orderBitrix(parts []Part, prog progress) (*bitrixSet, error) {
	base := -1
	for i, p := range parts {
		if _, ok := volumeNumber(p.Name); !ok {
			if base >= 0 {
				return nil, fmt.Errorf("restore: %w: two first volumes, %s and %s", ErrUnsupported, parts[base].Name, p.Name)
			}
			base = i
		}
	}
	if base < 0 {
		return nil, &PartsError{Parts: []string{firstVolumeName(parts[0].Name)}, Status: []string{chunk.Missing}}
	}
	first := parts[base]
	byNum := map[int]Part{0: first}
	maxNum := 0
	for _, p := range parts {
		n, ok := volumeNumber(p.Name)
		if !ok {
			continue
		}
		if !strings.HasPrefix(p.Name, first.Name+".") {
			prog.warn(fmt.Sprintf("ignoring %s: not a volume of %s", p.Name, first.Name))
			continue
		}
		byNum[n] = p
		maxNum = max(maxNum, n)
	}
	h, ok, err := readBitrixHeader(first)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &integrity.FormatError{Format: "bitrix", Part: first.Name, Offset: 0, Err: errors.New("first volume has no BX header")}
	}
	last := h.last
	if last < 0 {
		last = maxNum // no LN: a single volume, or an older writer
	}
	var missing []string
	for n := 1; n <= last; n++ {
		if _, ok := byNum[n]; !ok {
			missing = append(missing, first.Name+"."+strconv.Itoa(n))
		}
	}
	if len(missing) > 0 {
		st := slices.Repeat([]string{chunk.Missing}, len(missing))
		return nil, &PartsError{Parts: missing, Status: st}
	}
	for n := last + 1; n <= maxNum; n++ {
		if p, ok := byNum[n]; ok {
			prog.warn(fmt.Sprintf("ignoring %s: the first volume says the last one is .%d", p.Name, last))
		}
	}
	s := &bitrixSet{}
	for n := 0; n <= last; n++ {
		p := byNum[n]
		s.parts = append(s.parts, p)
		if n == 0 {
			s.sizes = append(s.sizes, h.size)
			continue
		}
		vh, ok, err := readBitrixHeader(p)
		if err != nil {
			return nil, err
		}
		if !ok {
			vh.size = -1
		}
		s.sizes = append(s.sizes, vh.size)
	}
	return s, nil
}

// volumeNumber returns N for a name ending in ".N".
func volumeNumber(name string) (int, bool) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 || i == len(name)-1 {
		return 0, false
	}
	n, err := strconv.Atoi(name[i+1:])
	if err != nil || n < 0 || name[i+1] == '+' || name[i+1] == '-' {
		return 0, false
	}
	return n, true
}

func firstVolumeName(name string) string {
	if _, ok := volumeNumber(name); ok {
		return name[:strings.LastIndexByte(name, '.')]
	}
	return name
}

// tarBytes is the size of the tar stream the BX fields announce, or -1.
func (s *bitrixSet) tarBytes() int64 {
	var t int64
	for _, n := range s.sizes {
		if n < 0 {
			return -1
		}
		t += n
	}
	return t
}

// bitrixDecoder reads the volumes one after the other, each a gzip file of
// its own, and checks that each yields the tar bytes its BX field says.
type bitrixDecoder struct {
	j     *Join // over s.parts, in order
	s     *bitrixSet
	gz    *gzipDecoder
	vol   int
	out   int64 // tar bytes from the current volume
	begun bool
}

func newBitrixDecoder(j *Join, s *bitrixSet) *bitrixDecoder {
	r := newPosReader(j, 0, j.Start(1))
	return &bitrixDecoder{j: j, s: s, gz: newGzipDecoder(j, r, "gzip")}
}

func (d *bitrixDecoder) Read(p []byte) (int, error) {
	for d.vol < len(d.s.parts) {
		if !d.begun {
			d.gz.resetSection(d.j.Start(d.vol), d.j.Start(d.vol+1))
			d.out, d.begun = 0, true
		}
		n, err := d.gz.Read(p)
		d.out += int64(n)
		if err == io.EOF {
			if want := d.s.sizes[d.vol]; want >= 0 && d.out != want {
				name := d.s.parts[d.vol].Name
				return n, &integrity.FormatError{Format: "bitrix", Part: name, Offset: d.s.parts[d.vol].Size,
					Err: fmt.Errorf("volume holds %d tar bytes, its BX field says %d", d.out, want)}
			}
			d.vol++
			d.begun = false
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
	return 0, io.EOF
}

func (d *bitrixDecoder) inPos() int64 { return d.gz.inPos() }
func (d *bitrixDecoder) close()       { d.gz.close() }
