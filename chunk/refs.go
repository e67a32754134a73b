package chunk

import (
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"
	"sync"

	"github.com/haul-dev/haul/integrity"
)

// Part.refs holds a part's references in a few bytes each: a whole-part
// digest (the usual case: a line of SHA256SUMS) is its algorithm's and
// origin's number in a table shared by every part, and the digest in
// binary — 36 bytes for a SHA-256, where an integrity.Reference with its
// hex sum took 176. A reference with more in it (a manifest's pieces, S3
// part sizes, a sum that is not lowercase hex) is kept whole out of line
// and refs holds its index.
//
// Encoding, per reference: 0, algorithm number, origin number (uvarints),
// digest length (one byte) and the digest; or 1 and the index (uvarint)
// in partExtra.refs.

const (
	refSimple = 0
	refWhole  = 1
)

// refNames numbers the algorithm and origin names of every reference.
var refNames = struct {
	sync.RWMutex
	ids   map[string]uint64
	names []string
}{ids: map[string]uint64{}}

func refName(s string) uint64 {
	refNames.RLock()
	id, ok := refNames.ids[s]
	refNames.RUnlock()
	if ok {
		return id
	}
	refNames.Lock()
	defer refNames.Unlock()
	if id, ok := refNames.ids[s]; ok {
		return id
	}
	id = uint64(len(refNames.names))
	refNames.names = append(refNames.names, s)
	refNames.ids[s] = id
	return id
}

func refNameOf(id uint64) string {
	refNames.RLock()
	defer refNames.RUnlock()
	if id < uint64(len(refNames.names)) {
		return refNames.names[id]
	}
	return ""
}

// simpleSum returns r's digest in binary when r is a plain whole-part
// digest whose hex form gives Sum back exactly.
func simpleSum(r integrity.Reference) ([]byte, bool) {
	if len(r.PartSizes) > 0 || r.PieceSize != 0 || r.Pieces != nil || len(r.Sum) == 0 || len(r.Sum) > 2*255 {
		return nil, false
	}
	b, err := hex.DecodeString(r.Sum)
	if err != nil || hex.EncodeToString(b) != r.Sum {
		return nil, false
	}
	return b, true
}

// Refs returns every reference known for the part, in the order they
// were set. The slice is the caller's.
func (p *Part) Refs() []integrity.Reference {
	if len(p.refs) == 0 {
		return nil
	}
	var out []integrity.Reference
	b := p.refs
	for len(b) > 0 {
		tag := b[0]
		b = b[1:]
		if tag == refWhole {
			i, n := binary.Uvarint(b)
			b = b[n:]
			out = append(out, p.x.refs[i])
			continue
		}
		algo, n := binary.Uvarint(b)
		b = b[n:]
		origin, n := binary.Uvarint(b)
		b = b[n:]
		ln := int(b[0])
		out = append(out, integrity.Reference{Algo: refNameOf(algo), Origin: refNameOf(origin), Sum: hex.EncodeToString(b[1 : 1+ln])})
		b = b[1+ln:]
	}
	return out
}

// SetRefs replaces the part's references with refs, each kept once (the
// same algorithm, sum and origin twice is one reference).
func (p *Part) SetRefs(refs []integrity.Reference) {
	if p.x != nil {
		p.x.refs = nil
	}
	var b []byte
	for i, r := range refs {
		if slices.ContainsFunc(refs[:i], func(o integrity.Reference) bool {
			return o.Algo == r.Algo && o.Sum == r.Sum && o.Origin == r.Origin
		}) {
			continue
		}
		sum, ok := simpleSum(r)
		if !ok {
			x := p.extra(true)
			b = append(b, refWhole)
			b = binary.AppendUvarint(b, uint64(len(x.refs)))
			x.refs = append(x.refs, r)
			continue
		}
		b = append(b, refSimple)
		b = binary.AppendUvarint(b, refName(r.Algo))
		b = binary.AppendUvarint(b, refName(r.Origin))
		b = append(b, byte(len(sum)))
		b = append(b, sum...)
	}
	p.refs = nil
	if len(b) > 0 {
		p.refs = append(make([]byte, 0, len(b)), b...) // exactly as long: 100,000 of them
	}
	p.tidy()
}

// labelLists holds one copy of each list of verified_by labels.
var labelLists = struct {
	sync.Mutex
	m map[string][]string
}{m: map[string][]string{}}

// Labels returns a list equal to by that parts proven the same way share
// (most parts of a set are proven by the same references): at 100,000
// parts a list each costs some 4 MB. The list has no room to grow, so an
// append makes a copy; it must not be changed in place.
func Labels(by []string) []string {
	if len(by) == 0 {
		return by
	}
	key := strings.Join(by, "\x00")
	labelLists.Lock()
	defer labelLists.Unlock()
	if l, ok := labelLists.m[key]; ok {
		return l
	}
	l := slices.Clip(slices.Clone(by))
	if len(labelLists.m) < 1024 {
		labelLists.m[key] = l
	}
	return l
}
