package restore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"
)

// dir returns a Root for directory d of the tree ("." is the top),
// creating the directories that are missing. It walks one name at a
// time through the handle of the directory above, never a whole path
// from the top: from the current directory when d is below it, else from
// the deepest directory d shares with it (proven real when the current
// directory was entered). Each new name is checked with one Lstat in its
// parent, so an entry costs time in proportion to its own depth, and a
// tree of any depth restores in time linear in the archive's size. The
// context is checked at every level.
func (x *extractor) dir(d string, e *entry) (*os.Root, error) {
	if d == "." {
		return x.root, nil
	}
	if x.cur != nil && d == x.curDir {
		return x.cur, nil
	}
	cur, at, tmp := x.root, ".", false
	if x.cur != nil {
		switch c := commonDirs(d, x.curDir); {
		case c == len(x.curDir):
			cur, at = x.cur, x.curDir
		case c > 0:
			r, err := x.root.OpenRoot(x.curDir[:c])
			if err != nil {
				return nil, fmt.Errorf("restore: %s: %w", e.raw, err)
			}
			cur, at, tmp = r, x.curDir[:c], true
		}
	}
	rest := d
	if at != "." {
		rest = strings.TrimPrefix(d[len(at):], "/")
	}
	for rest != "" {
		var c string
		c, rest, _ = strings.Cut(rest, "/")
		next, err := x.step(cur, at, c, e)
		if tmp {
			_ = cur.Close()
		}
		if err != nil {
			return nil, err
		}
		cur, tmp = next, true
		at = joinName(at, c)
	}
	if cur != x.cur {
		if x.cur != nil {
			_ = x.cur.Close()
		}
		x.cur = cur
	}
	x.curDir = d
	return cur, nil
}

// step enters the directory c of parent (the directory at), creating it
// when missing and refusing a symlink or anything else that is not a
// directory.
func (x *extractor) step(parent *os.Root, at, c string, e *entry) (*os.Root, error) {
	if err := x.ctx.Err(); err != nil {
		return nil, err
	}
	p := joinName(at, c)
	fi, err := parent.Lstat(c)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := parent.Mkdir(c, 0o700); err != nil {
			return nil, fmt.Errorf("restore: %s: %w", e.raw, err)
		}
		x.dirs = append(x.dirs, dirMeta{name: p, mode: 0o755, implicit: true})
	case err != nil:
		return nil, fmt.Errorf("restore: %s: %w", e.raw, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, &UnsafeError{Name: e.raw, Reason: fmt.Sprintf("writes through the symlink %s", p)}
	case !fi.IsDir():
		return nil, &UnsafeError{Name: e.raw, Reason: fmt.Sprintf("%s is not a directory", p)}
	}
	next, err := parent.OpenRoot(c)
	if err != nil {
		return nil, fmt.Errorf("restore: %s: %w", e.raw, err)
	}
	return next, nil
}

// realDirs reports, creating nothing, whether every component of d is a
// real directory (not a symlink), one name at a time.
func (x *extractor) realDirs(d string) bool {
	cur, tmp := x.root, false
	defer func() {
		if tmp {
			_ = cur.Close()
		}
	}()
	for rest := d; rest != ""; {
		var c string
		c, rest, _ = strings.Cut(rest, "/")
		fi, err := cur.Lstat(c)
		if err != nil || !fi.IsDir() {
			return false
		}
		next, err := cur.OpenRoot(c)
		if err != nil {
			return false
		}
		if tmp {
			_ = cur.Close()
		}
		cur, tmp = next, true
	}
	return true
}

// forgetDirs drops the current directory after something in the tree
// was removed or renamed: it may be gone, and is proven again on use.
func (x *extractor) forgetDirs() {
	if x.cur != nil {
		_ = x.cur.Close()
	}
	x.cur, x.curDir = nil, ""
}

func joinName(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// commonDirs returns the length of the longest run of whole leading
// components that a and b share.
func commonDirs(a, b string) int {
	n := 0
	for i := 0; i <= len(a) && i <= len(b); i++ {
		atEnd := i == len(a) || a[i] == '/'
		if atEnd && (i == len(b) || b[i] == '/') {
			n = i
		}
		if i == len(a) || i == len(b) || a[i] != b[i] {
			break
		}
	}
	return n
}

// preorder lists the directories named in metas, and the directories
// above them, so that each directory comes before its subtree and every
// subtree is contiguous: a depth-first walk of their tree. It costs one
// pass over the names (a sort would compare long shared prefixes again
// and again in a deep tree).
func preorder(metas map[string]*dirMeta) []string {
	children := make(map[string][]string, len(metas))
	seen := make(map[string]bool, len(metas))
	for n := range metas {
		for n != "." && !seen[n] {
			seen[n] = true
			p, _ := split(n)
			children[p] = append(children[p], n)
			n = p
		}
	}
	out := make([]string, 0, len(seen))
	stack := []string{"."}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n != "." {
			out = append(out, n)
		}
		kids := children[n]
		slices.Sort(kids) // siblings only: short, for a stable order
		for k := len(kids) - 1; k >= 0; k-- {
			stack = append(stack, kids[k])
		}
	}
	return out
}

// finish sets the modes, owners and mtimes of directories, now that
// nothing more is written inside them, and of the top of the tree.
func (x *extractor) finish() error {
	x.forgetDirs()
	// The archive's own entry for a directory wins over one made for its
	// contents, and the last of duplicates wins.
	metas := make(map[string]*dirMeta, len(x.dirs))
	for i := range x.dirs {
		m := &x.dirs[i]
		if old, seen := metas[m.name]; !seen || !m.implicit || old.implicit {
			metas[m.name] = m
		}
	}
	if err := x.applyDirs(preorder(metas), metas); err != nil {
		return err
	}
	top := dirMeta{name: ".", mode: 0o755}
	if x.top != nil {
		top = *x.top
	}
	if err := x.applyDir(".", &top); err != nil {
		return err
	}
	if x.cleared > 0 {
		x.prog.warn(fmt.Sprintf("cleared setuid/setgid bits on %d entries", x.cleared))
	}
	return nil
}

// applyDir sets one directory's metadata by its name in the tree.
func (x *extractor) applyDir(name string, m *dirMeta) error {
	if m.owner {
		if err := x.root.Lchown(name, m.uid, m.gid); err != nil {
			return fmt.Errorf("restore: %s: %w", name, err)
		}
	}
	if err := x.root.Chmod(name, m.mode); err != nil {
		return fmt.Errorf("restore: %s: %w", name, err)
	}
	if !m.mtime.IsZero() {
		if err := x.root.Chtimes(name, time.Time{}, m.mtime); err != nil {
			return fmt.Errorf("restore: %s: %w", name, err)
		}
	}
	return nil
}
