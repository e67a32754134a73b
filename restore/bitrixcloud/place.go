package bitrixcloud

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// tree writes files under one directory of the site (upload/, bitrix/)
// without going through a link: every directory on the way is checked
// to be a real directory (a link, even one inside the site, is refused),
// and a file is written beside its place and renamed over it, so a link
// at the place is replaced, never written through.
type tree struct {
	root *os.Root
	path string // for messages
	// unsynced are the directories put renamed files into since the
	// last syncDirs: one fsync per directory and batch, not per file.
	unsynced map[string]bool
}

func openTree(r *os.Root, dir, name string) (*tree, error) {
	d, err := subdir(r, name, true)
	if err != nil {
		return nil, err
	}
	return &tree{root: d, path: dir + "/" + name}, nil
}

func (t *tree) close() { t.root.Close() }

// subdir opens the directory name inside r, creating it (0755) when
// create is set; a link or anything else there is an ErrUnsafe.
func subdir(r *os.Root, name string, create bool) (*os.Root, error) {
	fi, err := r.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err := r.Mkdir(name, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		fi, err = r.Lstat(name)
	}
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() || fi.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("%s %s: %w", name, kind(fi), ErrUnsafe)
	}
	d, err := r.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	if now, err := d.Stat("."); err != nil || !os.SameFile(fi, now) {
		d.Close()
		return nil, fmt.Errorf("%s was replaced while haul opened it: %w", name, ErrUnsafe)
	}
	return d, nil
}

func kind(fi fs.FileInfo) string {
	if fi.Mode()&fs.ModeSymlink != 0 {
		return "is a symbolic link"
	}
	if fi.IsDir() {
		return "is a directory"
	}
	return "is not a regular file"
}

// dirOf opens the directory that holds rel (a checked relative path),
// creating the missing ones; the caller closes it.
func (t *tree) dirOf(rel string, create bool) (*os.Root, error) {
	dir := path.Dir(rel)
	if dir == "." {
		return t.root.OpenRoot(".")
	}
	cur, done := t.root, ""
	for _, el := range strings.Split(dir, "/") {
		d, err := subdir(cur, el, create)
		if cur != t.root {
			cur.Close() // the walk holds one directory at a time
		}
		if errors.Is(err, ErrUnsafe) {
			return nil, fmt.Errorf("%s/%s%w; haul writes nothing through a link: remove it and run again", t.path, done, err)
		}
		if err != nil {
			return nil, err
		}
		done += el + "/"
		cur = d
	}
	return cur, nil
}

// present reports whether rel is a regular file of size bytes (restore.php
// passes over such a file).
func (t *tree) present(rel string, size int64) bool {
	d, err := t.dirOf(rel, false)
	if err != nil {
		return false
	}
	defer d.Close()
	fi, err := d.Lstat(path.Base(rel))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == size
}

// placeError is a refusal of put: the run lists it and goes on.
type placeError struct{ err error }

func (e *placeError) Error() string { return e.err.Error() }
func (e *placeError) Unwrap() error { return e.err }

// put moves the downloaded file src (in the engine's directory srcDir)
// to rel: renamed when both are on one file system, else copied and
// fsynced. The directory is fsynced by syncDirs, which the caller runs
// before it lets go of src. A link or a directory at rel is refused
// (*placeError).
func (t *tree) put(srcDir *os.Root, src, rel string) error {
	d, err := t.dirOf(rel, true)
	if err != nil {
		if errors.Is(err, ErrUnsafe) {
			return &placeError{err}
		}
		return err
	}
	defer d.Close()
	base := path.Base(rel)
	if fi, err := d.Lstat(base); err == nil && !fi.Mode().IsRegular() {
		return &placeError{fmt.Errorf("%s/%s %s; haul writes nothing through or over it: remove it and run again: %w", t.path, rel, kind(fi), ErrUnsafe)}
	}
	if t.unsynced == nil {
		t.unsynced = map[string]bool{}
	}
	if err := renameAt(srcDir, src, d, base); err == nil {
		t.unsynced[path.Dir(rel)] = true
		return nil
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	tmp := "." + base + ".haul-" + hex.EncodeToString(b[:])
	in, err := srcDir.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := d.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("write %s/%s: %w", t.path, rel, err)
	}
	_, werr := io.Copy(out, in)
	if werr == nil {
		werr = out.Sync()
	}
	if err := errors.Join(werr, out.Close()); err != nil {
		d.Remove(tmp)
		return fmt.Errorf("write %s/%s: %w", t.path, rel, err)
	}
	if err := d.Rename(tmp, base); err != nil {
		d.Remove(tmp)
		return fmt.Errorf("write %s/%s: %w", t.path, rel, err)
	}
	t.unsynced[path.Dir(rel)] = true
	return nil
}

// syncDirs makes the renames of put durable.
func (t *tree) syncDirs() error {
	for dir := range t.unsynced {
		d, err := t.dirOf(path.Join(dir, "f"), false)
		if err != nil {
			return err
		}
		err = syncRoot(d)
		d.Close()
		if err != nil {
			return err
		}
		delete(t.unsynced, dir)
	}
	return nil
}

func syncRoot(d *os.Root) error {
	f, err := d.Open(".")
	if err != nil {
		return err
	}
	serr := f.Sync()
	return errors.Join(serr, f.Close())
}
