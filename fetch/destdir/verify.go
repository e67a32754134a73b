// Checking DEST against its state: the full proof of `haul verify`, and
// the quick re-establishing of verdicts every run starts with.

package destdir

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/integrity"
	"github.com/haul-dev/haul/internal/atomicfile"
	"github.com/haul-dev/haul/internal/safefs"
)

// PartCheck is one part's verify outcome (the JSON of `haul verify`).
type PartCheck struct {
	Name       string   `json:"name"`
	Status     string   `json:"status"`
	VerifiedBy []string `json:"verified_by"`
	Error      string   `json:"error,omitempty"`
}

// Report is the outcome of Verify.
type Report struct {
	OK    bool        `json:"ok"`
	Parts []PartCheck `json:"parts"`
}

// MaxVerifiers bounds the parts read at once: beyond a few, a disk gains
// nothing from more concurrent sequential reads.
const MaxVerifiers = 4

// Verify re-reads every complete part on disk and checks it against every
// reference in the state (bit rot, tampering); the state is updated so
// that `haul repair` knows what to replace. Parts that are not complete
// keep their status. OK is false when any part is broken, missing or not
// yet fetched. Parts are checked concurrently, up to one per core (at
// most MaxVerifiers), each in one sequential pass with its own buffer;
// the report lists them in set order. When every part is complete and
// some are unproven, setCheck (if not nil) decodes the set; label names
// it in verified_by. A ctx that ends first gives ErrStopped.
func Verify(ctx context.Context, dest string, setCheck func(ctx context.Context, paths, names []string) error, label string) (*Report, error) {
	st, err := chunk.Load(dest)
	if err != nil {
		return nil, err
	}
	d := Dir(dest)
	var todo []*chunk.Part
	for _, p := range st.Parts {
		if p.Complete() || p.Status == chunk.Broken || p.Status == chunk.Missing && p.Size > 0 && exists(d.FinalPath(p.Name)) {
			todo = append(todo, p)
		}
	}
	d.checkParts(ctx, st, todo)
	if ctx.Err() != nil {
		return nil, ErrStopped
	}
	d.LastVolumes(st)
	rep := &Report{OK: true}
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
	if rep.OK && setCheck != nil {
		if err := d.setCheckVerify(ctx, setCheck, label, st, rep); err != nil {
			return nil, err
		}
	}
	if err := chunk.Save(dest, st); err != nil {
		return nil, err
	}
	return rep, nil
}

// checkParts runs checkOnDisk on each part with a bounded pool of
// workers (chunk.ForEach). Each worker touches only the part it holds; it
// returns when every part is checked or, soon after, when ctx ends.
func (d Dir) checkParts(ctx context.Context, st *chunk.State, parts []*chunk.Part) {
	names := PartNames(st)
	chunk.ForEach(ctx, len(parts), MaxVerifiers, func(i int) {
		p := parts[i]
		path := d.FinalPath(p.Name)
		if _, err := os.Stat(path); err != nil && p.Status == chunk.Broken {
			path = d.PartialPath(p.Name)
		}
		d.checkOnDisk(ctx, p, path, Checks(path, p.Name, names))
	})
}

