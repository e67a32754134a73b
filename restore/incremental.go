package restore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// A GNU tar incremental archive (`tar --listed-incremental`) stores each
// directory as a 'D' entry whose data, the dumpdir, lists the names the
// directory held at backup time, each behind a letter: Y (stored in this
// archive), N (not stored: unchanged since the previous level), D (a
// directory). R and T name a directory renamed since (from, to, as paths
// from the top of the archive), X a temporary name for cycles of renames.
// The list ends with an empty name.
//
// Restoring a chain (level 0, then each increment) with dumpdirs applied
// (Options.Incremental) does what `tar -x --listed-incremental` does:
// the renames first, then every name in the directory that the list no
// longer holds (or holds as a directory where a file is, and the reverse)
// is removed, with everything under it. Names to remove come from the
// directory on disk, never from the archive, and every step is taken
// through the handle of the directory inside the tree, without following
// a link.

// maxDumpdir bounds the list of one directory held in memory: about a
// million names.
const maxDumpdir = 64 << 20

// dumpdir is a directory's list, parsed.
type dumpdir struct {
	names   map[string]byte // name → Y, N or D
	renames [][2]string     // from, to
}

// readDumpdir reads and checks the list of entry e from r.
func readDumpdir(e *entry, r io.Reader) (*dumpdir, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxDumpdir+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxDumpdir {
		return nil, fmt.Errorf("restore: %s: %w: its list of names is over %d bytes", e.raw, ErrUnsupported, maxDumpdir)
	}
	bad := func(why string) error {
		return fmt.Errorf("restore: %s: %w: malformed GNU dumpdir (%s)", e.raw, ErrUnsupported, why)
	}
	dd := &dumpdir{names: map[string]byte{}}
	var from *string
	for len(data) > 0 {
		i := bytes.IndexByte(data, 0)
		if i < 0 {
			return nil, bad("a name does not end")
		}
		rec := string(data[:i])
		data = data[i+1:]
		if rec == "" {
			break // the end of the list
		}
		c, name := rec[0], rec[1:]
		if from != nil && c != 'T' {
			return nil, bad("R without T")
		}
		switch c {
		case 'Y', 'N', 'D':
			dd.names[name] = c
		case 'R':
			from = &name
		case 'T':
			if from == nil {
				return nil, bad("T without R")
			}
			dd.renames = append(dd.renames, [2]string{*from, name})
			from = nil
		case 'X':
			// The temporary name of a rename cycle: its renames go to and
			// from an empty name, refused below.
		default:
			return nil, bad(fmt.Sprintf("unknown letter %q", c))
		}
	}
	if from != nil {
		return nil, bad("R without T")
	}
	return dd, nil
}

// purge applies the list of directory entry e (already in the tree):
// renames, then removals.
func (x *extractor) purge(e *entry) error {
	for _, rn := range e.list.renames {
		if err := x.rename(e, rn[0], rn[1]); err != nil {
			return err
		}
	}
	d, err := x.dir(e.name, e)
	if err != nil {
		return err
	}
	f, err := d.Open(".")
	if err != nil {
		return fmt.Errorf("restore: %s: %w", e.raw, err)
	}
	names, err := f.Readdirnames(-1)
	_ = f.Close()
	if err != nil {
		return fmt.Errorf("restore: %s: %w", e.raw, err)
	}
	removedDir := false
	for _, n := range names {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		fi, err := d.Lstat(n)
		if err != nil {
			return fmt.Errorf("restore: %s: %w", e.raw, err)
		}
		c, listed := e.list.names[n]
		if listed && !(c == 'D' && !fi.IsDir()) && !(c == 'Y' && fi.IsDir()) {
			continue
		}
		if err := d.RemoveAll(n); err != nil {
			return fmt.Errorf("restore: %s: remove %s: %w", e.raw, joinName(e.name, n), err)
		}
		removedDir = removedDir || fi.IsDir()
	}
	if removedDir {
		x.forgetDirs()
	}
	return nil
}

// rename moves a directory renamed between two levels, inside the tree:
// both names are checked like entry names, the source must sit in real
// directories, the target's directories are made as for any entry.
func (x *extractor) rename(e *entry, from, to string) error {
	unsafe := func(why string) error {
		return &UnsafeError{Name: e.raw, Reason: fmt.Sprintf("dumpdir renames %q to %q: %s", from, to, why)}
	}
	if from == "" || to == "" {
		return fmt.Errorf("restore: %s: %w: a cycle of directory renames (GNU dumpdir X); restore this chain with GNU tar", e.raw, ErrUnsupported)
	}
	src, err := cleanName(from)
	if err != nil {
		return unsafe(err.(*UnsafeError).Reason)
	}
	dst, err := cleanName(to)
	if err != nil {
		return unsafe(err.(*UnsafeError).Reason)
	}
	if src == "." || dst == "." || src == dst {
		return unsafe("not a rename inside the tree")
	}
	sdir, _ := split(src)
	if sdir != "." && !x.realDirs(sdir) {
		return unsafe("the source is not under real directories")
	}
	fi, err := x.root.Lstat(src)
	if err != nil {
		x.prog.warn(fmt.Sprintf("%s: the directory %s to rename to %s is not in the tree; skipped", e.raw, src, dst))
		return nil
	}
	if !fi.IsDir() {
		return unsafe("the source is not a directory")
	}
	ddir, _ := split(dst)
	if _, err := x.dir(ddir, e); err != nil {
		return err
	}
	x.forgetDirs()
	if _, err := x.root.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
		return unsafe("the target exists")
	}
	if err := x.root.Rename(src, dst); err != nil {
		return fmt.Errorf("restore: %s: rename %s to %s: %w", e.raw, src, dst, err)
	}
	return nil
}
