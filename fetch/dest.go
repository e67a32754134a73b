// DEST on disk, with no engine: the part files' names, and the checks
// Verify runs on them.

package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/integrity"
	"github.com/haul-dev/haul/internal/atomicfile"
	"github.com/haul-dev/haul/internal/redact"
	"github.com/haul-dev/haul/internal/safefs"
)

// destDir is DEST: where the part files are. Verify works on it alone;
// the engine through it.
type destDir string

func (d destDir) partialPath(name string) string { return filepath.Join(string(d), name+".partial") }

func (d destDir) finalPath(name string) string { return filepath.Join(string(d), name) }

// openPartial opens NAME.partial for writing, creating it when absent.
// One that is a link, not a regular file or has more than one hard link
// is never written through: it is removed and a new empty file made
// (fresh says so: its bytes must come again).
func (d destDir) openPartial(name string) (f *os.File, fresh bool, err error) {
	dir, err := safefs.Open(string(d))
	if err != nil {
		return nil, false, err
	}
	defer dir.Close()
	return dir.OpenFresh(name+".partial", os.O_RDWR, 0o644)
}

// plainFile describes DEST/NAME or DEST/NAME.partial (path) when it is a
// file haul may take as a part's bytes: a regular file with one link,
// never what a link points to.
func (d destDir) plainFile(path string) (os.FileInfo, error) {
	dir, err := safefs.Open(string(d))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	name := filepath.Base(path)
	fi, ok := dir.IsPlainFile(name)
	if !ok {
		if fi == nil {
			return nil, &os.PathError{Op: "lstat", Path: path, Err: os.ErrNotExist}
		}
		return nil, &safefs.UnsafeError{Path: path, Why: "is a link or not a regular file"}
	}
	return fi, nil
}

// openPlain opens path (DEST/NAME or DEST/NAME.partial) for reading when
// it is a plain file of haul's (see plainFile).
func (d destDir) openPlain(path string) (*os.File, error) {
	dir, err := safefs.Open(string(d))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	return dir.OpenFile(filepath.Base(path), os.O_RDONLY, 0)
}

// promote renames NAME.partial to NAME once the part is proven, after
// making sure the name still holds the file the engine wrote (f, when it
// is open): a link swapped in meanwhile never takes the part's name.
func (d destDir) promote(name string, f *os.File) error {
	dir, err := safefs.Open(string(d))
	if err != nil {
		return err
	}
	defer dir.Close()
	fi, ok := dir.IsPlainFile(name + ".partial")
	if ok && f != nil {
		mine, err := f.Stat()
		ok = err == nil && os.SameFile(fi, mine)
	}
	if !ok {
		_ = dir.Remove(name + ".partial")
		return &safefs.UnsafeError{Path: d.partialPath(name), Why: "was replaced by a link or another file during the run (removed; run again to fetch the part anew)"}
	}
	if err := dir.Rename(name+".partial", name); err != nil {
		return err
	}
	return dir.Sync()
}