// checkOnDisk verifies one part file by its content and sets its status;
// a proven part records the file and digest it was proven in.
func (d Dir) checkOnDisk(ctx context.Context, p *chunk.Part, path string, co integrity.CheckOptions) {
	fi, err := d.PlainFile(path)
	var ue *safefs.UnsafeError
	switch {
	case errors.As(err, &ue):
		p.Status, p.Error, p.VerifiedBy = chunk.Broken, chunk.NotPlain(ue.Path, ue.Why), nil
		p.ClearProof()
		return
	case err != nil:
		p.Status, p.Error, p.VerifiedBy = chunk.Missing, fmt.Sprintf("file %s is gone from DEST", path), nil
		p.Done = nil
		p.ClearProof()
		return
	case fi.Size() != p.Size:
		p.Status, p.Error, p.VerifiedBy = chunk.Broken, fmt.Sprintf("size %d, expected %d", fi.Size(), p.Size), nil
		p.ClearProof()
		return
	}
	res := integrity.VerifyFile(ctx, path, p.Name, p.Size, p.Refs(), co)
	if ctx.Err() != nil {
		return
	}
	if res.Err != nil {
		p.Status, p.Error, p.VerifiedBy = chunk.Broken, res.Err.Error(), nil
		p.ClearProof()
		if path != d.PartialPath(p.Name) {
			// A broken part must not keep its final name.
			if os.Rename(path, d.PartialPath(p.Name)) == nil {
				atomicfile.SyncDir(string(d))
			}
		}
		return
	}
	if path == d.PartialPath(p.Name) {
		if os.Rename(path, d.FinalPath(p.Name)) == nil {
			atomicfile.SyncDir(string(d))
		}
	}
	p.Error, p.VerifiedBy = "", chunk.Labels(res.VerifiedBy)
	p.Status = chunk.Verified
	if len(res.VerifiedBy) == 0 {
		p.Status = chunk.Unverified
	}
	if fi, err := os.Stat(d.FinalPath(p.Name)); err == nil {
		p.SetProof(chunk.StampOf(fi), res.CRC32C)
	}
}

// setCheckVerify runs the set-level decode for Verify.
func (d Dir) setCheckVerify(ctx context.Context, setCheck func(ctx context.Context, paths, names []string) error, label string, st *chunk.State, rep *Report) error {
	need := false
	var paths, names []string
	for _, p := range st.Parts {
		need = need || p.Status == chunk.Unverified
		paths = append(paths, d.FinalPath(p.Name))
		names = append(names, p.Name)
	}
	if !need || len(paths) < 2 {
		return nil
	}
	err := setCheck(ctx, paths, names)
	if ctx.Err() != nil {
		return ErrStopped
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
		byName := st.ByName() // the suspects may be every part of a stream
		for _, name := range Suspects(err, fe) {
			if p := byName[name]; p != nil && p.Status == chunk.Unverified {
				blame[name] = true
			}
		}
		if len(blame) == 0 {
			blame[fe.Part] = true
		}
	}
	for i, p := range st.Parts {
		switch {
		case err == nil && p.Status == chunk.Unverified:
			p.Status = chunk.Verified
			p.VerifiedBy = append(p.VerifiedBy, label)
		case blame[p.Name]:
			p.Status, p.Error, p.VerifiedBy = chunk.Broken, fe.Error(), nil
			rep.OK = false
			if err := d.Unname(p); err != nil {
				return err
			}
		}
		rep.Parts[i].Status, rep.Parts[i].Error = p.Status, p.Error
		rep.Parts[i].VerifiedBy = append([]string{}, p.VerifiedBy...)
	}
	return nil
}

// LoadChecked loads DEST's state with every verdict re-established
// (chunk.Recheck), changing nothing on disk: for `haul status`, which
// holds no lock.
func LoadChecked(ctx context.Context, dest string) (*chunk.State, []chunk.Change, error) {
	st, err := chunk.Load(dest)
	if err != nil {
		return nil, nil, err
	}
	changes, _, err := chunk.Recheck(ctx, dest, st, chunk.RecheckOptions{Prove: proveFile(st)})
	return st, changes, err
}

// Check re-establishes every verdict in DEST's state (chunk.Recheck) and
// saves it: a part that changed on disk is broken (its file renamed to
// NAME.partial), one deleted is missing; keep is a fetch's view
// (chunk.RecheckOptions.Keep). A DEST with no state has nothing to check.
// The caller holds DEST's lock.
func Check(ctx context.Context, dest string, keep bool) ([]chunk.Change, error) {
	st, err := chunk.Load(dest)
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
	return changes, err
}

// proveFile proves a part file in full, as Verify does.
func proveFile(st *chunk.State) func(context.Context, *chunk.Part, string) ([]string, string, error) {
	return func(ctx context.Context, p *chunk.Part, path string) ([]string, string, error) {
		res := integrity.VerifyFile(ctx, path, p.Name, p.Size, p.Refs(), Checks(path, p.Name, PartNames(st)))
		return res.VerifiedBy, res.CRC32C, res.Err
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
