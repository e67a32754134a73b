package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/pieceplan"
	"github.com/haul-dev/haul/fetch/source"
)

// Repair replaces only broken, missing or unfinished parts. from is a
// source holding good copies (e.g. ssh://host/dir/); "" means the original
// source. Where a manifest gives piece hashes, or the source can hash
// pieces remotely, only the pieces that differ are moved. Every repaired
// part is verified before it takes its final name; a copy that does not
// match the references either is reported and not installed.
func Repair(ctx context.Context, opts Options, from string) (sum *Summary, err error) {
	defer func() { err = opts.contactEnd(sum, settle(err)) }()
	opts.defaults()
	// Every verdict is re-established first: a part changed or deleted
	// since it was proven is repaired like one found broken.
	e := &engine{opts: &opts, repair: true}
	if err := e.recheckDest(ctx, false); err != nil {
		return nil, err
	}
	st, err := chunk.Load(opts.Dest)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range st.Parts {
		if !p.Complete() {
			names = append(names, p.Name)
		}
	}
	if len(names) == 0 {
		return &Summary{Parts: len(st.Parts), Verified: len(st.Parts)}, nil
	}
	srcs := st.Sources
	if from != "" {
		srcs = []string{from}
	}
	opts.Sources = srcs
	op, err := openSources(ctx, &opts)
	if err != nil {
		return nil, err
	}
	opts.Filter = source.Filter{Include: names}
	e.src = op.Source
	defer e.endSources()

	// Decide which pieces to move before the engine starts. A copy that
	// changes while it is hashed is listed again (bounded).
	for round := 1; ; round++ {
		err := e.planRepair(ctx, st)
		if !errors.Is(err, errRelist) {
			if err != nil {
				return nil, err
			}
			break
		}
		if round >= 3 {
			return nil, fmt.Errorf("%w: the copy at %s keeps changing; run again when it is complete", ErrInterrupted, e.src)
		}
	}
	if err := chunk.Save(opts.Dest, st); err != nil {
		return nil, err
	}
	err = e.prepareRun(ctx)
	if e.st == nil {
		return nil, err
	}
	if err == nil {
		err = e.setCheck(ctx)
		if errors.Is(err, errRelist) {
			err = nil // reported broken by the summary
		}
	}
	full, lerr := chunk.Load(opts.Dest)
	if lerr != nil {
		return nil, lerr
	}
	e.st = full
	s := e.summary()
	s.Sources = e.accounts()
	if err == nil {
		err = s.Err(opts.Dest)
	}
	return s, err
}

// planRepair lists the repair source and marks, for every part not
// complete, the pieces that must move.
func (e *engine) planRepair(ctx context.Context, st *chunk.State) error {
	var objs []source.Object
	err := retryTransient(ctx, e.opts, func() error {
		var err error
		objs, err = e.src.List(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", e.src, err)
	}
	byName := map[string]source.Object{}
	for _, o := range objs {
		byName[o.Name] = o
	}
	for _, p := range st.Parts {
		if p.Complete() {
			continue
		}
		o, ok := byName[p.Name]
		if !ok {
			continue // stays missing; reported at the end
		}
		if o.Size != p.Size {
			p.Status = chunk.Broken
			p.Error = fmt.Sprintf("the copy at %s is %d bytes, expected %d", e.src, o.Size, p.Size)
			continue
		}
		if err := e.markBadPieces(ctx, st, p, o); err != nil {
			return err
		}
	}
	return nil
}

// markBadPieces decides which pieces of a broken part must move: those
// whose hashes differ from a manifest's, else from the source's own piece
// hashes (RemoteHasher), else all of them.
func (e *engine) markBadPieces(ctx context.Context, st *chunk.State, p *chunk.Part, o source.Object) error {
	final, partial := e.finalPath(p.Name), e.partialPath(p.Name)
	if _, err := os.Stat(final); err == nil {
		if err := os.Rename(final, partial); err != nil {
			return source.Permanent(err)
		}
	}
	n := chunk.Pieces(p.Size, st.PieceSize)
	p.SetAttempts(0)
	p.Status = chunk.Partial
	p.ResetPieces()
	p.PieceHash = chunk.PieceSHA256 // hashPieces below; prepare converts
	local, err := hashPieces(partial, p.Size, st.PieceSize, n)
	if err != nil {
		p.Status = chunk.Pending
		return nil // nothing usable on disk: every piece moves
	}
	if e.hashed == nil {
		e.hashed = map[string]bool{}
	}
	e.hashed[p.Name] = true // prepare's recheck need not read them again
	want := pieceplan.Refs(p.Refs(), st.PieceSize, n)
	if want == nil {
		if rh, ok := e.src.(source.RemoteHasher); ok {
			all := make([]int, n)
			for i := range all {
				all[i] = i
			}
			if remote, err := rh.HashPieces(ctx, o, st.PieceSize, all); err == nil && len(remote) == n {
				want = make([]string, n)
				for i, h := range remote {
					want[i] = hex.EncodeToString(h)
				}
			} else if ctx.Err() != nil {
				return interrupted(ctx)
			} else if errors.Is(err, source.ErrChanged) {
				return errRelist
			} else if err != nil {
				e.opts.Progress.Event(Event{Kind: chunk.EventWarning, Part: p.Name, Message: fmt.Sprintf("remote hashing unavailable (%v); copying part %s whole", err, p.Name)})
			}
		}
	}
	if want == nil {
		return nil
	}
	for i := 0; i < n; i++ {
		if strings.EqualFold(local[i], want[i]) {
			sum, _ := hex.DecodeString(local[i])
			p.SetPiece(i, n, sum)
		}
	}
	return nil
}

// hashPieces returns the SHA-256 of every piece of a local file.
func hashPieces(path string, size, pieceSize int64, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() != size {
		return nil, fmt.Errorf("%s: size differs", path)
	}
	out := make([]string, n)
	buf := make([]byte, 1<<20)
	for i := 0; i < n; i++ {
		off, ln := chunk.PieceRange(size, pieceSize, i)
		h := sha256.New()
		if _, err := io.CopyBuffer(h, io.NewSectionReader(f, off, ln), buf); err != nil {
			return nil, err
		}
		out[i] = hex.EncodeToString(h.Sum(nil))
	}
	return out, nil
}
