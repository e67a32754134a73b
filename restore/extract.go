package restore

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"
)

// entry is one archive member, the same for tar and zip.
type entry struct {
	raw   string // the name as stored, for messages
	name  string // cleaned: relative, slash-separated, "." for the top
	kind  byte   // kindFile, kindDir, kindSymlink, kindHardlink
	mode  int64  // permission bits as stored, with setuid/setgid/sticky
	mtime time.Time
	uid   int
	gid   int
	link  string // symlink target as stored, or cleaned hard link target
	size  int64  // a file's data as its header says, when it is stored whole (not sparse)
	whole bool   // size is known: the data that follows is exactly size bytes

	dumpdir bool     // a GNU incremental directory ('D'), whose data lists its names
	list    *dumpdir // that list, read when dumpdirs are applied (Options.Incremental)
}

const (
	kindFile     = 'f'
	kindDir      = 'd'
	kindSymlink  = 'l'
	kindHardlink = 'h'
)

// dirMeta is applied to a directory once everything inside it is written.
type dirMeta struct {
	name  string
	mode  fs.FileMode
	mtime time.Time
	uid   int
	gid   int
	owner bool
	// implicit: created for an entry inside it, not named by the archive;
	// an entry of the archive for it wins whatever the order.
	implicit bool
}

// extractor writes entries into the staging directory through an os.Root,
// so that no name can reach outside it, and on top of that refuses what
// GNU tar's safe modes refuse: absolute names, "..", writes through a
// symlink, links that leave the tree, devices and FIFOs.
type extractor struct {
	ctx         context.Context
	root        *os.Root
	sameOwner   bool
	incremental bool // apply dumpdir lists (Options.Incremental)
	prog        progress
	buf         []byte

	curDir string   // directory of the last entry, real with all its parents ("" when none)
	cur    *os.Root // opened on curDir

	// The space left where the tree is built: free (as last measured,
	// -1 when unknown) and what the headers of files written since
	// announced.
	spaceDir   string
	free, used int64
	// dataLeft, when set, bounds the decoded data the rest of the stream
	// can hold: a header claiming more lies, which is unsafe, not a lack
	// of space.
	dataLeft func() int64

	// The writers of small files (writers.go), and the directory
	// handle files are created in, opened on curFDRoot.
	pool      *writerPool
	curFD     *dirFD
	curFDRoot *os.Root

	dirs    []dirMeta
	top     *dirMeta
	cleared int // entries whose setuid/setgid bits were dropped
}

func newExtractor(ctx context.Context, root *os.Root, opts Options, prog progress) *extractor {
	return &extractor{ctx: ctx, root: root, sameOwner: opts.SameOwner, incremental: opts.Incremental, prog: prog, buf: make([]byte, bufSize), free: -1}
}

// reserve checks, from its header, that a file fits in the space left
// before any of it is written: the up-front check rests on what the
// archive announces (a gzip ISIZE is only the size modulo 4 GiB), the
// headers say the truth. The file system is measured again only when the
// files announced since the last measure could have filled it, so this
// costs a statfs per "free space" worth of data, not one per file.
func (x *extractor) reserve(e *entry) error {
	if x.free < 0 || e.size <= 0 {
		return nil
	}
	x.used += e.size
	if x.used <= x.free {
		return nil
	}
	free, err := statFree(x.spaceDir)
	if err != nil {
		x.free = -1
		return nil
	}
	x.free, x.used = free, e.size
	if e.size <= free {
		return nil
	}
	if x.dataLeft != nil && e.size > x.dataLeft() {
		return &UnsafeError{Name: e.raw, Reason: "its header claims more data than the archive holds"}
	}
	return &NoSpaceError{Dir: x.spaceDir, Need: e.size, Free: free, Entry: e.raw}
}

// Linux's limits on a path (PATH_MAX, counting its closing NUL) and on
// one name in it (NAME_MAX). A longer entry cannot be created with a path;
// it is refused, naming it, rather than failing somewhere deep inside.
const (
	pathMax = 4096
	nameMax = 255
)