// unname moves a part that turned out broken from NAME back to
// NAME.partial: only complete and proven parts carry their final name.
func (d destDir) unname(p *chunk.Part) error {
	if err := os.Rename(d.finalPath(p.Name), d.partialPath(p.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return source.Permanent(fmt.Errorf("rename %s: %w", d.finalPath(p.Name), err))
	}
	return atomicfile.SyncDir(string(d))
}

// partNames are the names of the set's parts, for structural check choice.
func partNames(st *chunk.State) []string {
	out := make([]string, 0, len(st.Parts))
	for _, p := range st.Parts {
		out = append(out, p.Name)
	}
	return out
}

// checkParts runs checkOnDisk on each part with a bounded pool of
// workers (chunk.ForEach). Each worker touches only the part it holds; it
// returns when every part is checked or, soon after, when ctx ends.
func (d destDir) checkParts(ctx context.Context, st *chunk.State, parts []*chunk.Part) {
	names := partNames(st)
	chunk.ForEach(ctx, len(parts), maxVerifiers, func(i int) {
		p := parts[i]
		path := d.finalPath(p.Name)
		if _, err := os.Stat(path); err != nil && p.Status == chunk.Broken {
			path = d.partialPath(p.Name)
		}
		d.checkOnDisk(ctx, p, path, detectChecks(path, p.Name, names))
	})
}

// checkOnDisk verifies one part file by its content and sets its status;
// a proven part records the file and digest it was proven in.
func (d destDir) checkOnDisk(ctx context.Context, p *chunk.Part, path string, co integrity.CheckOptions) {
	fi, err := d.plainFile(path)
	switch {
	case errors.Is(err, safefs.ErrUnsafe):
		p.Status, p.Error, p.VerifiedBy = chunk.Broken, err.Error(), nil
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
	res := integrity.VerifyFile(ctx, path, p.Name, p.Size, p.Refs, co)
	if ctx.Err() != nil {
		return
	}
	if res.Err != nil {
		p.Status, p.Error, p.VerifiedBy = chunk.Broken, res.Err.Error(), nil
		p.ClearProof()
		if path != d.partialPath(p.Name) {
			// A broken part must not keep its final name.
			if os.Rename(path, d.partialPath(p.Name)) == nil {
				atomicfile.SyncDir(string(d))
			}
		}
		return
	}
	if path == d.partialPath(p.Name) {
		if os.Rename(path, d.finalPath(p.Name)) == nil {
			atomicfile.SyncDir(string(d))
		}
	}
	p.Error, p.VerifiedBy = "", res.VerifiedBy
	p.Status = chunk.Verified
	if len(res.VerifiedBy) == 0 {
		p.Status = chunk.Unverified
	}
	if fi, err := os.Stat(d.finalPath(p.Name)); err == nil {
		p.SetProof(chunk.StampOf(fi), res.CRC32C)
	}
}

// setCheckVerify runs the set-level decode for Verify.
func (d destDir) setCheckVerify(ctx context.Context, opts *Options, st *chunk.State, rep *VerifyReport) error {
	need := false
	var paths, names []string
	for _, p := range st.Parts {
		need = need || p.Status == chunk.Unverified
		paths = append(paths, d.finalPath(p.Name))
		names = append(names, p.Name)
	}
	if !need || len(paths) < 2 {
		return nil
	}
	err := opts.SetCheck(ctx, paths, names)
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
			if p := st.Find(name); p != nil && p.Status == chunk.Unverified {
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
			p.VerifiedBy = append(p.VerifiedBy, opts.SetCheckLabel)
		case blame[p.Name]:
			p.Status, p.Error, p.VerifiedBy = chunk.Broken, fe.Error(), nil
			rep.OK = false
			if err := d.unname(p); err != nil {
				return err
			}
		}
		rep.Parts[i].Status, rep.Parts[i].Error = p.Status, p.Error
		rep.Parts[i].VerifiedBy = append([]string{}, p.VerifiedBy...)
	}
	return nil
}

// setOf names the set some SOURCE arguments select, so that two runs can
// tell whether they fetch the same one: each argument with its secrets
// and what changes between equal links left out (a presigned URL's query
// string, user info), a local path made absolute.
func setOf(sources []string) []string {
	out := make([]string, 0, len(sources))
	for _, s := range sources {
		if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Host != "" {
			u.RawQuery, u.Fragment, u.User = "", "", nil
			s = u.String()
		} else if abs, err := filepath.Abs(strings.TrimPrefix(s, "file://")); err == nil {
			s = abs
		}
		out = append(out, strings.TrimSuffix(s, "/"))
	}
	return out
}

// sameSet checks that DEST holds no other set than the one opts fetch
// (a DEST holds one set): a different source is refused with
// ErrOtherSet, naming both and the fixes, unless opts.Replace, which
// discards the old set's parts and state first. The same source given
// with fresh presigned links is the same set and keeps its progress, as
// is a list of links sharing one with the old list.
func sameSet(opts *Options) error {
	st, err := loadState(opts.Dest)
	if errors.Is(err, chunk.ErrNoState) || err == nil && len(st.Parts) == 0 || err == nil && len(st.Sources) == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	old, now := setOf(st.Sources), setOf(opts.Sources)
	for _, s := range now {
		if slices.Contains(old, s) {
			return nil
		}
	}
	if !opts.Replace {
		return source.Permanent(&OtherSetError{Dest: opts.Dest, Old: redactAll(st.Sources), New: redactAll(opts.Sources)})
	}
	d := destDir(opts.Dest)
	for _, p := range st.Parts {
		for _, path := range []string{d.finalPath(p.Name), d.partialPath(p.Name)} {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return source.Permanent(fmt.Errorf("--replace: %w", err))
			}
		}
	}
	if err := os.Remove(chunk.StatePath(opts.Dest)); err != nil {
		return source.Permanent(fmt.Errorf("--replace: %w", err))
	}
	opts.Progress.Event(Event{Kind: chunk.EventWarning, Message: fmt.Sprintf("--replace: discarded the set from %s (%d parts) that %s held", strings.Join(redactAll(st.Sources), " "), len(st.Parts), opts.Dest)})
	return atomicfile.SyncDir(opts.Dest)
}

func redactAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = redact.URL(s)
	}
	return out
}

// OtherSetError says DEST holds another set than the one asked for
// (exit 1).
type OtherSetError struct {
	Dest     string
	Old, New []string // the sources, redacted
}

func (e *OtherSetError) Error() string {
	return fmt.Sprintf("DEST %s holds another set (from %s), not the one from %s: use another DEST, or give --replace to discard the old set",
		e.Dest, strings.Join(e.Old, " "), strings.Join(e.New, " "))
}

func (e *OtherSetError) Unwrap() error { return ErrDest }

// lastVolumes marks missing the volumes the first volume's LN field names
// (source.LastVolumes) that the state lacks, once the first volume is on
// disk: a Bitrix set is complete whatever the source. It reports whether
// it added any.
func (d destDir) lastVolumes(st *chunk.State) bool {
	if len(st.Parts) == 0 || !st.Parts[0].Complete() {
		return false
	}
	f, err := d.openPlain(d.finalPath(st.Parts[0].Name))
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, integrity.BitrixHeaderLen)
	n, _ := io.ReadFull(f, head)
	lack := source.LastVolumes(st.Parts[0].Name, head[:n], partNames(st))
	for _, name := range lack {
		st.Parts = append(st.Parts, &chunk.Part{Name: name, Status: chunk.Missing, Error: "named by the first volume's LN field but not found at the source"})
	}
	slices.SortFunc(st.Parts, func(a, b *chunk.Part) int { return source.NaturalCompare(a.Name, b.Name) })
	return len(lack) > 0
}
