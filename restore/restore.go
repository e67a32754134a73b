package restore

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/integrity"
)

// Options are the choices of `haul restore`.
type Options struct {
	// Into is the directory the tree goes to (--into). It must not exist
	// or be empty.
	Into string
	// Assemble is the file the joined archive goes to (--assemble).
	// Exactly one of Into and Assemble is set.
	Assemble string
	// PasswordFile holds the password of an encrypted archive; one
	// trailing newline is ignored.
	PasswordFile string
	// SameOwner restores owners from the archive (--same-owner); it needs
	// root, otherwise files belong to the current user.
	SameOwner bool
	// Progress receives events; nil is fine.
	Progress Progress
}

// statFree is freeSpace, replaceable in tests.
var statFree = freeSpace

// markerFile records, in DEST/.haul, that a set was restored.
const markerFile = "restored.json"

type marker struct {
	Into     string    `json:"into"`
	Set      string    `json:"set"`
	Finished time.Time `json:"finished"`
}

// Run restores the set fetched into dest: it refuses while any part is
// broken, missing, pending or partial (*PartsError, exit 3), warns about
// unverified parts, then restores the parts (or assembles them) in set
// order. A format error in an unverified part marks that part broken in
// the state, so that `haul repair` fetches it again.
func Run(ctx context.Context, dest string, opts Options) error {
	prog := progress{opts.Progress}
	if (opts.Into == "") == (opts.Assemble == "") {
		return errors.New("restore: give exactly one of --into DIR and --assemble FILE")
	}
	st, err := chunk.Load(dest)
	if err != nil {
		return err
	}
	notReady := &PartsError{Dest: dest}
	var unverified []string
	parts := make([]Part, 0, len(st.Parts))
	for _, p := range st.Parts {
		switch p.Status {
		case chunk.Verified:
		case chunk.Unverified:
			unverified = append(unverified, p.Name)
		default:
			notReady.Parts = append(notReady.Parts, p.Name)
			notReady.Status = append(notReady.Status, p.Status)
		}
		parts = append(parts, Part{Name: p.Name, Path: filepath.Join(dest, p.Name), Size: p.Size})
	}
	if len(notReady.Parts) > 0 {
		return notReady
	}
	if len(parts) == 0 {
		return fmt.Errorf("restore: %s holds no parts", dest)
	}
	if len(unverified) > 0 {
		prog.warn(fmt.Sprintf("%d part(s) could not be proven by any reference: %s; damage in them shows only while unpacking",
			len(unverified), strings.Join(unverified, ", ")))
	}
	if opts.Assemble != "" {
		return Assemble(ctx, parts, opts.Assemble, opts.Progress)
	}
	// Running the same command again is safe: a set already restored into
	// this DIR (which still exists) is done, not a non-empty target.
	if done, _ := Done(dest, opts.Into); done {
		prog.warn(fmt.Sprintf("this set is already restored into %s; nothing to do (restore into another directory to unpack it again)", opts.Into))
		return nil
	}
	err = Restore(ctx, parts, opts)
	var pe *PartsError
	if errors.As(err, &pe) && pe.Dest == "" {
		pe.Dest = dest
	}
	var fe *integrity.FormatError
	if errors.As(err, &fe) {
		if p := st.Find(fe.Part); p != nil && p.Status == chunk.Unverified {
			p.Status, p.Error = chunk.Broken, fe.Error()
			if serr := chunk.Save(dest, st); serr == nil {
				return fmt.Errorf("%w; %s is now marked broken: run: haul repair %s", err, fe.Part, dest)
			}
		}
		return err
	}
	if err != nil {
		return err
	}
	into, _ := filepath.Abs(opts.Into)
	m, _ := json.Marshal(marker{Into: into, Set: setID("", parts), Finished: time.Now().UTC()})
	if err := chunk.WriteFileAtomic(filepath.Join(dest, chunk.StateDir, markerFile), m, 0o600); err != nil {
		prog.warn("could not record the restore in " + dest + ": " + err.Error())
	}
	return nil
}

