// Package safefs opens, creates, renames and removes files inside a
// directory haul owns (DEST, its .haul) without ever going through a link
// someone else planted there. A Dir is an os.Root, so no name leaves it;
// on top of that every file is checked to be a plain file with one link
// (a symlink that stays inside the root, a FIFO, a hard link to a file
// elsewhere all fail the check), and a file opened is the one checked
// (same device and inode before and after the open), so swapping the name
// between the check and the open is caught too.
//
// What to do with a file that fails the check is the caller's choice:
// OpenFile refuses it (*UnsafeError, exit 1: the lock, the journal),
// OpenFresh removes it and starts a new file (a part's .partial, whose
// bytes come again).
package safefs

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrUnsafe is wrapped by every *UnsafeError.
var ErrUnsafe = errors.New("not a plain file or directory of haul's")

// UnsafeError names a path haul will not open and why.
type UnsafeError struct {
	Path string
	Why  string // "is a symbolic link", "has 2 hard links", …
}

func (e *UnsafeError) Error() string {
	return fmt.Sprintf("%s %s; haul opens nothing in DEST through a link or a file it did not make: remove it (check who put it there) and run again", e.Path, e.Why)
}

// Unwrap makes errors.Is(err, ErrUnsafe) true.
func (e *UnsafeError) Unwrap() error { return ErrUnsafe }

// Dir is an open directory that haul owns.
type Dir struct {
	root *os.Root
	path string
}

// Open opens the directory at path. The path itself is the user's choice
// and may pass through links; nothing inside it will.
func Open(path string) (*Dir, error) {
	r, err := os.OpenRoot(path)
	if err != nil {
		return nil, err
	}
	return &Dir{root: r, path: path}, nil
}

// Path is the directory's path as opened.
func (d *Dir) Path() string { return d.path }

// Join is the path of name inside d, for messages.
func (d *Dir) Join(name string) string { return filepath.Join(d.path, name) }

// Close releases the directory.
func (d *Dir) Close() error { return d.root.Close() }

// Private opens name inside d as haul's own directory, creating it (mode
// 0700) when absent. It must be a real directory (not a link), owned by
// this user, mode 0700; anything else is an *UnsafeError naming it.
func (d *Dir) Private(name string) (*Dir, error) {
	err := d.root.Mkdir(name, 0o700)
	if err == nil {
		// A umask can only take bits away; make sure none of the owner's.
		if fi, serr := d.root.Lstat(name); serr == nil && fi.IsDir() && fi.Mode().Perm() != 0o700 {
			if err := d.root.Chmod(name, 0o700); err != nil {
				return nil, err
			}
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return d.OpenPrivate(name)
}

// OpenPrivate opens name inside d like Private, without creating it: a
// missing directory is fs.ErrNotExist.
func (d *Dir) OpenPrivate(name string) (*Dir, error) {
	fi, err := d.root.Lstat(name)
	if err != nil {
		return nil, err
	}
	if why := privateDirProblem(fi); why != "" {
		return nil, &UnsafeError{Path: d.Join(name), Why: why}
	}
	sub, err := d.root.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	now, err := sub.Stat(".")
	if err != nil || !os.SameFile(fi, now) {
		sub.Close()
		if err != nil {
			return nil, err
		}
		return nil, &UnsafeError{Path: d.Join(name), Why: "was replaced while haul opened it"}
	}
	return &Dir{root: sub, path: d.Join(name)}, nil
}

// privateDirProblem says why fi is not haul's private directory, or "".
func privateDirProblem(fi fs.FileInfo) string {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return "is a symbolic link, not a directory"
	case !fi.IsDir():
		return "is not a directory"
	case !ownedByMe(fi):
		return "is owned by another user"
	case checksMode && fi.Mode().Perm() != 0o700:
		return fmt.Sprintf("has mode %04o, not 0700 (chmod 700 it if it is haul's)", fi.Mode().Perm())
	}
	return ""
}

// Problem says why fi (an Lstat) is not a plain file of haul's — a
// symbolic link, not a regular file, more than one hard link — or "".
func Problem(fi fs.FileInfo) string { return fileProblem(fi) }

// fileProblem says why fi is not a plain file haul may write, or "".
func fileProblem(fi fs.FileInfo) string {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return "is a symbolic link"
	case !fi.Mode().IsRegular():
		return "is not a regular file"
	case links(fi) > 1:
		return fmt.Sprintf("has %d hard links", links(fi))
	}
	return ""
}

