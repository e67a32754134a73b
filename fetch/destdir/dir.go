// DEST's part files: their names, the safe ways to open them, and the
// renames that say a part is proven or not.

package destdir

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/integrity"
	"github.com/haul-dev/haul/internal/atomicfile"
	"github.com/haul-dev/haul/internal/safefs"
)

// Dir is DEST: where the part files are. Verify works on it alone; the
// engine through it.
type Dir string

// PartialPath is where a part's bytes are until it is proven.
func (d Dir) PartialPath(name string) string { return filepath.Join(string(d), name+".partial") }

// FinalPath is where a proven part is.
func (d Dir) FinalPath(name string) string { return filepath.Join(string(d), name) }

// OpenPartial opens NAME.partial for writing, creating it when absent.
// One that is a link, not a regular file or has more than one hard link
// is never written through: it is removed and a new empty file made
// (fresh says so: its bytes must come again).
func (d Dir) OpenPartial(name string) (f *os.File, fresh bool, err error) {
	dir, err := safefs.Open(string(d))
	if err != nil {
		return nil, false, err
	}
	defer dir.Close()
	return dir.OpenFresh(name+".partial", os.O_RDWR, 0o644)
}

// PlainFile describes DEST/NAME or DEST/NAME.partial (path) when it is a
// file haul may take as a part's bytes: a regular file with one link,
// never what a link points to.
func (d Dir) PlainFile(path string) (os.FileInfo, error) {
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
		return nil, &safefs.UnsafeError{Path: path, Why: safefs.Problem(fi)}
	}
	return fi, nil
}

// OpenPlain opens path (DEST/NAME or DEST/NAME.partial) for reading when
// it is a plain file of haul's (see PlainFile).
func (d Dir) OpenPlain(path string) (*os.File, error) {
	dir, err := safefs.Open(string(d))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	return dir.OpenFile(filepath.Base(path), os.O_RDONLY, 0)
}

// Promote renames NAME.partial to NAME once the part is proven, after
// making sure the name still holds the file the engine wrote (f, when it
// is open): a link swapped in meanwhile never takes the part's name. The
// rename is not yet durable: Renames.Sync makes it so.
func (d Dir) Promote(name string, f *os.File) error {
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
		return &safefs.UnsafeError{Path: d.PartialPath(name), Why: "was replaced by a link or another file during the run (removed; run again to fetch the part anew)"}
	}
	return dir.Rename(name+".partial", name)
}

// Unname moves a part that turned out broken from NAME back to
// NAME.partial: only complete and proven parts carry their final name.
func (d Dir) Unname(p *chunk.Part) error {
	if err := os.Rename(d.FinalPath(p.Name), d.PartialPath(p.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return source.Permanent(fmt.Errorf("rename %s: %w", d.FinalPath(p.Name), err))
	}
	return atomicfile.SyncDir(string(d))
}

// Ensure creates DEST/.haul and proves it is writable.
func Ensure(dest string) error {
	if dest == "" {
		return source.Permanent(fmt.Errorf("no DEST given: %w", source.ErrBadSource))
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return source.Permanent(fmt.Errorf("DEST %s is not writable (%v): choose another directory or fix its permissions: %w", dest, errors.Unwrap(err), ErrDest))
	}
	sd, err := chunk.OpenStateDir(dest, true)
	if errors.Is(err, safefs.ErrUnsafe) {
		return source.Permanent(err)
	}
	if err == nil {
		defer sd.Close()
		err = sd.WriteFile(".probe", nil, 0o600)
	}
	if err != nil {
		return source.Permanent(fmt.Errorf("DEST %s is not writable (%v): choose another directory or fix its permissions: %w", dest, errors.Unwrap(err), ErrDest))
	}
	return sd.Remove(".probe")
}

// PartNames are the names of the set's parts, for structural check choice.
func PartNames(st *chunk.State) []string {
	out := make([]string, 0, len(st.Parts))
	for _, p := range st.Parts {
		out = append(out, p.Name)
	}
	return out
}

// Checks chooses the structural checks a part file can carry on its own
// from its first bytes and the set's names (integrity.DetectChecks):
// Bitrix volumes and whole gzip files. Parts of a stream split at
// arbitrary bytes are checked together by a SetCheck instead.
func Checks(path, name string, setNames []string) integrity.CheckOptions {
	f, err := os.Open(path)
	if err != nil {
		return integrity.CheckOptions{}
	}
	defer f.Close()
	checks, _ := checksOf(f, name, setNames)
	return checks
}

// checksOf is Checks on an open part file.
func checksOf(f io.ReaderAt, name string, setNames []string) (integrity.CheckOptions, error) {
	head := make([]byte, integrity.BitrixHeaderLen)
	n, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return integrity.CheckOptions{}, err
	}
	return integrity.DetectChecks(name, head[:n], setNames), nil
}

// LastVolumes marks missing the volumes the first volume's LN field names
// (source.LastVolumes) that the state lacks, once the first volume is on
// disk: a Bitrix set is complete whatever the source. It reports whether
// it added any.
func (d Dir) LastVolumes(st *chunk.State) bool {
	if len(st.Parts) == 0 || !st.Parts[0].Complete() {
		return false
	}
	f, err := d.OpenPlain(d.FinalPath(st.Parts[0].Name))
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, integrity.BitrixHeaderLen)
	n, _ := io.ReadFull(f, head)
	lack := source.LastVolumes(st.Parts[0].Name, head[:n], PartNames(st))
	for _, name := range lack {
		st.Parts = append(st.Parts, &chunk.Part{Name: name, Status: chunk.Missing, Error: "named by the first volume's LN field but not found at the source"})
	}
	slices.SortFunc(st.Parts, func(a, b *chunk.Part) int { return source.NaturalCompare(a.Name, b.Name) })
	return len(lack) > 0
}