// cleanName checks a stored name and returns it relative and clean.
func cleanName(raw string) (string, error) {
	switch {
	case raw == "":
		return "", &UnsafeError{Name: raw, Reason: "empty name"}
	case strings.HasPrefix(raw, "/"):
		return "", &UnsafeError{Name: raw, Reason: "absolute path"}
	case strings.ContainsRune(raw, 0):
		return "", &UnsafeError{Name: raw, Reason: "NUL in name"}
	case raw == ".." || strings.HasPrefix(raw, "../") || strings.HasSuffix(raw, "/..") || strings.Contains(raw, "/../"):
		return "", &UnsafeError{Name: raw, Reason: `".." in path`}
	}
	name := path.Clean(raw)
	if len(name) >= pathMax {
		return "", &UnsafeError{Name: shorten(raw), Reason: fmt.Sprintf("its path is %d bytes, longer than the system allows (PATH_MAX %d)", len(name), pathMax)}
	}
	for rest := name; rest != ""; {
		elem, more, _ := strings.Cut(rest, "/")
		if len(elem) > nameMax {
			return "", &UnsafeError{Name: shorten(raw), Reason: fmt.Sprintf("a name in its path is %d bytes, longer than the system allows (NAME_MAX %d)", len(elem), nameMax)}
		}
		rest = more
	}
	return name, nil
}

// shorten keeps a message about an absurdly long name readable.
func shorten(name string) string {
	if len(name) <= 200 {
		return name
	}
	return fmt.Sprintf("%s…%s (%d bytes)", name[:100], name[len(name)-60:], len(name))
}

// checkSymlink allows relative targets that only climb ("../") before
// descending, and never above the top of the tree. Because every
// directory a link sits in is real (writes through links are refused), such
// a target resolves inside the tree whatever other links it passes.
func checkSymlink(e *entry) error {
	t := e.link
	switch {
	case t == "":
		return &UnsafeError{Name: e.raw, Reason: "symlink with an empty target"}
	case strings.HasPrefix(t, "/"):
		return &UnsafeError{Name: e.raw, Reason: fmt.Sprintf("symlink to the absolute path %q", t)}
	case strings.ContainsRune(t, 0):
		return &UnsafeError{Name: e.raw, Reason: "NUL in link target"}
	}
	up, down := 0, false
	for _, c := range strings.Split(t, "/") {
		switch c {
		case "", ".":
		case "..":
			if down {
				return &UnsafeError{Name: e.raw, Reason: fmt.Sprintf("symlink target %q goes back up after a name", t)}
			}
			up++
		default:
			down = true
		}
	}
	depth := strings.Count(e.name, "/")
	if up > depth {
		return &UnsafeError{Name: e.raw, Reason: fmt.Sprintf("symlink target %q leaves the tree", t)}
	}
	return nil
}

// fromTar turns a tar header into an entry, refusing what is unsafe.
// skip is true for headers that carry no entry (global PAX, volume label).
func fromTar(h *tar.Header) (e entry, skip bool, err error) {
	e = entry{raw: h.Name, mode: h.Mode, mtime: h.ModTime, uid: h.Uid, gid: h.Gid}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont, tar.TypeGNUSparse:
		e.kind = kindFile
	case tar.TypeDir:
		e.kind = kindDir
	case 'D': // GNU incremental: a directory and the names it held
		e.kind, e.dumpdir = kindDir, true
	case tar.TypeSymlink:
		e.kind, e.link = kindSymlink, h.Linkname
	case tar.TypeLink:
		e.kind = kindHardlink
	case tar.TypeXGlobalHeader, 'V': // 'V': a GNU volume label
		return e, true, nil
	case tar.TypeChar, tar.TypeBlock:
		return e, false, &UnsafeError{Name: h.Name, Reason: "device file"}
	case tar.TypeFifo:
		return e, false, &UnsafeError{Name: h.Name, Reason: "FIFO"}
	default:
		return e, false, &UnsafeError{Name: h.Name, Reason: fmt.Sprintf("unsupported entry type %q", h.Typeflag)}
	}
	if e.name, err = cleanName(h.Name); err != nil {
		return e, false, err
	}
	if e.name == "." && e.kind != kindDir {
		return e, false, &UnsafeError{Name: h.Name, Reason: "would replace the target directory"}
	}
	if e.kind == kindFile && hasData(h) {
		e.size, e.whole = h.Size, true
	}
	switch e.kind {
	case kindSymlink:
		err = checkSymlink(&e)
	case kindHardlink:
		e.link, err = cleanName(h.Linkname)
		if err != nil {
			err = &UnsafeError{Name: h.Name, Reason: fmt.Sprintf("hard link to %q: %s", h.Linkname, err.(*UnsafeError).Reason)}
		} else if e.link == "." {
			err = &UnsafeError{Name: h.Name, Reason: "hard link to the target directory"}
		}
	}
	return e, false, err
}

