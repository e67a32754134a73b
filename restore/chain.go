package restore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/integrity"
	"github.com/haul-dev/haul/internal/atomicfile"
)

// markerFile records, in DEST/.haul, that a set (or a chain ending with
// it) was restored.
const markerFile = "restored.json"

type marker struct {
	Into     string    `json:"into"`
	Set      string    `json:"set"`
	Finished time.Time `json:"finished"`
}

// Run restores the set fetched into dest; see RunChain.
func Run(ctx context.Context, dest string, opts Options) error {
	return RunChain(ctx, []string{dest}, opts)
}

// RunChain restores the sets fetched into dests, in order, as one tree:
// one set, or an incremental chain (level 0 first, then each increment;
// set opts.Incremental to apply their name lists). Every set is checked
// before anything is written: it refuses while any part of any set is
// broken, missing, pending or partial (*PartsError, exit 3), warns about
// unverified parts, and each set must open as an archive. A format error
// in an unverified part marks that part broken in its set's state, so
// that `haul repair` fetches it again. Assemble takes one set only.
func RunChain(ctx context.Context, dests []string, opts Options) error {
	prog := progress{opts.Progress}
	if (opts.Into == "") == (opts.Assemble == "") {
		return errors.New("restore: give exactly one of --into DIR and --assemble FILE")
	}
	if len(dests) == 0 {
		return errors.New("restore: no DEST given")
	}
	if opts.Assemble != "" && len(dests) > 1 {
		return errors.New("restore: --assemble joins the parts of one DEST; give one")
	}
	// Only the parts are kept, not the states: at 100,000 parts a state
	// is some 40 MB, and markBroken, the one user, loads it again.
	sets := make([][]Part, len(dests))
	for i, dest := range dests {
		parts, err := readySet(dest, len(dests) > 1, prog)
		if err != nil {
			return err
		}
		sets[i] = parts
	}
	if opts.Assemble != "" {
		return Assemble(ctx, sets[0], opts.Assemble, opts.Progress)
	}
	// Running the same command again is safe: a set already restored into
	// this DIR (which still exists) is done, not a non-empty target.
	if done, _ := DoneChain(dests, opts.Into); done {
		prog.warn(fmt.Sprintf("this set is already restored into %s; nothing to do (restore into another directory to unpack it again)", opts.Into))
		return nil
	}
	err := RestoreChain(ctx, sets, opts)
	last := dests[len(dests)-1]
	var pe *PartsError
	if errors.As(err, &pe) && pe.Dest == "" {
		pe.Dest = last
	}
	var fe *integrity.FormatError
	if errors.As(err, &fe) {
		return markBroken(err, fe, dests, sets)
	}
	if err != nil {
		return err
	}
	into, _ := filepath.Abs(opts.Into)
	m, _ := json.Marshal(marker{Into: into, Set: chainID("", sets), Finished: time.Now().UTC()})
	if err := atomicfile.WriteFile(filepath.Join(last, chunk.StateDir, markerFile), m, 0o600); err != nil {
		prog.warn("could not record the restore in " + last + ": " + err.Error())
	}
	return nil
}

// readySet loads the set in dest and refuses it unless every part is
// complete. In a chain, part names carry their DEST, so messages say
// which set a part belongs to.
func readySet(dest string, inChain bool, prog progress) ([]Part, error) {
	st, err := chunk.Load(dest)
	if err != nil {
		return nil, err
	}
	notReady := &PartsError{Dest: dest}
	var unverified []string
	parts := make([]Part, 0, len(st.Parts))
	for _, p := range st.Parts {
		switch p.Status {
		case chunk.Verified:
		case chunk.Unverified:
			unverified = append(unverified, p.Name)
		default:
			notReady.Parts = append(notReady.Parts, p.Name)
			notReady.Status = append(notReady.Status, p.Status)
		}
		name := p.Name
		if inChain {
			name = filepath.Join(dest, p.Name)
		}
		parts = append(parts, Part{Name: name, Path: filepath.Join(dest, p.Name), Size: p.Size, CRC32C: p.CRC32C, Dev: p.Dev, Ino: p.Ino})
	}
	if len(notReady.Parts) > 0 {
		return nil, notReady
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("restore: %s holds no parts", dest)
	}
	if len(unverified) > 0 {
		prog.warn(fmt.Sprintf("%s: %d part(s) could not be proven by any reference: %s; damage in them shows only while unpacking (haul status %s lists them)",
			dest, len(unverified), firstFew(unverified, len(unverified)), dest))
	}
	return parts, nil
}

