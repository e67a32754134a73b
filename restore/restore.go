package restore

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/haul-dev/haul/internal/atomicfile"
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
	// Incremental applies the name lists of GNU tar incremental archives
	// (--incremental, GNU tar's -G): names a directory's list no longer
	// holds are removed, directories it says were renamed are moved. For a
	// chain of sets (RestoreChain), level 0 first. Without it, those lists
	// are ignored and their directories restore as plain ones.
	Incremental bool
	// Progress receives events; nil is fine.
	Progress Progress
}

// statFree is freeSpace, replaceable in tests.
var statFree = freeSpace

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
	return RestoreChain(ctx, [][]Part{parts}, opts)
}

// extract writes every entry through x; x.finish sets the directories'
// metadata once the whole chain is written.
func (a *archive) extract(ctx context.Context, x *extractor) error {
	if a.zr != nil {
		return a.extractZip(ctx, x)
	}
	ra := a.start(ctx)
	defer ra.Close()
	x.dataLeft = nil
	if a.format == FormatTarGz || a.format == FormatBitrix {
		// Deflate yields at most 1032 bytes per byte; the read-ahead holds
		// a few decoded chunks on top.
		x.dataLeft = func() int64 { return 1032*(a.j.Size()-ra.inPos) + (aheadBufs+1)*bufSize }
	}
	err := a.walkTar(ctx, ra, func(h *tar.Header, r io.Reader) error {
		e, skip, err := fromTar(h)
		if err != nil || skip {
			return err
		}
		if hasData(h) {
			e.size = h.Size
		}
		if e.dumpdir && x.incremental {
			if e.list, err = readDumpdir(&e, r); err != nil {
				return err
			}
		}
		if err := x.write(&e, r); err != nil {
			return err
		}
		a.prog.file(h.Name)
		return nil
	})
	// The writers' failure, if any, is of an earlier entry than err's.
	if ferr := x.flush(); ferr != nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	// The tar reader stops at its end marker: decode what follows too, so
	// the last checksums (gzip CRC, zstd frame, Bitrix BX) are checked.
	if err := ra.drain(); err != nil {
		return err
	}
	a.prog.bytes(a.j.Size() - ra.inPos)
	return nil
}

func (a *archive) extractZip(ctx context.Context, x *extractor) error {
	defer x.flush() // zip sizes are not known ahead: nothing goes to the writers
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
		src, _, err := openPart(part, true)
		if err != nil {
			return err
		}
		err = copyPart(ctx, tmp, src, part, prog)
		_ = src.Close()
		if err != nil {
			return err
		}
	}
	if err := j.CheckDigests(false); err != nil {
		return err
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
	if err := atomicfile.SyncDir(dir); err != nil {
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
		if !strings.HasPrefix(e.Name(), prefix) || !e.Type().IsRegular() {
			continue // never open a FIFO or a link someone named like ours
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
