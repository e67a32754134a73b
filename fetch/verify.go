package fetch

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/integrity"
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
func Verify(ctx context.Context, opts Options) (_ *VerifyReport, err error) {
	defer func() { err = settle(err) }()
	opts.defaults()
	st, err := loadState(opts.Dest)
	if err != nil {
		return nil, err
	}
	d := destDir(opts.Dest)
	var todo []*chunk.Part
	for _, p := range st.Parts {
		if p.Complete() || p.Status == chunk.Broken || p.Status == chunk.Missing && p.Size > 0 && exists(d.finalPath(p.Name)) {
			todo = append(todo, p)
		}
	}
	d.checkParts(ctx, st, todo)
	if ctx.Err() != nil {
		return nil, interrupted(ctx)
	}
	d.lastVolumes(st)
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
		if err := d.setCheckVerify(ctx, &opts, st, rep); err != nil {
			return nil, err
		}
	}
	if err := chunk.Save(opts.Dest, st); err != nil {
		return nil, err
	}
	return rep, nil
}

// LoadChecked loads DEST's state with every verdict re-established
// (chunk.Recheck), changing nothing on disk: for `haul status`, which
// holds no lock.
func LoadChecked(ctx context.Context, dest string) (*chunk.State, []chunk.Change, error) {
	st, err := loadState(dest)
	if err != nil {
		return nil, nil, err
	}
	changes, _, err := chunk.Recheck(ctx, dest, st, chunk.RecheckOptions{Prove: proveFile(st)})
	return st, changes, settle(err)
}

// CheckDest re-establishes every verdict in DEST's state (chunk.Recheck)
// and saves it: a part that changed on disk is broken (its file renamed
// to NAME.partial), one deleted is missing. The caller holds DEST's lock.
func CheckDest(ctx context.Context, dest string) ([]chunk.Change, error) {
	return checkDest(ctx, dest, false)
}

func checkDest(ctx context.Context, dest string, keep bool) ([]chunk.Change, error) {
	st, err := loadState(dest)
	if errors.Is(err, chunk.ErrNoState) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	changes, dirty, err := chunk.Recheck(ctx, dest, st, chunk.RecheckOptions{Write: true, Keep: keep, Prove: proveFile(st)})
	if err == nil && dirty {
		err = chunk.Save(dest, st)
	}
	return changes, settle(err)
}

// proveFile proves a part file in full, as Verify does.
func proveFile(st *chunk.State) func(context.Context, *chunk.Part, string) ([]string, string, error) {
	return func(ctx context.Context, p *chunk.Part, path string) ([]string, string, error) {
		res := integrity.VerifyFile(ctx, path, p.Name, p.Size, p.Refs, detectChecks(path, p.Name, partNames(st)))
		return res.VerifiedBy, res.CRC32C, res.Err
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// loadState reads DEST's state.
func loadState(dest string) (*chunk.State, error) { return chunk.Load(dest) }

// recheckDest is Recheck for an engine's run, with its events.
func (e *engine) recheckDest(ctx context.Context, keep bool) error {
	changes, err := checkDest(ctx, e.opts.Dest, keep)
	for _, c := range changes {
		kind, msg := chunk.EventPartBroken, fmt.Sprintf("part %s: %s", c.Part, c.Why)
		if c.Status == chunk.Missing {
			kind = chunk.EventPartMissing
		}
		if c.Status == chunk.Partial {
			msg += "; fetching the pieces that differ again"
		}
		e.opts.Progress.Event(Event{Kind: kind, Part: c.Part, Message: msg})
	}
	return err
}
