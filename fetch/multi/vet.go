package multi

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/source/sftp"
	"github.com/haul-dev/haul/integrity"
)

// Vetting: when bytes of a part fail proof, every copy that can hash
// where it lives (SSH with sha256sum, source.RemoteHasher) is asked for
// the SHA-256 of the pieces those bytes cover, as `haul repair --from
// ssh://` does, and the answers are compared with the part's references
// (a manifest's piece digests, or a whole-part SHA-256 when the whole part
// failed). A copy whose hash differs is not read for those bytes; one
// whose hash matches is read first among the copies charged least (its
// bytes may still fail on the way). No byte moves to find that out. A copy
// that cannot run commands, or whose answer does not come, is routed as
// before (the copy charged least), with one journal note.

// The states a vet gives a copy for some bytes.
const (
	vetUnknown = iota // not asked, no answer (yet), or no reference to compare
	vetGood
	vetBad
)

// vetKey is one copy's vet of one blamed range.
type vetKey struct {
	m        *member
	off, end int64
}

// vet is what a copy said about the pieces of a blamed range. The fields
// after done are written before done is closed, under Source.mu.
type vet struct {
	done      chan struct{}
	pieceSize int64 // the part's size for a whole-part check
	pieces    []int
	bad       map[int]bool
	asked     bool   // the copy answered
	why       string // the first difference, for Explain
}

// says is what v tells about bytes [off, end): bad when a piece it hashed
// there differs, good when it hashed some there and none differs.
func (v *vet) says(off, end int64) int {
	select {
	case <-v.done:
	default:
		return vetUnknown
	}
	if !v.asked {
		return vetUnknown
	}
	state := vetUnknown
	for _, i := range v.pieces {
		if int64(i)*v.pieceSize >= end || int64(i+1)*v.pieceSize <= off {
			continue
		}
		if v.bad[i] {
			return vetBad
		}
		state = vetGood
	}
	return state
}

// vetPlan is what to ask a copy for a blamed range: the SHA-256 of these
// pieces, and what each must be.
type vetPlan struct {
	pieceSize int64
	pieces    []int
	want      map[int]string
	what      string // "piece" or "part", for messages
	origin    string // the reference's origin ("manifest", "SHA256SUMS")
}

// planVet says which hashes can prove bytes [off, end) of a part of size
// bytes: a manifest's pieces that cover them, else the whole-part SHA-256
// when the whole part failed. ok is false when no reference can.
func planVet(refs []integrity.Reference, size, off, end int64) (vetPlan, bool) {
	for _, r := range refs {
		if r.Algo != integrity.SHA256 || r.PieceSize <= 0 || int64(len(r.Pieces)) != (size+r.PieceSize-1)/r.PieceSize {
			continue
		}
		p := vetPlan{pieceSize: r.PieceSize, want: map[int]string{}, what: "piece", origin: r.Origin}
		for i := int(off / r.PieceSize); int64(i)*r.PieceSize < end && i < len(r.Pieces); i++ {
			p.pieces = append(p.pieces, i)
			p.want[i] = strings.ToLower(r.Pieces[i])
		}
		return p, len(p.pieces) > 0
	}
	if off != 0 || end != size || size <= 0 {
		return vetPlan{}, false
	}
	for _, r := range refs {
		if r.Algo == integrity.SHA256 && r.PieceSize == 0 && len(r.PartSizes) == 0 && integrity.Checkable(r) {
			return vetPlan{pieceSize: size, pieces: []int{0}, want: map[int]string{0: strings.ToLower(r.Sum)}, what: "part", origin: r.Origin}, true
		}
	}
	return vetPlan{}, false
}

// startVets asks every copy of part that can hash where it lives about
// bytes [off, end), which failed proof, unless it was asked before.
// Callers hold s.mu.
func (s *Source) startVets(part string, ps *partState, off, end int64) {
	obj, ok := s.set[part]
	if !ok {
		return
	}
	plan, ok := planVet(ps.refs, obj.Size, off, end)
	if !ok {
		return
	}
	if ps.vets == nil {
		ps.vets = map[vetKey]*vet{}
	}
	for _, m := range s.members {
		rh, ok := m.src.(source.RemoteHasher)
		if !ok || m.noExec || !s.has(m, part) {
			continue
		}
		k := vetKey{m, off, end}
		if ps.vets[k] != nil {
			continue
		}
		mo := obj
		if !m.primary {
			mo = m.objs[part]
		}
		v := &vet{done: make(chan struct{}), pieceSize: plan.pieceSize, pieces: plan.pieces}
		ps.vets[k] = v
		go s.runVet(rh, m, mo, plan, v)
	}
}

