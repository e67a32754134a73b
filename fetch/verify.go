package fetch

import (
	"context"

	"github.com/haul-dev/haul/chunk"
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
	st, err := chunk.Load(opts.Dest)
	if err != nil {
		return nil, err
	}
	d := destDir(opts.Dest)
	var todo []*chunk.Part
	for _, p := range st.Parts {
		if p.Complete() || p.Status == chunk.Broken {
			todo = append(todo, p)
		}
	}
	d.checkParts(ctx, st, todo)
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
		if err := d.setCheckVerify(ctx, &opts, st, rep); err != nil {
			return nil, err
		}
	}
	if err := chunk.Save(opts.Dest, st); err != nil {
		return nil, err
	}
	return rep, nil
}
