package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/integrity"
	"github.com/haul-dev/haul/internal/atomicfile"
)

// PartCheck is one part's verify outcome (the JSON of `haul verify`).
type PartCheck struct {
	Name       string   `json:"name"`
	Status     string   `json:"status"`
	VerifiedBy []string `json:"verified_by"`
	Error      string   `json:"error,omitempty"`
}

// VerifyReport is the outcome of Verify.
type VerifyReport struct {
	OK    bool        `json:"ok"`
	Parts []PartCheck `json:"parts"`
}

// maxVerifiers bounds the parts Verify reads at once: beyond a few, a
// disk gains nothing from more concurrent sequential reads.
const maxVerifiers = 4

// Verify re-reads every complete part on disk and checks it against every
// reference in the state (bit rot, tampering); the state is updated so
// that `haul repair` knows what to replace. Parts that are not complete
// keep their status. OK is false when any part is broken, missing or not
// yet fetched. Parts are checked concurrently, up to one per core (at
// most maxVerifiers), each in one sequential pass with its own buffer;
// the report lists them in set order.
func Verify(ctx context.Context, opts Options) (*VerifyReport, error) {
	opts.defaults()
	st, err := chunk.Load(opts.Dest)
	if err != nil {
		return nil, err
	}
	e := &engine{opts: &opts, st: st, changed: make(chan struct{})}
	var todo []*chunk.Part
	for _, p := range st.Parts {
		if p.Complete() || p.Status == chunk.Broken {
			todo = append(todo, p)
		}
	}
	e.checkParts(ctx, todo)
	if ctx.Err() != nil {
		return nil, interrupted(ctx)
	}
	rep := &VerifyReport{OK: true}
	for _, p := range st.Parts {
		pc := PartCheck{Name: p.Name, Status: p.Status, VerifiedBy: p.VerifiedBy, Error: p.Error}
		if pc.VerifiedBy == nil {
			pc.VerifiedBy = []string{}
		}
		if !p.Complete() {
			rep.OK = false
			if pc.Error == "" && p.Status != chunk.Broken && p.Status != chunk.Missing {
				pc.Error = "not fetched yet"
			}
		}
		rep.Parts = append(rep.Parts, pc)
	}
	if rep.OK && opts.SetCheck != nil {
		e.runs = nil
		if err := e.setCheckVerify(ctx, rep); err != nil {
			return nil, err
		}
	}
	if err := chunk.Save(opts.Dest, st); err != nil {
		return nil, err
	}
	return rep, nil
}

// checkParts runs checkOnDisk on each part with a bounded pool of
// workers. Each worker touches only the part it holds; it returns when
// every part is checked or, soon after, when ctx ends.
func (e *engine) checkParts(ctx context.Context, parts []*chunk.Part) {
	names := e.names()
	q := make(chan *chunk.Part)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), maxVerifiers, len(parts)) {
		wg.Go(func() {
			for p := range q {
				path := e.finalPath(p.Name)
				if _, err := os.Stat(path); err != nil && p.Status == chunk.Broken {
					path = e.partialPath(p.Name)
				}
				e.checkOnDisk(ctx, p, path, detectChecks(path, p.Name, names))
			}
		})
	}
feed:
	for _, p := range parts {
		select {
		case q <- p:
		case <-ctx.Done():
			break feed
		}
	}
	close(q)
	wg.Wait()
}

// checkOnDisk verifies one part file and sets its status.
func (e *engine) checkOnDisk(ctx context.Context, p *chunk.Part, path string, co integrity.CheckOptions) {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		p.Status, p.Error, p.VerifiedBy = chunk.Broken, fmt.Sprintf("file %s is gone", path), nil
		return
	case fi.Size() != p.Size:
		p.Status, p.Error, p.VerifiedBy = chunk.Broken, fmt.Sprintf("size %d, expected %d", fi.Size(), p.Size), nil
		return
	}
	res := integrity.VerifyFile(ctx, path, p.Name, p.Size, p.Refs, co)
	if ctx.Err() != nil {
		return
	}
	if res.Err != nil {
		p.Status, p.Error, p.VerifiedBy = chunk.Broken, res.Err.Error(), nil
		if path != e.partialPath(p.Name) {
			// A broken part must not keep its final name.
			if os.Rename(path, e.partialPath(p.Name)) == nil {
				atomicfile.SyncDir(e.opts.Dest)
			}
		}
		return
	}
	if path == e.partialPath(p.Name) {
		if os.Rename(path, e.finalPath(p.Name)) == nil {
			atomicfile.SyncDir(e.opts.Dest)
		}
	}
	p.Error, p.VerifiedBy = "", res.VerifiedBy
	p.Status = chunk.Verified
	if len(res.VerifiedBy) == 0 {
		p.Status = chunk.Unverified
	}
}

