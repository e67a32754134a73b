package multi

import (
	"fmt"
	"slices"
	"strings"

	"github.com/haul-dev/haul/integrity"
)

// partState is what the copies did for one part: which served which
// bytes since they were last blamed, which bytes failed proof from which
// copy, and what each copy gave. Guarded by Source.mu.
type partState struct {
	served []byteSpan
	blamed []blame
	gave   map[*member]*verdict
	refs   []integrity.Reference // the part's references, from Blame
	vets   map[vetKey]*vet       // what copies said when asked for hashes (vet.go)
}

// blame is one failed proof: the bytes it covers (a piece, or a whole
// part when the proof cannot say where) and the copies that served them.
// A copy is charged once per blame, so a part that failed as a whole is
// next read whole from the copy charged least, not piece by piece from
// whichever copy did not serve that piece.
type blame struct {
	off, end int64
	by       []*member
}

// byteSpan is bytes [off, end) of a part and the copy they came from.
type byteSpan struct {
	off, end int64
	m        *member
}

type verdict struct {
	times int
	why   string
}

func (s *Source) part(name string) *partState {
	ps := s.parts[name]
	if ps == nil {
		ps = &partState{gave: map[*member]*verdict{}}
		s.parts[name] = ps
	}
	return ps
}

// served records that m is sending [off, off+n) of part; bytes read
// before from any copy are written over. Callers hold s.mu.
func (s *Source) served(part string, off, n int64, m *member) {
	ps := s.part(part)
	end := off + n
	ps.served = slices.DeleteFunc(ps.served, func(b byteSpan) bool { return b.off >= off && b.end <= end })
	ps.served = append(ps.served, byteSpan{off, end, m})
}

// Blame charges the copies that served bytes [off, off+n) of part, which
// failed proof (why), so that the next read of them goes elsewhere, and
// asks the copies that can hash where they live whether theirs match
// refs, the part's references (vet.go).
func (s *Source) Blame(part string, off, n int64, why string, refs []integrity.Reference) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.part(part)
	if refs != nil {
		ps.refs = refs
	}
	end := off + n
	var charged []*member
	ps.served = slices.DeleteFunc(ps.served, func(b byteSpan) bool {
		if b.end <= off || b.off >= end {
			return false
		}
		if !slices.Contains(charged, b.m) {
			charged = append(charged, b.m)
		}
		return true
	})
	if len(charged) == 0 {
		return // bytes of an earlier run: no copy to charge
	}
	ps.blamed = append(ps.blamed, blame{off, end, charged})
	s.startVets(part, ps, off, end)
	for _, m := range charged {
		v := ps.gave[m]
		if v == nil {
			v = &verdict{}
			ps.gave[m] = v
		}
		v.times++
		v.why = why
	}
}

// blamedIn reports whether bytes in [off, end) failed proof before.
func (ps *partState) blamedIn(off, end int64) bool {
	return slices.ContainsFunc(ps.blamed, func(b blame) bool { return b.off < end && b.end > off })
}

// penalty is how often m's bytes in [off, end) failed proof.
func (ps *partState) penalty(m *member, off, end int64) int {
	n := 0
	for _, b := range ps.blamed {
		if b.off < end && b.end > off && slices.Contains(b.by, m) {
			n++
		}
	}
	return n
}

// blamedBy names the copies whose bytes in [off, end) failed proof.
func (ps *partState) blamedBy(off, end int64) string {
	var names []string
	for _, b := range ps.blamed {
		if b.off >= end || b.end <= off {
			continue
		}
		for _, m := range b.by {
			if !slices.Contains(names, m.name) {
				names = append(names, m.name)
			}
		}
	}
	return strings.Join(names, " and ")
}

// Copies is how many copies serve part: the primary and the mirrors that
// agree on it, less those whose hash showed their copy differs.
func (s *Source) Copies(part string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.parts[part]
	n := 0
	for _, m := range s.members {
		if s.has(m, part) && (ps == nil || ps.vetBadAny(m) == "") {
			n++
		}
	}
	return n
}

// Explain says what each copy gave for part, "" when no copy was blamed.
func (s *Source) Explain(part string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.parts[part]
	if ps == nil || len(ps.gave) == 0 {
		return ""
	}
	var out []string
	for _, m := range s.members {
		v := ps.gave[m]
		switch {
		case v != nil:
			x := fmt.Sprintf("%s gave: %s (%d times)", m.name, v.why, v.times)
			if why := ps.vetBadAny(m); why != "" {
				x += ", and " + why
			}
			out = append(out, x)
		case ps.vetBadAny(m) != "":
			out = append(out, fmt.Sprintf("%s: not read, %s", m.name, ps.vetBadAny(m)))
		case !s.has(m, part):
			out = append(out, fmt.Sprintf("%s: not used for it", m.name))
		default:
			out = append(out, fmt.Sprintf("%s: no failure", m.name))
		}
	}
	return strings.Join(out, "; ")
}

// Healed names the copies that supplied the bytes of part that failed
// proof before, now that the part is proven, and forgets what the copies
// did for it.
func (s *Source) Healed(part string) (from, note string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.parts[part]
	if ps == nil {
		return "", ""
	}
	delete(s.parts, part)
	var froms, notes []string
	for _, b := range ps.blamed {
		var by []string
		for _, sp := range ps.served {
			if sp.off < b.end && sp.end > b.off && !slices.Contains(by, sp.m.name) {
				by = append(by, sp.m.name)
			}
		}
		if len(by) == 0 {
			continue // proven from bytes of an earlier run
		}
		var bad []string
		for _, m := range b.by {
			bad = append(bad, m.name)
		}
		notes = append(notes, fmt.Sprintf("bytes %d-%d from %s after they failed proof from %s", b.off, b.end-1, strings.Join(by, " and "), strings.Join(bad, " and ")))
		for _, n := range by {
			if !slices.Contains(froms, n) {
				froms = append(froms, n)
			}
		}
	}
	return strings.Join(froms, ", "), strings.Join(notes, "; ")
}