// OpenFile opens the file name inside d with flag (O_CREATE makes it
// with perm when absent). An existing file that is a link, not a regular
// file or has more than one hard link is never opened: the error is an
// *UnsafeError naming it. O_TRUNC is refused: truncate after the open.
func (d *Dir) OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	if flag&os.O_TRUNC != 0 {
		return nil, fmt.Errorf("safefs: open %s: O_TRUNC before the check", d.Join(name))
	}
	for try := 0; ; try++ {
		fi, err := d.root.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) && flag&os.O_CREATE != 0 {
			f, err := d.root.OpenFile(name, flag|os.O_EXCL, perm)
			if errors.Is(err, fs.ErrExist) && try < 3 {
				continue // created meanwhile: check what it is
			}
			return f, err
		}
		if err != nil {
			return nil, err
		}
		if why := fileProblem(fi); why != "" {
			return nil, &UnsafeError{Path: d.Join(name), Why: why}
		}
		f, err := d.root.OpenFile(name, (flag&^os.O_CREATE)|nonblock, 0)
		if err != nil {
			return nil, err
		}
		now, err := f.Stat()
		if err == nil && (!os.SameFile(fi, now) || fileProblem(now) != "") {
			err = &UnsafeError{Path: d.Join(name), Why: "was replaced while haul opened it"}
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
}

// OpenFresh opens name like OpenFile with O_CREATE, except that a file
// there that fails the check is removed (the link, not what it points to)
// and a new empty file made in its place: replaced says so.
func (d *Dir) OpenFresh(name string, flag int, perm os.FileMode) (f *os.File, replaced bool, err error) {
	for try := 0; ; try++ {
		f, err = d.OpenFile(name, flag|os.O_CREATE, perm)
		if !errors.Is(err, ErrUnsafe) || try == 3 {
			return f, replaced, err
		}
		if err := d.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, replaced, fmt.Errorf("remove %s: %w", d.Join(name), err)
		}
		replaced = true
	}
}

// Lstat describes name itself, never what it links to.
func (d *Dir) Lstat(name string) (fs.FileInfo, error) { return d.root.Lstat(name) }

// IsPlainFile reports whether name is a regular file with one link (what
// haul makes), and its description.
func (d *Dir) IsPlainFile(name string) (fs.FileInfo, bool) {
	fi, err := d.root.Lstat(name)
	return fi, err == nil && fileProblem(fi) == ""
}

// Rename renames oldname to newname inside d. A link at either name is
// moved or replaced itself, never followed.
func (d *Dir) Rename(oldname, newname string) error { return d.root.Rename(oldname, newname) }

// Remove removes name (a link itself, never its target).
func (d *Dir) Remove(name string) error { return d.root.Remove(name) }

// Sync fsyncs the directory, so that a rename or a new file in it is
// durable.
func (d *Dir) Sync() error {
	f, err := d.root.Open(".")
	if err != nil {
		return err
	}
	serr := f.Sync()
	cerr := f.Close()
	return errors.Join(serr, cerr)
}

// ReadFile reads the plain file name (see OpenFile).
func (d *Dir) ReadFile(name string) ([]byte, error) {
	f, err := d.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// WriteFile replaces name with data durably: a new temporary file beside
// it (never an existing one), fsync, rename over name (a link there is
// replaced, not followed), fsync of the directory. The file gets perm.
func (d *Dir) WriteFile(name string, data []byte, perm os.FileMode) error {
	return d.WriteWith(name, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteWith replaces name durably as WriteFile does, with what fill
// writes (buffered), so that a large file is never held in memory.
func (d *Dir) WriteWith(name string, perm os.FileMode, fill func(w io.Writer) error) error {
	var b [6]byte
	_, _ = rand.Read(b[:])
	tmp := "." + name + ".tmp" + hex.EncodeToString(b[:])
	f, err := d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer d.root.Remove(tmp) // fails harmlessly after the rename
	bw := bufio.NewWriterSize(f, 256<<10)
	werr := fill(bw)
	if werr == nil {
		werr = bw.Flush()
	}
	if werr == nil {
		werr = f.Chmod(perm)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if err := errors.Join(werr, f.Close()); err != nil {
		return err
	}
	if err := d.root.Rename(tmp, name); err != nil {
		return err
	}
	return d.Sync()
}

// OpenPlain opens the file at path for reading as OpenFile does inside
// its directory: the last element is never followed if it is a link, and
// the file must be a regular file with one hard link, the same before and
// after the open (else an *UnsafeError naming path). The directories on
// the way are the caller's choice and may be links. fi is the open
// file's own stat, for comparing with a file recorded earlier.
func OpenPlain(path string) (f *os.File, fi fs.FileInfo, err error) {
	d, err := Open(filepath.Dir(path))
	if err != nil {
		return nil, nil, err
	}
	defer d.Close()
	f, err = d.OpenFile(filepath.Base(path), os.O_RDONLY, 0)
	if err != nil {
		return nil, nil, err
	}
	if fi, err = f.Stat(); err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}
