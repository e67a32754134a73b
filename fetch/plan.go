// Planning a run: listing, references, and reconciling the state with
// the files on disk.

package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/pieceplan"
	"github.com/haul-dev/haul/fetch/source"
)

// prepare lists the source, reads the references and reconciles the set
// with the state on disk. Nothing on disk is trusted that cannot be
// re-checked: complete parts must exist with their size, partial parts'
// done pieces are re-hashed.
func (e *engine) prepare(ctx context.Context) error {
	objs, err := e.src.List(ctx)
	if err != nil {
		return fmt.Errorf("list %s: %w", e.src, err)
	}
	set := source.SelectSet(objs, e.opts.Filter)
	if len(set.Parts) == 0 && e.repair {
		// The source was listed and holds none of the parts to repair:
		// they stay missing (exit 3), named with the ways out.
		return &IncompleteError{Dest: e.opts.Dest, Missing: e.opts.Filter.Include}
	}
	if len(set.Parts) == 0 {
		what := e.src.String()
		if e.opts.Filter.Prefix != "" {
			what += " (names starting with " + e.opts.Filter.Prefix + ")"
		}
		return source.Permanent(fmt.Errorf("no parts found at %s: check the SOURCE path and --include/--exclude: %w", what, source.ErrNotFound))
	}
	refs, err := e.loadReferences(ctx, set.RefFiles)
	if err != nil {
		return err
	}

	st, err := chunk.Load(e.opts.Dest)
	if errors.Is(err, chunk.ErrNoState) {
		st = &chunk.State{Created: time.Now().UTC()}
	} else if err != nil {
		return err
	}
	if !e.repair {
		st.Sources = e.opts.Sources
	}
	hasProgress := slices.ContainsFunc(st.Parts, func(p *chunk.Part) bool { return len(p.Done) > 0 || p.Complete() })
	switch {
	case hasProgress && st.PieceSize > 0:
		// Pieces on disk keep their size.
	case refs.PieceSize > 0:
		st.PieceSize = refs.PieceSize // align pieces with the manifest's
	case e.opts.AutoPieceSize:
		st.PieceSize = pieceplan.AutoSize(set.Parts, e.opts.PieceSize, e.opts.Connections)
	default:
		st.PieceSize = e.opts.PieceSize
	}

	// Names promised (Bitrix LN, numbering gaps) first: their maps go before the parts come.
	promised := source.Promised(e.src, set)
	parts := make([]*chunk.Part, 0, len(set.Parts))
	e.runs = make([]*partRun, 0, len(set.Parts))
	known := st.ByName() // st.Find per part was quadratic; what is left is not listed
	for _, o := range set.Parts {
		p := known[o.Name]
		delete(known, o.Name)
		delete(promised, o.Name)
		if p == nil {
			p = &chunk.Part{Name: o.Name, Status: chunk.Pending}
			e.adopt(p, o)
			e.adoptFound(p, st.PieceSize)
		} else if p.Version() != o.Version() || p.Size != o.Size {
			if e.repair && p.Size == o.Size {
				// Another copy of the same part: keep the good pieces.
				p.SetListing(o.ETag, o.ModTime, o.Version())
			} else {
				e.opts.Progress.Event(Event{Kind: chunk.EventPartChanged, Part: o.Name, Message: fmt.Sprintf("part %s changed at the source (size or version differs); fetching it again from zero", o.Name)})
				e.resetPart(p)
				e.adopt(p, o)
			}
		}
		p.SetListing(o.ETag, o.ModTime, p.Version())
		p.SetAddress(o.URL, o.Encoding)
		fresh := slices.Concat(refs.ByName[o.Name], o.Refs)
		delete(refs.ByName, o.Name) // what is left names parts the source lacks
		if e.repair {
			// What the original source said still binds the repair copy.
			fresh = slices.Concat(p.Refs(), fresh)
		}
		partRefs := fresh
		if cs, ok := e.src.(source.Checksummer); ok && !p.Complete() {
			more, err := cs.References(ctx, o)
			if err != nil {
				return err
			}
			partRefs = append(partRefs, more...)
		}
		p.SetRefs(partRefs)
		if p.Status == chunk.Missing {
			p.Status = chunk.Pending
		}
		r := &partRun{p: p, idx: len(e.runs), n: chunk.Pieces(p.Size, st.PieceSize)}
		var algo string
		algo, r.pieceRefs = pieceplan.Digest(partRefs, st.PieceSize, r.n, e.repair)
		e.recheck(p, st.PieceSize, algo)
		r.doneN = p.Done.Count(r.n)
		parts = append(parts, p)
		if p.Status == chunk.Broken && !e.repair {
			// A new run is a new chance: fetch it again from the source.
			e.resetPart(p)
			p.Status = chunk.Pending
		}
		e.runs = append(e.runs, r)
	}
	// Names that a sum file or a manifest promises but the source lacks.
	for name := range refs.ByName {
		promised[name] = "named by a reference file"
	}
	for name, why := range promised {
		if e.opts.Filter.Match(name) {
			p := known[name]
			delete(known, name)
			if p == nil {
				p = &chunk.Part{Name: name}
			}
			if !p.Complete() {
				p.Status = chunk.Missing
				p.Error = why + " but not found at the source"
				e.opts.Progress.Event(Event{Kind: chunk.EventPartMissing, Part: name, Message: "part " + name + " is " + why + " but not found at " + e.src.String()})
			}
			parts = append(parts, p)
		}
	}
	// Parts from an earlier run that are complete stay (in repair, all
	// stay: the repair source may hold only some of them).
	for _, p := range st.Parts {
		if known[p.Name] == p && (p.Complete() || e.repair) {
			parts = append(parts, p)
		}
	}
	slices.SortFunc(parts, func(a, b *chunk.Part) int { return source.NaturalCompare(a.Name, b.Name) })
	st.Parts = parts
	e.st = st
	e.changed = make(chan struct{})
	e.stop = nil
	if err := e.save(); err != nil {
		return err
	}
	plan := make([]PartProgress, 0, len(parts))
	for _, p := range parts {
		plan = append(plan, PartProgress{Name: p.Name, Size: p.Size, Done: p.BytesDone(st.PieceSize), Status: p.Status})
	}
	e.opts.Progress.Plan(plan)
	return nil
}