// vetTimeout bounds one copy's answer, beyond the hash command's own
// silence limit: a vet is advice, and an unanswered one is no verdict.
const vetTimeout = 10 * time.Minute

// runVet asks copy m for the hashes of plan and records what they say.
func (s *Source) runVet(rh source.RemoteHasher, m *member, obj source.Object, plan vetPlan, v *vet) {
	m.hashSem <- struct{}{}
	ctx, cancel := context.WithTimeout(s.ctx, vetTimeout)
	sums, err := rh.HashPieces(ctx, obj, plan.pieceSize, plan.pieces)
	cancel()
	<-m.hashSem
	note := ""
	s.mu.Lock()
	switch {
	case err != nil && errors.Is(err, sftp.ErrNoRemoteExec):
		if !m.noExec {
			m.noExec = true
			note = fmt.Sprintf("%s cannot hash where it lives (%v); bytes that fail proof are read from the copies in turn", m.name, err)
		}
	case err != nil:
		if s.ctx.Err() == nil {
			note = fmt.Sprintf("part %s: %s could not hash the bytes that failed proof (%v); they are read from the copies in turn", obj.Name, m.name, err)
		}
	default:
		v.asked = true
		v.bad = map[int]bool{}
		for _, i := range plan.pieces {
			got := hex.EncodeToString(sums[i])
			if got == plan.want[i] {
				continue
			}
			v.bad[i] = true
			if v.why == "" {
				v.why = fmt.Sprintf("its copy differs: SHA-256 %s there, %s says %s", got, plan.origin, plan.want[i])
				if plan.what == "piece" {
					v.why = fmt.Sprintf("its copy of piece %d differs: SHA-256 %s there, %s says %s", i, got, plan.origin, plan.want[i])
				}
			}
		}
		verdict := "matches " + plan.origin
		if v.why != "" {
			verdict = v.why + "; not reading them from it"
		}
		note = fmt.Sprintf("part %s bytes %d-%d: asked %s for their SHA-256: %s", obj.Name, int64(plan.pieces[0])*plan.pieceSize, min(int64(plan.pieces[len(plan.pieces)-1]+1)*plan.pieceSize, obj.Size)-1, m.name, verdict)
	}
	close(v.done)
	s.wake()
	s.mu.Unlock()
	if note != "" {
		s.o.Event(obj.Name, note)
	}
}

// awaitVets waits until every copy asked about bytes [off, end) of part
// has answered, at most a third of the stall timeout (the read's own
// watchdog runs meanwhile); then the read is routed with what is known.
func (s *Source) awaitVets(ctx context.Context, part string, off, end int64) {
	s.mu.Lock()
	var wait []chan struct{}
	if ps := s.parts[part]; ps != nil {
		for k, v := range ps.vets {
			if k.off < end && k.end > off {
				wait = append(wait, v.done)
			}
		}
	}
	s.mu.Unlock()
	if len(wait) == 0 {
		return
	}
	t := time.NewTimer(max(time.Millisecond, s.o.Timeout/3))
	defer t.Stop()
	for _, ch := range wait {
		select {
		case <-ch:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// vetOf is what the vets say about copy m for bytes [off, end) of part:
// bad when one says so, good when every blamed range there was found
// good. Callers hold s.mu.
func (ps *partState) vetOf(m *member, off, end int64) int {
	state := vetUnknown
	for _, b := range ps.blamed {
		if b.off >= end || b.end <= off {
			continue
		}
		v := ps.vets[vetKey{m, b.off, b.end}]
		if v == nil {
			return vetUnknown
		}
		switch v.says(max(off, b.off), min(end, b.end)) {
		case vetBad:
			return vetBad
		case vetGood:
			state = vetGood
		default:
			return vetUnknown
		}
	}
	return state
}

// vetBadAny is the first difference a vet found in m's copy of the part,
// "" when none did. Callers hold s.mu.
func (ps *partState) vetBadAny(m *member) string {
	for k, v := range ps.vets {
		if k.m != m {
			continue
		}
		select {
		case <-v.done:
			if v.why != "" {
				return v.why
			}
		default:
		}
	}
	return ""
}
