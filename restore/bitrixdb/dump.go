package bitrixdb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// BackupDir is where Bitrix keeps dumps, relative to the site root.
const BackupDir = "bitrix/backup"

// finishedMark opens the last line of a complete dump (CBackup::MakeDump
// writes it when the last table is done, without a newline).
const finishedMark = "-- Finished:"

// Dump is one database dump inside an unpacked site.
type Dump struct {
	Name         string     // "20261120_030000_full_abcd1234" (without ".sql")
	Parts        []DumpPart // NAME.sql, NAME.sql.1, ... in order
	AfterConnect string     // path of NAME_after_connect.sql, "" when absent
}

// DumpPart is one file of a dump.
type DumpPart struct {
	Path string
	Size int64
}

// Size is the total size of the dump's parts.
func (d *Dump) Size() int64 {
	var n int64
	for _, p := range d.Parts {
		n += p.Size
	}
	return n
}

// Locate maps an offset of the joined stream to a part's base name and the
// offset inside it.
func (d *Dump) Locate(off int64) (string, int64) {
	for _, p := range d.Parts {
		if off < p.Size {
			return filepath.Base(p.Path), off
		}
		off -= p.Size
	}
	if len(d.Parts) == 0 {
		return d.Name + ".sql", off
	}
	last := d.Parts[len(d.Parts)-1]
	return filepath.Base(last.Path), last.Size + off
}

// Files are every file of the dump: the parts and the after-connect file.
func (d *Dump) Files() []string {
	var out []string
	for _, p := range d.Parts {
		out = append(out, p.Path)
	}
	if d.AfterConnect != "" {
		out = append(out, d.AfterConnect)
	}
	return out
}

// DumpNames lists the dumps in root/bitrix/backup as restore.php does:
// every file whose name ends in ".sql" and is not an after-connect file,
// without the ".sql".
func DumpNames(root string) ([]string, error) {
	dir := filepath.Join(root, BackupDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("bitrixdb: list %s: %w", dir, err)
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(n, ".sql") || strings.HasSuffix(n, "_after_connect.sql") {
			continue
		}
		names = append(names, strings.TrimSuffix(n, ".sql"))
	}
	slices.Sort(names)
	return names, nil
}

// FindDump finds the dump to import in the site at root: the one named
// (with or without ".sql"), or the only one. Several without a name give
// *SeveralDumpsError, none ErrNoDump. The parts are NAME.sql, NAME.sql.1,
// ... up to the first number missing. The last part must end with the
// "-- Finished:" line, else the dump was cut short (ErrDumpFormat).
func FindDump(root, name string) (*Dump, error) {
	dir := filepath.Join(root, BackupDir)
	names, err := DumpNames(root)
	if err != nil {
		return nil, err
	}
	name = strings.TrimSuffix(filepath.Base(name), ".sql")
	switch {
	case name != "" && name != ".":
		if !slices.Contains(names, name) {
			if len(names) == 0 {
				return nil, fmt.Errorf("bitrixdb: no dump %s.sql in %s: %w", name, dir, ErrNoDump)
			}
			return nil, fmt.Errorf("bitrixdb: no dump %s.sql in %s (there is %s): %w", name, dir, strings.Join(names, ", "), ErrNoDump)
		}
	case len(names) == 0:
		return nil, fmt.Errorf("bitrixdb: no *.sql dump in %s (was the backup made without the database?): %w", dir, ErrNoDump)
	case len(names) > 1:
		return nil, &SeveralDumpsError{Dir: dir, Names: names}
	default:
		name = names[0]
	}
	d := &Dump{Name: name}
	for i := 0; ; i++ {
		p := filepath.Join(dir, name+".sql")
		if i > 0 {
			p += "." + strconv.Itoa(i)
		}
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("bitrixdb: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("bitrixdb: %s is not a regular file: %w", p, ErrDumpFormat)
		}
		d.Parts = append(d.Parts, DumpPart{Path: p, Size: fi.Size()})
	}
	ac := filepath.Join(dir, name+"_after_connect.sql")
	if fi, err := os.Lstat(ac); err == nil && fi.Mode().IsRegular() {
		d.AfterConnect = ac
	}
	if err := d.checkFinished(); err != nil {
		return nil, err
	}
	return d, nil
}

// checkFinished reads the tail of the last part: a dump without its
// "-- Finished:" line was cut short, and importing it would be a silent
// partial restore.
func (d *Dump) checkFinished() error {
	last := d.Parts[len(d.Parts)-1]
	f, err := os.Open(last.Path)
	if err != nil {
		return fmt.Errorf("bitrixdb: %w", err)
	}
	defer f.Close()
	n := min(last.Size, 256)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, last.Size-n); err != nil && err != io.EOF {
		return fmt.Errorf("bitrixdb: read %s: %w", last.Path, err)
	}
	buf = bytes.TrimRight(buf, "\r\n")
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		buf = buf[i+1:]
	} else if n < last.Size {
		buf = nil
	}
	if !bytes.HasPrefix(buf, []byte(finishedMark)) {
		return fmt.Errorf("bitrixdb: %s does not end with the %q line: the dump was cut short (the backup did not finish, or a part after it is missing): %w",
			filepath.Base(last.Path), finishedMark, ErrDumpFormat)
	}
	return nil
}

// AfterConnectStatements reads the after-connect file and returns its
// statements with <DATABASE> replaced by db, split on ';' as restore.php
// does (the file is two short lines).
func (d *Dump) AfterConnectStatements(db string) ([]string, error) {
	if d.AfterConnect == "" {
		return nil, nil
	}
	b, err := os.ReadFile(d.AfterConnect)
	if err != nil {
		return nil, fmt.Errorf("bitrixdb: %w", err)
	}
	var out []string
	for _, s := range strings.Split(string(b), ";") {
		s = strings.TrimSpace(strings.ReplaceAll(s, "<DATABASE>", strings.ReplaceAll(db, "`", "``")))
		if s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// partsReader reads the parts of a dump as one stream from an offset.
type partsReader struct {
	parts []DumpPart
	i     int
	f     *os.File
}

// openAt opens the joined stream of the parts at offset off.
func openAt(parts []DumpPart, off int64) (*partsReader, error) {
	r := &partsReader{parts: parts}
	for r.i < len(parts) && off >= parts[r.i].Size {
		off -= parts[r.i].Size
		r.i++
	}
	if r.i == len(parts) {
		if off > 0 {
			return nil, fmt.Errorf("bitrixdb: resume offset beyond the end of the dump: %w", ErrDumpFormat)
		}
		return r, nil
	}
	f, err := os.Open(parts[r.i].Path)
	if err != nil {
		return nil, fmt.Errorf("bitrixdb: %w", err)
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("bitrixdb: %w", err)
	}
	r.f = f
	return r, nil
}

func (r *partsReader) Read(p []byte) (int, error) {
	for r.i < len(r.parts) {
		if r.f == nil {
			f, err := os.Open(r.parts[r.i].Path)
			if err != nil {
				return 0, fmt.Errorf("bitrixdb: %w", err)
			}
			r.f = f
		}
		n, err := r.f.Read(p)
		if n > 0 {
			return n, nil
		}
		if err != nil && err != io.EOF {
			return 0, fmt.Errorf("bitrixdb: read %s: %w", r.parts[r.i].Path, err)
		}
		r.f.Close()
		r.f = nil
		r.i++
	}
	return 0, io.EOF
}

func (r *partsReader) Close() error {
	if r.f != nil {
		err := r.f.Close()
		r.f = nil
		return err
	}
	return nil
}