func (e *engine) adopt(p *chunk.Part, o source.Object) {
	p.Size = o.Size
	p.SetListing(o.ETag, o.ModTime, o.Version())
}

// resetPart forgets every byte of p and removes its files.
func (e *engine) resetPart(p *chunk.Part) {
	os.Remove(e.partialPath(p.Name))
	os.Remove(e.finalPath(p.Name))
	p.ResetPieces()
	p.VerifiedBy, p.Error = nil, ""
	p.SetAttempts(0)
	p.Status = chunk.Pending
}

// recheck makes p's state agree with its files, and leaves the hashes of
// its done pieces in the digest algo.
func (e *engine) recheck(p *chunk.Part, pieceSize int64, algo string) {
	old := p.PieceHash
	p.PieceHash = algo
	if p.Complete() {
		if fi, err := e.dir().PlainFile(e.finalPath(p.Name)); err != nil || fi.Size() != p.Size {
			e.resetPart(p)
		}
		return
	}
	// Only a plain file of haul's counts: bytes behind a link are not the
	// part's, whatever they hash to.
	fi, err := e.dir().PlainFile(e.partialPath(p.Name))
	if err != nil && len(p.Done) > 0 {
		// A kill between the rename to NAME and the state save that
		// records it leaves the part under its final name: take it back
		// and prove it again rather than pull it again.
		if ff, ferr := e.dir().PlainFile(e.finalPath(p.Name)); ferr == nil && ff.Size() == p.Size &&
			os.Rename(e.finalPath(p.Name), e.partialPath(p.Name)) == nil {
			fi, err = e.dir().PlainFile(e.partialPath(p.Name))
		}
	}
	if err != nil || fi.Size() != p.Size {
		p.ResetPieces()
		if p.Status == chunk.Partial {
			p.Status = chunk.Pending
		}
		return
	}
	// Re-hash what the state says is done; drop what does not match.
	n := chunk.Pieces(p.Size, pieceSize)
	if p.Hashes.Width() > 0 && p.Hashes.Get(n-1) == nil {
		p.ResetPieces() // digests of another piece size
	}
	// Progress inside pieces is checked when its piece is resumed
	// (resumeHead); here only what cannot be resumed is dropped.
	p.KeepProgress(func(pr chunk.Progress) bool {
		return pr.Piece >= 0 && pr.Piece < n && !p.Done.Has(pr.Piece) && pr.Bytes > 0
	})
	f, err := e.dir().OpenPlain(e.partialPath(p.Name))
	if err != nil {
		p.ResetPieces()
		return
	}
	defer f.Close()
	// Hashes this process just computed from the file (a repair's plan)
	// are not checked again, and not even read again when they are in
	// the digest wanted.
	trusted := e.hashed[p.Name]
	if trusted && chunk.SamePieceHash(old, algo) {
		return
	}
	buf := make([]byte, 1<<20)
	was := p.Hashes
	p.Hashes = chunk.Digests{}
	for i := 0; i < n; i++ {
		if !p.Done.Has(i) {
			continue
		}
		off, ln := chunk.PieceRange(p.Size, pieceSize, i)
		now := chunk.NewPieceHash(algo)
		check, w := now, io.Writer(now)
		if !chunk.SamePieceHash(old, algo) { // one read feeds both digests
			check = chunk.NewPieceHash(old)
			w = io.MultiWriter(check, now)
		}
		_, err := io.CopyBuffer(w, io.NewSectionReader(f, off, ln), buf)
		if err != nil || !trusted && !bytes.Equal(check.Sum(nil), was.Get(i)) {
			p.Done.Clear(i)
			continue
		}
		p.Hashes.Set(i, n, now.Sum(nil))
	}
}
