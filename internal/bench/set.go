package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/haul-dev/haul/fetch"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/internal/gen"
)

// Set is a generated multi-part backup: the directory the benchmarks serve
// (parts, SHA256SUMS and a haul manifest) and the tree it was made from.
type Set struct {
	Dir       string   // parts and reference files
	Parts     []string // part names in archive order
	Size      int64    // bytes of all parts together
	Tree      string   // the site the set archives (for restore checks)
	PieceSize int64    // piece size of the haul manifest
	Manifest  string   // name of the haul manifest in Dir
}

// NetSetName is the base name of the network scenarios' Bitrix set.
const NetSetName = "site_20261120"

// NetSet writes a Bitrix-style multi-volume backup of a generated site into
// work/NAME (the site into work/NAME-tree): about size bytes of volumes in parts volumes (Bitrix cuts by
// tar bytes, so volume sizes vary a little), SHA256SUMS and a haul
// manifest with pieceSize pieces.
func NetSet(ctx context.Context, work, name string, size int64, parts int, pieceSize int64, seed int64) (*Set, error) {
	tree := filepath.Join(work, name+"-tree")
	dir := filepath.Join(work, name)
	for _, d := range []string{tree, dir} {
		if err := removeAll(d); err != nil {
			return nil, err
		}
	}
	// A generated site is about 35% random binaries and 65% text that
	// deflates about fivefold, so its volumes come to about half its
	// size.
	if err := gen.Tree(tree, seed, size*2); err != nil {
		return nil, err
	}
	tarBytes, err := treeBytes(tree)
	if err != nil {
		return nil, err
	}
	vol := tarBytes/int64(parts) + 4096
	paths, err := gen.BitrixSet(tree, dir, NetSetName, vol, "")
	if err != nil {
		return nil, err
	}
	return finishSet(ctx, dir, tree, paths, pieceSize)
}

// BigSet writes a split GNU tar.gz (NAME.000, NAME.001, …, cut every
// partSize bytes) of a generated site of about size bytes into work/big:
// a realistic site of up to 256 MiB and large random files for the rest,
// so that a set of many gigabytes is quick to make. SHA256SUMS and a haul
// manifest are written beside the parts.
func BigSet(ctx context.Context, work, name string, size, partSize, pieceSize int64, seed int64) (*Set, error) {
	tree := filepath.Join(work, name+"-tree")
	dir := filepath.Join(work, name)
	for _, d := range []string{tree, dir} {
		if err := removeAll(d); err != nil {
			return nil, err
		}
	}
	site := min(size/8, 256<<20)
	if err := gen.Tree(tree, seed, site); err != nil {
		return nil, err
	}
	if err := bigFiles(filepath.Join(tree, "upload", "big"), size-site, seed); err != nil {
		return nil, err
	}
	paths, err := gen.SplitTarGz(tree, dir, name+".tar.gz", partSize, gen.FormatGzip)
	if err != nil {
		return nil, err
	}
	return finishSet(ctx, dir, tree, paths, pieceSize)
}

// bigFiles writes random files of at most 512 MiB adding up to n bytes,
// with mtimes in whole seconds as tar keeps them.
func bigFiles(dir string, n int64, seed int64) error {
	mtime := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var key [32]byte
	copy(key[:], fmt.Sprintf("haulbench-%d", seed))
	src := rand.NewChaCha8(key)
	buf := make([]byte, 1<<20)
	for i := 0; n > 0; i++ {
		size := min(n, 512<<20)
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("dump-%03d.bin", i)))
		if err != nil {
			return err
		}
		for left := size; left > 0; {
			b := buf[:min(left, int64(len(buf)))]
			_, _ = src.Read(b) // ChaCha8.Read never fails
			if _, err := f.Write(b); err != nil {
				f.Close()
				return err
			}
			left -= int64(len(b))
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Chtimes(f.Name(), mtime, mtime); err != nil {
			return err
		}
		n -= size
	}
	return os.Chtimes(dir, mtime, mtime)
}

func finishSet(ctx context.Context, dir, tree string, paths []string, pieceSize int64) (*Set, error) {
	s := &Set{Dir: dir, Tree: tree, PieceSize: pieceSize}
	var sums strings.Builder
	for _, p := range paths {
		name := filepath.Base(p)
		sum, n, err := sha256File(p)
		if err != nil {
			return nil, err
		}
		s.Parts = append(s.Parts, name)
		s.Size += n
		fmt.Fprintf(&sums, "%s  %s\n", sum, name)
	}
	if len(s.Parts) == 0 {
		return nil, errors.New("bench: the generator wrote no parts")
	}
	// The manifest first: it lists the directory, and reference files are
	// kept out of the parts anyway.
	s.Manifest = s.Parts[0] + ".haul.json"
	var m bytes.Buffer
	if err := fetch.WriteManifest(ctx, dir, source.OpenOptions{}, pieceSize, &m); err != nil {
		return nil, fmt.Errorf("bench: manifest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, s.Manifest), m.Bytes(), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(sums.String()), 0o644); err != nil {
		return nil, err
	}
	return s, nil
}

// WithoutManifest returns a copy of the set's directory (hard links) with
// SHA256SUMS but no haul manifest, to measure what a piece manifest saves.
func (s *Set) WithoutManifest(dir string) (*Set, error) {
	if err := removeAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, n := range append(append([]string{}, s.Parts...), "SHA256SUMS") {
		if err := os.Link(filepath.Join(s.Dir, n), filepath.Join(dir, n)); err != nil {
			return nil, err
		}
	}
	c := *s
	c.Dir, c.Manifest = dir, ""
	return &c, nil
}

// treeBytes is about what a tar of dir holds: file bytes plus a header
// block per entry.
func treeBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n += 512
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += (fi.Size() + 511) / 512 * 512
		}
		return nil
	})
	return n, err
}

func sha256File(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// removeAll removes p even where the tree holds read-only directories (the
// generated site has one; restored copies keep it).
func removeAll(p string) error {
	if err := os.RemoveAll(p); err == nil {
		return nil
	}
	_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(q, 0o755)
		}
		return nil
	})
	return os.RemoveAll(p)
}
