// Proving parts: the one-pass verification as each part completes, the
// set-level decode, and the summary.

package fetch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/destdir"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/integrity"
)

// verifier proves complete parts one at a time and gives each its final
// name, or sends its bad pieces back to the workers; run starts one per
// core. The outcome is recorded by the next commit.
func (e *engine) verifier(ctx context.Context, q <-chan *partRun) {
	for r := range q {
		if ctx.Err() != nil {
			e.mu.Lock()
			r.verifying = false
			e.mu.Unlock()
			continue // verified again on the next run
		}
		if err := e.verifyPart(ctx, r); err != nil {
			e.halt(err)
		}
		// All parts settled with nothing left in flight? The workers notice.
		e.mu.Lock()
		e.signal()
		e.mu.Unlock()
	}
}

func (e *engine) verifyPart(ctx context.Context, r *partRun) error {
	path := e.partialPath(r.p.Name)
	if r.n == 0 {
		f, _, err := e.dir().OpenPartial(r.p.Name)
		if err == nil {
			err = f.Close()
		}
		if err != nil {
			return source.Permanent(err)
		}
	}
	e.mu.Lock()
	fw, res := e.follows.Take(ctx, &r.follow, e.mu.Unlock)
	defer fw.Close()
	if fw == nil {
		res = e.provePart(ctx, r, path)
	}
	if ctx.Err() != nil {
		e.mu.Lock()
		r.verifying = false
		e.mu.Unlock()
		return nil // verified again on the next run
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r.verifying = false
	p := r.p
	// The next commit records the outcome; a kill before it leaves the
	// part to be proven again (recheck takes it back under its partial
	// name).
	r.dirty = true
	e.touch(r)
	if res.Err == nil && p.Found() && len(res.VerifiedBy) == 0 {
		// Bytes found in DEST that nothing proves are not taken on trust.
		e.refetchAll(r, fmt.Sprintf("part %s was found in DEST but no reference or check proves it; fetching it again", p.Name))
		return nil
	}
	p.SetFound(false)
	if res.Err == nil {
		mine := r.f
		if fw != nil {
			mine = fw.File()
		}
		perr := e.renames.Promote(e.dir(), p.Name, mine)
		if r.f != nil {
			if err := r.f.Close(); err != nil {
				return source.Permanent(fmt.Errorf("close %s: %w", path, err))
			}
			r.f = nil
		}
		if perr != nil {
			return source.Permanent(fmt.Errorf("rename %s: %w", path, perr))
		}
		fi, err := os.Stat(e.finalPath(p.Name))
		if err != nil {
			return source.Permanent(err)
		}
		p.SetProof(chunk.StampOf(fi), res.CRC32C)
		p.VerifiedBy, p.Error = chunk.Labels(res.VerifiedBy), ""
		kind := chunk.EventPartVerified
		p.Status = chunk.Verified
		if len(res.VerifiedBy) == 0 {
			p.Status, kind = chunk.Unverified, chunk.EventPartUnverified
		}
		msg := fmt.Sprintf("part %s verified by %s", p.Name, strings.Join(res.VerifiedBy, ", "))
		if kind == chunk.EventPartUnverified {
			msg = fmt.Sprintf("part %s is complete but unverified: no reference or structural check applies", p.Name)
		}
		if e.repair {
			kind = chunk.EventPartRepaired
		}
		from, healed := e.healed(p.Name)
		if healed != "" {
			msg += "; " + healed
		}
		e.opts.Progress.Event(Event{Kind: kind, Part: p.Name, Message: msg, VerifiedBy: res.VerifiedBy, From: from})
		return nil
	}
	if !errors.Is(res.Err, integrity.ErrMismatch) && !errors.Is(res.Err, integrity.ErrFormat) {
		return fmt.Errorf("verify %s: %w", p.Name, res.Err)
	}
	p.SetAttempts(p.Attempts() + 1)
	p.Error = res.Err.Error()
	bad := destdir.RefetchPieces(p.Size, e.st.PieceSize, r.n, res.BadPieces, res.BadPieceSize)
	e.blamePieces(p, bad, res.Err)
	// Every copy gets --retries tries (a repair's: one), mirrors.go.
	if copies := e.copies(p.Name); e.repair && p.Attempts() >= copies || p.Attempts() >= e.opts.Retries*copies {
		p.Status = chunk.Broken
		p.Error = e.explain(p.Name, p.Error)
		msg := fmt.Sprintf("part %s is broken: %v", p.Name, p.Error)
		if e.repair {
			// The error line says it too: cron mails only that.
			p.Error = e.explain(p.Name, e.badCopy(res.Err))
			msg = fmt.Sprintf("part %s: %s", p.Name, p.Error)
		}
		e.opts.Progress.Event(Event{Kind: chunk.EventPartBroken, Part: p.Name, Message: msg})
		return nil
	}
	for _, i := range bad {
		if p.Done.Has(i) {
			r.doneN--
		}
		p.ClearPiece(i)
	}
	e.reopen(r, bad[0])
	e.opts.Progress.Event(Event{Kind: chunk.EventRetry, Part: p.Name, Message: fmt.Sprintf("part %s failed verification (%v); fetching %d piece(s) again (attempt %d/%d)", p.Name, res.Err, len(bad), p.Attempts()+1, e.opts.Retries*e.copies(p.Name))})
	return nil
}

// adoptFound takes in the bytes of a part new to the state that DEST
// already holds (a state rebuilt after it was set aside, parts copied in
// by hand): a plain file of the part's size, under its final or partial
// name, becomes the part's partial file with every piece done, and the
// verifier proves it before it counts. Nothing is pulled again when a
// reference proves it; a part nothing proves is fetched again
// (verifyPart), since no record says these bytes are the source's.
func (e *engine) adoptFound(p *chunk.Part, pieceSize int64) {
	final, partial := e.finalPath(p.Name), e.partialPath(p.Name)
	n := chunk.Pieces(p.Size, pieceSize)
	if n == 0 {
		return
	}
	if fi, err := e.dir().PlainFile(final); err == nil && fi.Size() == p.Size {
		if os.Rename(final, partial) != nil {
			return
		}
	}
	if fi, err := e.dir().PlainFile(partial); err != nil || fi.Size() != p.Size {
		return
	}
	for i := 0; i < n; i++ {
		p.Done.Set(i)
	}
	p.Status = chunk.Partial
	p.SetFound(true)
	if e.hashed == nil {
		e.hashed = map[string]bool{}
	}
	e.hashed[p.Name] = true // recheck takes the pieces as they are
}

// refetchAll sends every piece of r back to the workers. Callers hold
// e.mu.
func (e *engine) refetchAll(r *partRun, msg string) {
	for i := 0; i < r.n; i++ {
		if r.p.Done.Has(i) {
			r.doneN--
		}
		r.p.ClearPiece(i)
	}
	r.p.SetFound(false)
	e.reopen(r, 0)
	e.opts.Progress.Event(Event{Kind: chunk.EventRetry, Part: r.p.Name, Message: msg})
}

// provePart proves a complete part in one sequential pass
// (destdir.Prove), counting the manifest's piece hashes its pieces were
// compared with as they landed (SHA-256 pieces, pieceDigest) without
// computing them again.
func (e *engine) provePart(ctx context.Context, r *partRun, path string) integrity.Result {
	e.mu.Lock()
	var hashes []string
	if r.pieceRefs != nil && r.p.PieceHash == chunk.PieceSHA256 {
		hashes = make([]string, r.n)
		for i := range hashes {
			hashes[i] = r.p.Hashes.Hex(i)
		}
	}
	names := e.partNames()
	e.mu.Unlock()
	return destdir.Prove(ctx, path, r.p, e.st.PieceSize, hashes, names)
}

// setCheck decodes a multi-part set that no reference fully proves, and
// sends the part a decode error names back for another fetch.
func (e *engine) setCheck(ctx context.Context) error {
	if e.opts.SetCheck == nil || len(e.st.Parts) < 2 {
		return nil
	}
	var paths, names []string
	need := false
	for _, p := range e.st.Parts {
		if !p.Complete() {
			return nil // nothing to decode until every part is here
		}
		if p.Status == chunk.Unverified {
			need = true
		}
		paths = append(paths, e.finalPath(p.Name))
		names = append(names, p.Name)
	}
	if !need {
		return nil
	}
	err := e.opts.SetCheck(ctx, paths, names)
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	if errors.Is(err, destdir.ErrNoVerdict) {
		return nil // nothing proves them: they stay unverified
	}
	var fe *integrity.FormatError
	if err == nil {
		for _, p := range e.st.Parts {
			p.SetSetCRC("")
			if p.Status == chunk.Unverified {
				p.Status = chunk.Verified
				p.VerifiedBy = append(p.VerifiedBy, e.opts.SetCheckLabel)
			}
		}
		return e.save()
	}
	if !errors.As(err, &fe) {
		return err
	}
	// The damage is in the named part, or, when the failed check covers
	// several parts (a gzip CRC over a stream split at arbitrary bytes),
	// in one of them. Parts a reference proves are not suspects.
	var cands []*chunk.Part
	byName := e.st.ByName() // the suspects may be every part of a stream
	for _, name := range destdir.Suspects(err, fe) {
		if p := byName[name]; p != nil && p.Status == chunk.Unverified {
			cands = append(cands, p)
		}
	}
	if len(cands) == 0 {
		// Every suspect is proven: the archive was bad when its
		// references were made; report the decode error as it is.
		p := e.st.Find(fe.Part)
		if p == nil {
			return err
		}
		return e.suspectsBroken([]*chunk.Part{p}, fe, "its references prove the copy: the archive was damaged before they were made")
	}
	p, why := e.nextSuspect(cands)
	if p == nil {
		return e.suspectsBroken(cands, fe, why)
	}
	e.blame(p, 0, p.Size, fe)
	e.setTries++
	p.Error = fe.Error()
	p.SetSetCRC(p.CRC32C)
	e.opts.Progress.Event(Event{Kind: chunk.EventRetry, Part: p.Name, Message: fmt.Sprintf("set decode failed (%v); fetching part %s again (%d/%d for the set)", fe, p.Name, e.setTries, e.opts.Retries-1)})
	if err := e.dir().Unname(p); err != nil {
		return err
	}
	p.ResetPieces()
	p.Status = chunk.Pending
	if err := e.save(); err != nil {
		return err
	}
	return errRelist
}

// nextSuspect chooses the suspect of a failed set decode to fetch again,
// or says why none is: nothing but the set's own checksum can tell which
// part is bad, so each fetch again is a guess, and the set gets
// --retries attempts in all (the first fetch and opts.Retries-1
// re-fetches of one part each), not --retries per part. A suspect whose
// copy fetched again came back with the same bytes (SetCRC) is what the
// source holds and is not fetched a third time; suspects never fetched
// again go first. A repair takes no second guess: its copy is final.
func (e *engine) nextSuspect(cands []*chunk.Part) (*chunk.Part, string) {
	if e.repair {
		return nil, fmt.Sprintf("the copy at %s does not decode either; nothing installed", e.src)
	}
	if e.setTries >= e.opts.Retries-1 {
		if e.setTries == 0 {
			return nil, fmt.Sprintf("--retries %d leaves no attempt to fetch a suspect again (a higher --retries would try)", e.opts.Retries)
		}
		return nil, fmt.Sprintf("the suspects were fetched again %d times (--retries %d) and the set still does not decode", e.setTries, e.opts.Retries)
	}
	var next *chunk.Part
	for _, c := range cands {
		if c.SetCRC() != "" && c.SetCRC() == c.CRC32C {
			continue // the source sent the same bytes again
		}
		if next == nil || next.SetCRC() != "" && c.SetCRC() == "" {
			next = c
		}
	}
	if next == nil {
		return nil, "each suspect fetched again came back with the same bytes: the source's copy is damaged"
	}
	return next, ""
}

// suspectsBroken gives up on a set whose decode keeps failing: every
// suspect is broken (none can be told good), loses its final name, and
// keeps the digest of its copy so that a later run can tell whether a
// fresh copy differs.
func (e *engine) suspectsBroken(cands []*chunk.Part, fe *integrity.FormatError, why string) error {
	detail := fmt.Sprintf("the set does not decode: %v; %s", fe, why)
	for _, c := range cands {
		if c.CRC32C != "" {
			c.SetSetCRC(c.CRC32C)
		}
		c.Status, c.Error, c.VerifiedBy = chunk.Broken, detail, nil
		if err := e.dir().Unname(c); err != nil {
			return err
		}
		e.opts.Progress.Event(Event{Kind: chunk.EventPartBroken, Part: c.Name, Message: fmt.Sprintf("part %s is broken: %s", c.Name, detail)})
	}
	return e.save()
}

// badCopy says that the repair source's copy of a part is bad as well.
func (e *engine) badCopy(err error) string {
	return fmt.Sprintf("the copy at %s does not match the references either (%v); nothing installed", e.src, err)
}

func (e *engine) summary() *Summary {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := &Summary{Parts: len(e.st.Parts), Pulled: e.pulled.Load(), Detail: map[string]string{}}
	for _, p := range e.st.Parts {
		s.BytesTotal += p.Size
		switch p.Status {
		case chunk.Verified:
			s.Verified++
		case chunk.Unverified:
			s.Unverified++
		case chunk.Broken:
			s.Broken = append(s.Broken, p.Name)
			s.Detail[p.Name] = p.Error
		case chunk.Missing:
			s.Missing = append(s.Missing, p.Name)
			s.Detail[p.Name] = p.Error
		}
	}
	return s
}
