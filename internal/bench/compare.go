package bench

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// SameParts compares every part of s with the file of that name in dir,
// byte for byte, and describes the first difference ("" when all are
// identical).
func SameParts(s *Set, dir string) string {
	for _, n := range s.Parts {
		if d := sameFile(filepath.Join(s.Dir, n), filepath.Join(dir, n)); d != "" {
			return n + ": " + d
		}
	}
	return ""
}

func sameFile(a, b string) string {
	fa, err := os.Open(a)
	if err != nil {
		return err.Error()
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return "missing"
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	var off int64
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if !bytes.Equal(ba[:na], bb[:nb]) {
			for i := 0; i < min(na, nb); i++ {
				if ba[i] != bb[i] {
					return fmt.Sprintf("differs at byte %d", off+int64(i))
				}
			}
			return fmt.Sprintf("size differs near byte %d", off+int64(min(na, nb)))
		}
		off += int64(na)
		endA := ea == io.EOF || ea == io.ErrUnexpectedEOF
		endB := eb == io.EOF || eb == io.ErrUnexpectedEOF
		switch {
		case ea != nil && !endA:
			return ea.Error()
		case eb != nil && !endB:
			return eb.Error()
		case endA && endB:
			return ""
		case endA != endB:
			return fmt.Sprintf("size differs near byte %d", off)
		}
	}
}

// SameTree compares the restored tree got with the source tree want:
// every entry's type, permission bits, size, content, symlink target, and
// the mtime of files and symlinks. It describes the first difference.
func SameTree(want, got string) string {
	seen := map[string]bool{}
	diff := ""
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		seen[rel] = true
		q := filepath.Join(got, rel)
		wi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		gi, err := os.Lstat(q)
		if err != nil {
			diff = rel + ": missing"
			return fs.SkipAll
		}
		if wi.Mode().Type() != gi.Mode().Type() {
			diff = fmt.Sprintf("%s: type %v, want %v", rel, gi.Mode().Type(), wi.Mode().Type())
			return fs.SkipAll
		}
		switch {
		case wi.Mode().IsRegular():
			if wi.Mode().Perm() != gi.Mode().Perm() || !wi.ModTime().Equal(gi.ModTime()) {
				diff = fmt.Sprintf("%s: mode %v mtime %v, want %v %v", rel, gi.Mode().Perm(), gi.ModTime(), wi.Mode().Perm(), wi.ModTime())
				return fs.SkipAll
			}
			if d := sameFile(p, q); d != "" {
				diff = rel + ": " + d
				return fs.SkipAll
			}
		case wi.Mode()&fs.ModeSymlink != 0:
			wt, _ := os.Readlink(p)
			gt, _ := os.Readlink(q)
			if wt != gt {
				diff = fmt.Sprintf("%s: link to %q, want %q", rel, gt, wt)
				return fs.SkipAll
			}
		case wi.IsDir():
			if wi.Mode().Perm() != gi.Mode().Perm() {
				diff = fmt.Sprintf("%s: mode %v, want %v", rel, gi.Mode().Perm(), wi.Mode().Perm())
				return fs.SkipAll
			}
		}
		return nil
	})
	if err != nil {
		return err.Error()
	}
	if diff != "" {
		return diff
	}
	_ = filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(got, p); !seen[rel] {
			diff = rel + ": not in the source"
			return fs.SkipAll
		}
		return nil
	})
	return diff
}