// perm maps stored mode bits to the mode the entry gets: permissions and
// the sticky bit; setuid and setgid are dropped.
func (x *extractor) perm(mode int64) fs.FileMode {
	m := fs.FileMode(mode) & fs.ModePerm
	if mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	if mode&0o6000 != 0 {
		x.cleared++
	}
	return m
}

func split(name string) (dir, base string) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return ".", name
	}
	return name[:i], name[i+1:]
}

// clear makes room for a new entry at base in d: an existing directory
// is refused (nothing may replace a directory), anything else is removed,
// as tar does with duplicate names.
func (x *extractor) clear(d *os.Root, base string, e *entry) error {
	fi, err := d.Lstat(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore: %s: %w", e.raw, err)
	}
	if fi.IsDir() {
		return replaceDirErr(e)
	}
	if err := d.Remove(base); err != nil {
		return fmt.Errorf("restore: %s: %w", e.raw, err)
	}
	return nil
}

// write puts one entry in the tree; r is a file's data.
func (x *extractor) write(e *entry, r io.Reader) error {
	if err := x.settle(e); err != nil {
		return err
	}
	switch e.kind {
	case kindDir:
		return x.writeDir(e)
	case kindFile:
		return x.writeFile(e, r)
	case kindSymlink:
		return x.writeSymlink(e)
	case kindHardlink:
		return x.writeHardlink(e)
	}
	return fmt.Errorf("restore: %s: unknown entry kind", e.raw)
}

func (x *extractor) writeDir(e *entry) error {
	m := dirMeta{name: e.name, mode: x.perm(e.mode), mtime: e.mtime, uid: e.uid, gid: e.gid, owner: x.sameOwner}
	if e.name == "." {
		x.top = &m
		if e.list != nil {
			return x.purge(e)
		}
		return nil
	}
	dn, base := split(e.name)
	d, err := x.dir(dn, e)
	if err != nil {
		return err
	}
	err = d.Mkdir(base, 0o700)
	if errors.Is(err, fs.ErrExist) {
		fi, lerr := d.Lstat(base)
		if lerr != nil {
			return fmt.Errorf("restore: %s: %w", e.raw, lerr)
		}
		if !fi.IsDir() {
			// A file or symlink of the same name earlier: the directory wins.
			if err = d.Remove(base); err == nil {
				err = d.Mkdir(base, 0o700)
			}
		} else {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("restore: %s: %w", e.raw, err)
	}
	x.dirs = append(x.dirs, m)
	if e.list != nil {
		return x.purge(e)
	}
	return nil
}

func (x *extractor) writeSymlink(e *entry) error {
	dn, base := split(e.name)
	d, err := x.dir(dn, e)
	if err != nil {
		return err
	}
	err = d.Symlink(e.link, base)
	if errors.Is(err, fs.ErrExist) {
		if err := x.clear(d, base, e); err != nil {
			return err
		}
		err = d.Symlink(e.link, base)
	}
	if err != nil {
		return fmt.Errorf("restore: %s: %w", e.raw, err)
	}
	if x.sameOwner {
		if err := d.Lchown(base, e.uid, e.gid); err != nil {
			return fmt.Errorf("restore: %s: %w", e.raw, err)
		}
	}
	if !e.mtime.IsZero() {
		if err := lchtimes(d, base, e.mtime); err != nil {
			return fmt.Errorf("restore: %s: %w", e.raw, err)
		}
	}
	return nil
}

func (x *extractor) writeHardlink(e *entry) error {
	if e.link == e.name {
		return nil // a link to itself, as some archivers write
	}
	// The target must be a regular file already in the tree, reached
	// through real directories only.
	tdir, _ := split(e.link)
	if tdir != "." && !x.realDirs(tdir) {
		return &UnsafeError{Name: e.raw, Reason: fmt.Sprintf("hard link to %q, which is not a file in the tree", e.link)}
	}
	fi, err := x.root.Lstat(e.link)
	if err != nil || !fi.Mode().IsRegular() {
		return &UnsafeError{Name: e.raw, Reason: fmt.Sprintf("hard link to %q, which is not a file in the tree", e.link)}
	}
	dn, base := split(e.name)
	d, err := x.dir(dn, e)
	if err != nil {
		return err
	}
	err = x.root.Link(e.link, e.name)
	if errors.Is(err, fs.ErrExist) {
		if cur, lerr := d.Lstat(base); lerr == nil && os.SameFile(cur, fi) {
			return nil
		}
		if err := x.clear(d, base, e); err != nil {
			return err
		}
		err = x.root.Link(e.link, e.name)
	}
	if err != nil {
		return fmt.Errorf("restore: %s: %w", e.raw, err)
	}
	return nil
}