// Done reports whether Run has restored the set now in dest into the
// directory into (so `haul run` can skip the step). It compares the parts
// by name and size with what was restored.
func Done(dest, into string) (bool, error) {
	data, err := os.ReadFile(filepath.Join(dest, chunk.StateDir, markerFile))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("restore: %w", err)
	}
	var m marker
	if err := json.Unmarshal(data, &m); err != nil {
		return false, nil
	}
	st, err := chunk.Load(dest)
	if err != nil {
		return false, err
	}
	parts := make([]Part, 0, len(st.Parts))
	for _, p := range st.Parts {
		parts = append(parts, Part{Name: p.Name, Size: p.Size})
	}
	abs, _ := filepath.Abs(into)
	if m.Into != abs || m.Set != setID("", parts) {
		return false, nil
	}
	_, err = os.Stat(abs)
	return err == nil, nil
}

// readPassword reads a password file; one trailing newline is dropped.
func readPassword(file string) (string, error) {
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("restore: password file: %w", err)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("restore: password file %s is empty: %w", file, ErrPassword)
	}
	return s, nil
}

// Restore unpacks the parts, in archive order, into opts.Into. See the
// package doc for the steps. Nothing appears at opts.Into unless the
// whole tree was written.
func Restore(ctx context.Context, parts []Part, opts Options) error {
	prog := progress{opts.Progress}
	if opts.Into == "" {
		return errors.New("restore: no target directory")
	}
	password, err := readPassword(opts.PasswordFile)
	if err != nil {
		return err
	}
	a, err := openArchive(parts, password, false, prog)
	if err != nil {
		return err
	}
	defer a.close()
	into, err := checkTarget(opts.Into)
	if err != nil {
		return err
	}
	if free, err := statFree(filepath.Dir(into)); err == nil && free < a.need {
		return &NoSpaceError{Dir: filepath.Dir(into), Need: a.need, Free: free}
	}
	sameOwner := opts.SameOwner
	if sameOwner && os.Geteuid() != 0 {
		prog.warn("--same-owner needs root; files will belong to the current user")
		sameOwner = false
	}
	stg, err := newStaging(into, setID(into, a.j.Parts()))
	if err != nil {
		return err
	}
	prog.start(a.j.Size())
	x := newExtractor(stg.root, sameOwner, prog)
	if err := a.extract(ctx, x); err != nil {
		stg.discard()
		return err
	}
	if err := stg.commit(into); err != nil {
		stg.discard()
		return err
	}
	return nil
}

// extract writes every entry through x, then finishes directories.
func (a *archive) extract(ctx context.Context, x *extractor) error {
	if a.zr != nil {
		if err := a.extractZip(ctx, x); err != nil {
			return err
		}
		return x.finish()
	}
	ra := a.start(ctx)
	defer ra.Close()
	err := a.walkTar(ctx, ra, func(h *tar.Header, r io.Reader) error {
		e, skip, err := fromTar(h)
		if err != nil || skip {
			return err
		}
		if err := x.write(&e, r); err != nil {
			return err
		}
		a.prog.file(h.Name)
		return nil
	})
	if err != nil {
		return err
	}
	// The tar reader stops at its end marker: decode what follows too, so
	// the last checksums (gzip CRC, zstd frame, Bitrix BX) are checked.
	if err := ra.drain(); err != nil {
		return err
	}
	a.prog.bytes(a.j.Size() - ra.inPos)
	return x.finish()
}

func (a *archive) extractZip(ctx context.Context, x *extractor) error {
	a.prog.bytes(0)
	var done int64
	for _, f := range a.zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, err := fromZip(f)
		if err != nil {
			return err
		}
		var rc io.ReadCloser
		switch e.kind {
		case kindFile:
			if rc, err = f.Open(); err != nil {
				return a.zipErr(f, err)
			}
		case kindSymlink:
			if e.link, err = zipLink(f); err != nil {
				return a.zipErr(f, err)
			}
			if err := checkSymlink(&e); err != nil {
				return err
			}
		}
		var r io.Reader
		if rc != nil {
			r = zipData{rc}
		}
		err = x.write(&e, r)
		if rc != nil {
			_ = rc.Close()
		}
		var te *dataError
		if errors.As(err, &te) {
			return a.zipErr(f, te.err)
		}
		if err != nil {
			return err
		}
		a.prog.file(f.Name)
		if off, err := f.DataOffset(); err == nil {
			end := off + int64(f.CompressedSize64)
			a.prog.bytes(end - done)
			done = max(done, end)
		}
	}
	a.prog.bytes(a.j.Size() - done)
	return nil
}

