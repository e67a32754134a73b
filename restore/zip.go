package restore

import (
	"errors"
	"io"
	"io/fs"
	"strings"

	"github.com/klauspost/compress/zip"
)

// fromZip turns a zip entry into an entry, refusing what is unsafe. A
// symlink's target is its data, read by zipLink.
func fromZip(f *zip.File) (entry, error) {
	m := f.Mode()
	e := entry{raw: f.Name, mode: int64(m.Perm()), mtime: f.Modified}
	if m&fs.ModeSetuid != 0 {
		e.mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		e.mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		e.mode |= 0o1000
	}
	switch {
	case m.IsDir() || strings.HasSuffix(f.Name, "/"):
		e.kind = kindDir
	case m&fs.ModeSymlink != 0:
		e.kind = kindSymlink
	case m&(fs.ModeDevice|fs.ModeCharDevice) != 0:
		return e, &UnsafeError{Name: f.Name, Reason: "device file"}
	case m&(fs.ModeNamedPipe|fs.ModeSocket) != 0:
		return e, &UnsafeError{Name: f.Name, Reason: "FIFO or socket"}
	default:
		e.kind = kindFile
	}
	var err error
	if e.name, err = cleanName(f.Name); err != nil {
		return e, err
	}
	if e.name == "." && e.kind != kindDir {
		return e, &UnsafeError{Name: f.Name, Reason: "would replace the target directory"}
	}
	return e, nil
}

// zipLink reads the target of a symlink entry.
func zipLink(f *zip.File) (string, error) {
	rc, err := f.Open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 4097))
	if err != nil {
		return "", err
	}
	if len(b) > 4096 {
		return "", errors.New("symlink target longer than 4096 bytes")
	}
	return string(b), nil
}

// zipData is an entry's data; its read errors are marked.
type zipData struct{ r io.Reader }

func (d zipData) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		err = &dataError{err}
	}
	return n, err
}
