package gen

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Formats SplitTarGz writes.
const (
	FormatTar   = "tar"
	FormatGzip  = "gz"
	FormatZstd  = "zst"
	FormatXz    = "xz"
	FormatBzip2 = "bz2" // needs the bzip2 command
	FormatZip   = "zip"
)

// SplitTarGz archives srcDir as a GNU tar (long names as 'L' records,
// symlinks, hard links, modes, uid/gid, mtimes in seconds) compressed with
// format (gz, zst, xz, bz2 — bz2 pipes through the bzip2 command — or tar
// for none), or as a zip (symlinks kept, hard links stored as copies), and
// cuts the result at every partSize bytes into outDir/NAME.000, NAME.001,
// .... With partSize <= 0 it writes one file, outDir/NAME. It returns the
// paths in order.
func SplitTarGz(srcDir, outDir, name string, partSize int64, format string) (paths []string, err error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("gen split: %w", err)
	}
	sw := &splitWriter{dir: outDir, name: name, size: partSize}
	defer func() {
		if cerr := sw.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("gen split: %w", cerr)
		}
		if err == nil {
			paths = sw.paths
		}
	}()
	ents, err := walk(srcDir)
	if err != nil {
		return nil, err
	}
	if format == FormatZip {
		return nil, writeZip(sw, srcDir, ents)
	}
	var (
		cw   io.WriteCloser
		wait func() error
	)
	switch format {
	case FormatTar:
		cw = nopCloser{sw}
	case FormatGzip:
		zw := gzip.NewWriter(sw)
		zw.OS = 3
		cw = zw
	case FormatZstd:
		zw, err := zstd.NewWriter(sw, zstd.WithEncoderCRC(true))
		if err != nil {
			return nil, fmt.Errorf("gen split: %w", err)
		}
		cw = zw
	case FormatXz:
		zw, err := xz.NewWriter(sw)
		if err != nil {
			return nil, fmt.Errorf("gen split: %w", err)
		}
		cw = zw
	case FormatBzip2:
		cmd := exec.Command("bzip2", "-c", "-6")
		cmd.Stdout = sw
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, fmt.Errorf("gen split: %w", err)
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("gen split: bzip2: %w", err)
		}
		cw, wait = in, cmd.Wait
	default:
		return nil, fmt.Errorf("gen split: %w %q", errUnknownFormat, format)
	}
	if err := writeTar(cw, srcDir, ents); err != nil {
		cw.Close()
		if wait != nil {
			_ = wait()
		}
		return nil, err
	}
	if err := cw.Close(); err != nil {
		return nil, fmt.Errorf("gen split: %w", err)
	}
	if wait != nil {
		if err := wait(); err != nil {
			return nil, fmt.Errorf("gen split: bzip2: %w", err)
		}
	}
	return nil, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// entry is one path of the source tree, in archive order.
type entry struct {
	rel string // slash-separated
	fi  fs.FileInfo
}

// walk lists srcDir depth first, directories before their contents, names
// sorted, as `tar -c` of a sorted tree would.
func walk(srcDir string) ([]entry, error) {
	var out []entry
	err := filepath.WalkDir(srcDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == srcDir {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(srcDir, p)
		if err != nil {
			return err
		}
		out = append(out, entry{rel: filepath.ToSlash(rel), fi: fi})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gen split: %w", err)
	}
	return out, nil
}

func writeTar(w io.Writer, srcDir string, ents []entry) error {
	tw := tar.NewWriter(w)
	type key struct{ dev, ino uint64 }
	seen := map[key]string{}
	buf := make([]byte, 1<<20)
	for _, e := range ents {
		p := filepath.Join(srcDir, filepath.FromSlash(e.rel))
		uid, gid := owner(e.fi)
		hdr := &tar.Header{
			Name:    e.rel,
			Mode:    int64(e.fi.Mode().Perm()),
			Uid:     int(uid),
			Gid:     int(gid),
			ModTime: e.fi.ModTime().Truncate(time.Second),
			Format:  tar.FormatGNU,
		}
		if e.fi.Mode()&fs.ModeSetuid != 0 {
			hdr.Mode |= 0o4000
		}
		if e.fi.Mode()&fs.ModeSetgid != 0 {
			hdr.Mode |= 0o2000
		}
		if e.fi.Mode()&fs.ModeSticky != 0 {
			hdr.Mode |= 0o1000
		}
		regular := false
		switch {
		case e.fi.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, e.rel+"/"
		case e.fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("gen split: %w", err)
			}
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		case e.fi.Mode().IsRegular():
			dev, ino, nlink := inode(e.fi)
			if first, ok := seen[key{dev, ino}]; ok && nlink > 1 {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
				break
			}
			if nlink > 1 {
				seen[key{dev, ino}] = e.rel
			}
			hdr.Typeflag, hdr.Size, regular = tar.TypeReg, e.fi.Size(), true
		default:
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("gen split: %s: %w", e.rel, err)
		}
		if regular {
			if err := copyFile(tw, p, buf); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("gen split: %w", err)
	}
	return nil
}

func writeZip(w io.Writer, srcDir string, ents []entry) error {
	zw := zip.NewWriter(w)
	buf := make([]byte, 1<<20)
	for _, e := range ents {
		p := filepath.Join(srcDir, filepath.FromSlash(e.rel))
		fh := &zip.FileHeader{Name: e.rel, Method: zip.Deflate, Modified: e.fi.ModTime().Truncate(time.Second)}
		fh.SetMode(e.fi.Mode())
		if e.fi.IsDir() {
			fh.Name += "/"
			fh.Method = zip.Store
		}
		fw, err := zw.CreateHeader(fh)
		if err != nil {
			return fmt.Errorf("gen split: %s: %w", e.rel, err)
		}
		switch {
		case e.fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("gen split: %w", err)
			}
			if _, err := io.WriteString(fw, target); err != nil {
				return fmt.Errorf("gen split: %w", err)
			}
		case e.fi.Mode().IsRegular():
			if err := copyFile(fw, p, buf); err != nil {
				return err
			}
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("gen split: %w", err)
	}
	return nil
}

func copyFile(w io.Writer, p string, buf []byte) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("gen split: %w", err)
	}
	defer f.Close()
	if _, err := io.CopyBuffer(w, struct{ io.Reader }{f}, buf); err != nil {
		return fmt.Errorf("gen split: %s: %w", p, err)
	}
	return nil
}

// splitWriter writes a stream into files of size bytes each: NAME.000,
// NAME.001, ... (NAME alone when size <= 0).
type splitWriter struct {
	dir, name string
	size      int64
	f         *os.File
	n         int64 // bytes in f
	paths     []string
}

func (s *splitWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if s.f == nil || (s.size > 0 && s.n >= s.size) {
			if err := s.next(); err != nil {
				return written, err
			}
		}
		chunk := p
		if s.size > 0 {
			chunk = p[:min(int64(len(p)), s.size-s.n)]
		}
		n, err := s.f.Write(chunk)
		written += n
		s.n += int64(n)
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

func (s *splitWriter) next() error {
	if err := s.closeFile(); err != nil {
		return err
	}
	name := s.name
	if s.size > 0 {
		name = fmt.Sprintf("%s.%03d", s.name, len(s.paths))
	}
	p := filepath.Join(s.dir, name)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	s.f, s.n = f, 0
	s.paths = append(s.paths, p)
	return nil
}

func (s *splitWriter) closeFile() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// Close ends the last file; an empty stream still yields one empty file.
func (s *splitWriter) Close() error {
	if len(s.paths) == 0 {
		if err := s.next(); err != nil {
			return err
		}
	}
	return s.closeFile()
}