// Test decodes the whole set as Restore would, without writing anything:
// every decompression checksum, every tar header, every zip CRC, and for
// Bitrix sets the LN and BX fields. The first error is an
// *integrity.FormatError naming the part and the offset in it. An
// encrypted Bitrix set without its password is checked down to its
// compression layer. Use it as the structural check of a set split at
// arbitrary bytes.
func Test(ctx context.Context, parts []Part, password string) error {
	a, err := openArchive(parts, password, true, progress{})
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.testable(); err != nil {
		return err
	}
	buf := make([]byte, bufSize)
	if a.zr != nil {
		for _, f := range a.zr.File {
			if err := ctx.Err(); err != nil {
				return err
			}
			rc, err := f.Open()
			if err != nil {
				return a.zipErr(f, err)
			}
			_, err = io.CopyBuffer(io.Discard, struct{ io.Reader }{rc}, buf)
			_ = rc.Close()
			if err != nil {
				return a.zipErr(f, err)
			}
		}
		return nil
	}
	ra := a.start(ctx)
	defer ra.Close()
	if a.encrypted && a.cipher == nil {
		return ra.drain()
	}
	err = a.walkTar(ctx, ra, func(h *tar.Header, r io.Reader) error {
		for {
			_, err := r.Read(buf)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
	if err != nil {
		return err
	}
	return ra.drain()
}

// Assemble writes the parts joined in order to file, atomically: a
// temporary file beside it, fsync, rename. An existing file is replaced
// only once the new one is complete.
func Assemble(ctx context.Context, parts []Part, file string, p Progress) (err error) {
	prog := progress{p}
	j, err := NewJoin(parts)
	if err != nil {
		return err
	}
	defer j.Close()
	abs, err := filepath.Abs(file)
	if err != nil {
		return fmt.Errorf("assemble: %w", err)
	}
	dir := filepath.Dir(abs)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("assemble: %w", err)
	}
	if free, ferr := statFree(dir); ferr == nil && free < j.Size() {
		return &NoSpaceError{Dir: dir, Need: j.Size(), Free: free}
	}
	tmp, err := newAssembleTemp(dir, filepath.Base(abs))
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	prog.start(j.Size())
	for _, part := range j.Parts() {
		src, err := os.Open(part.Path)
		if err != nil {
			return fmt.Errorf("assemble: %w", err)
		}
		err = copyPart(ctx, tmp, src, part, prog)
		_ = src.Close()
		if err != nil {
			return err
		}
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("assemble: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("assemble: %w", err)
	}
	if err := os.Rename(tmp.Name(), abs); err != nil {
		return fmt.Errorf("assemble: %w", err)
	}
	if err := chunk.SyncDir(dir); err != nil {
		return fmt.Errorf("assemble: %w", err)
	}
	return nil
}

// copyPart appends one part to dst in slices, for progress and
// cancellation; io.Copy between files uses copy_file_range where it can.
func copyPart(ctx context.Context, dst, src *os.File, part Part, prog progress) error {
	const slice = 64 << 20
	for off := int64(0); off < part.Size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(slice, part.Size-off)
		w, err := io.Copy(dst, &io.LimitedReader{R: src, N: n}) // src reads on from off
		if err == nil && w != n {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return fmt.Errorf("assemble: %s: %w", part.Name, err)
		}
		off += n
		prog.bytes(n)
	}
	return nil
}

// newAssembleTemp creates the temporary file of Assemble, locked, after
// removing the ones killed runs left behind.
func newAssembleTemp(dir, base string) (*os.File, error) {
	prefix := "." + base + ".haul-tmp-"
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if f, err := os.Open(p); err == nil {
			if busy, err := tryLock(f); err == nil && !busy {
				_ = os.Remove(p)
			}
			_ = f.Close()
		}
	}
	f, err := os.CreateTemp(dir, prefix+"*")
	if err != nil {
		return nil, fmt.Errorf("assemble: %w", err)
	}
	if _, err := tryLock(f); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, fmt.Errorf("assemble: %w", err)
	}
	return f, nil
}