// markBroken marks the unverified part a format error names as broken in
// its set's state.
func markBroken(err error, fe *integrity.FormatError, dests []string, sets [][]Part) error {
	for i, parts := range sets {
		for _, p := range parts {
			if p.Name != fe.Part {
				continue
			}
			st, lerr := chunk.Load(dests[i])
			if lerr != nil {
				return err
			}
			sp := st.Find(filepath.Base(p.Path))
			if sp == nil || sp.Status != chunk.Unverified {
				return err
			}
			sp.Status, sp.Error = chunk.Broken, fe.Error()
			if serr := chunk.Save(dests[i], st); serr != nil {
				return err
			}
			return fmt.Errorf("%w; %s is now marked broken: run: haul repair %s", err, sp.Name, dests[i])
		}
	}
	return err
}

// Done reports whether Run has restored the set now in dest into the
// directory into (so `haul run` can skip the step).
func Done(dest, into string) (bool, error) {
	return DoneChain([]string{dest}, into)
}

// DoneChain reports whether RunChain has restored the sets now in dests
// into the directory into. It compares the parts by name and size with
// what was restored.
func DoneChain(dests []string, into string) (bool, error) {
	if len(dests) == 0 {
		return false, nil
	}
	data, err := os.ReadFile(filepath.Join(dests[len(dests)-1], chunk.StateDir, markerFile))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("restore: %w", err)
	}
	var m marker
	if err := json.Unmarshal(data, &m); err != nil {
		return false, nil
	}
	sets := make([][]Part, len(dests))
	for i, dest := range dests {
		st, err := chunk.Load(dest)
		if err != nil {
			return false, err
		}
		for _, p := range st.Parts {
			name := p.Name
			if len(dests) > 1 {
				name = filepath.Join(dest, p.Name)
			}
			sets[i] = append(sets[i], Part{Name: name, Size: p.Size})
		}
	}
	abs, _ := filepath.Abs(into)
	if m.Into != abs || m.Set != chainID("", sets) {
		return false, nil
	}
	_, err = os.Stat(abs)
	return err == nil, nil
}

// chainID names a chain of sets and its target; for one set it is setID.
func chainID(into string, sets [][]Part) string {
	if len(sets) == 1 {
		return setID(into, sets[0])
	}
	var all []Part
	for i, s := range sets {
		all = append(all, Part{Name: fmt.Sprintf("\x01set %d", i)})
		all = append(all, s...)
	}
	return setID(into, all)
}

// RestoreChain unpacks sets, in order, into opts.Into as one tree: each
// set's entries are written over the ones before (with opts.Incremental,
// applying their name lists), in one staging directory moved into place
// when the last set is done. Every set is opened and checked first
// (complete, a known format, the password, a tar or zip inside), so a set
// that cannot be read stops the chain before anything is written. With
// one set it is Restore.
func RestoreChain(ctx context.Context, sets [][]Part, opts Options) error {
	prog := progress{opts.Progress}
	if opts.Into == "" {
		return errors.New("restore: no target directory")
	}
	if len(sets) == 0 {
		return errors.New("restore: no set to restore")
	}
	password, err := readPassword(opts.PasswordFile)
	if err != nil {
		return err
	}
	// Open every set before writing anything; keep only the first open
	// (decoders hold memory), the others are opened again in turn.
	var need, total int64
	var first *archive
	for i, parts := range sets {
		a, err := openArchive(parts, password, false, prog)
		if err != nil {
			if first != nil {
				first.close()
			}
			return err
		}
		need, total = max(need, a.need), total+a.j.Size()
		if i == 0 {
			first = a
		} else {
			a.close()
		}
	}
	defer func() {
		if first != nil {
			first.close()
		}
	}()
	into, err := checkTarget(opts.Into)
	if err != nil {
		return err
	}
	free, err := statFree(filepath.Dir(into))
	if err != nil {
		free = -1
	}
	if free >= 0 && free < need {
		return &NoSpaceError{Dir: filepath.Dir(into), Need: need, Free: free}
	}
	if opts.SameOwner && os.Geteuid() != 0 {
		prog.warn("--same-owner needs root; files will belong to the current user")
		opts.SameOwner = false
	}
	stg, err := newStaging(into, chainID(into, sets))
	if err != nil {
		return err
	}
	prog.start(total)
	x := newExtractor(ctx, stg.root, opts, prog)
	x.spaceDir, x.free = filepath.Dir(into), free
	for i, parts := range sets {
		a := first
		if i > 0 {
			if a, err = openArchive(parts, password, false, progress{}); err != nil {
				break
			}
		}
		err = a.extract(ctx, x)
		var de *DigestError
		if cerr := a.j.CheckDigests(err != nil); errors.As(cerr, &de) || err == nil {
			err = cerr
		}
		a.close()
		first = nil
		if err != nil {
			break
		}
	}
	if err == nil {
		err = x.finish()
	}
	if err == nil {
		err = stg.commit(into)
	}
	if err != nil {
		stg.discard()
		return err
	}
	return nil
}