// setCheckVerify runs the set-level decode for Verify.
func (e *engine) setCheckVerify(ctx context.Context, rep *VerifyReport) error {
	need := false
	var paths, names []string
	for _, p := range e.st.Parts {
		need = need || p.Status == chunk.Unverified
		paths = append(paths, e.finalPath(p.Name))
		names = append(names, p.Name)
	}
	if !need || len(paths) < 2 {
		return nil
	}
	err := e.opts.SetCheck(ctx, paths, names)
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	if errors.Is(err, ErrNoVerdict) {
		return nil
	}
	var fe *integrity.FormatError
	if err != nil && !errors.As(err, &fe) {
		return err
	}
	// The parts to blame: the unproven ones among those the failed check
	// covers, else the one it names.
	blame := map[string]bool{}
	if fe != nil {
		for _, name := range suspects(err, fe) {
			if p := e.st.Find(name); p != nil && p.Status == chunk.Unverified {
				blame[name] = true
			}
		}
		if len(blame) == 0 {
			blame[fe.Part] = true
		}
	}
	for i, p := range e.st.Parts {
		switch {
		case err == nil && p.Status == chunk.Unverified:
			p.Status = chunk.Verified
			p.VerifiedBy = append(p.VerifiedBy, e.opts.SetCheckLabel)
		case blame[p.Name]:
			p.Status, p.Error, p.VerifiedBy = chunk.Broken, fe.Error(), nil
			rep.OK = false
			if err := e.unname(p); err != nil {
				return err
			}
		}
		rep.Parts[i].Status, rep.Parts[i].Error = p.Status, p.Error
		rep.Parts[i].VerifiedBy = append([]string{}, p.VerifiedBy...)
	}
	return nil
}

// Repair replaces only broken, missing or unfinished parts. from is a
// source holding good copies (e.g. ssh://host/dir/); "" means the original
// source. Where a manifest gives piece hashes, or the source can hash
// pieces remotely, only the pieces that differ are moved. Every repaired
// part is verified before it takes its final name; a copy that does not
// match the references either is reported and not installed.
func Repair(ctx context.Context, opts Options, from string) (*Summary, error) {
	opts.defaults()
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
	opts.Filter = Filter{Include: names}
	e := &engine{opts: &opts, src: op.Source, repair: true}
	defer func() { e.src.Close() }()

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
	if err == nil {
		err = s.Err(opts.Dest)
	}
	return s, err
}

// planRepair lists the repair source and marks, for every part not
// complete, the pieces that must move.
func (e *engine) planRepair(ctx context.Context, st *chunk.State) error {
	var objs []Object
	err := retryTransient(ctx, e.opts, func() error {
		var err error
		objs, err = e.src.List(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", e.src, err)
	}
	byName := map[string]Object{}
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
func (e *engine) markBadPieces(ctx context.Context, st *chunk.State, p *chunk.Part, o Object) error {
	final, partial := e.finalPath(p.Name), e.partialPath(p.Name)
	if _, err := os.Stat(final); err == nil {
		if err := os.Rename(final, partial); err != nil {
			return Permanent(err)
		}
	}
	n := chunk.Pieces(p.Size, st.PieceSize)
	p.Attempts = 0
	p.Status = chunk.Partial
	p.Hashes = make([]string, n)
	p.PieceHash = chunk.PieceSHA256 // hashPieces below; prepare converts
	p.Done = nil
	local, err := hashPieces(partial, p.Size, st.PieceSize, n)
	if err != nil {
		p.Status = chunk.Pending
		return nil // nothing usable on disk: every piece moves
	}
	if e.hashed == nil {
		e.hashed = map[string]bool{}
	}
	e.hashed[p.Name] = true // prepare's recheck need not read them again
	want := pieceRefs(p.Refs, st.PieceSize, n)
	if want == nil {
		if rh, ok := e.src.(RemoteHasher); ok {
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
			} else if errors.Is(err, ErrChanged) {
				return errRelist
			} else if err != nil {
				e.opts.Progress.Event(Event{Kind: EventWarning, Part: p.Name, Message: fmt.Sprintf("remote hashing unavailable (%v); copying part %s whole", err, p.Name)})
			}
		}
	}
	if want == nil {
		return nil
	}
	for i := 0; i < n; i++ {
		if strings.EqualFold(local[i], want[i]) {
			p.Done.Set(i)
			p.Hashes[i] = local[i]
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
