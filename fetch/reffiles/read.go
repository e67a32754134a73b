package reffiles

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/source/open"
	"github.com/haul-dev/haul/integrity"
	"github.com/haul-dev/haul/internal/redact"
)

// Index is what the reference files say.
type Index struct {
	ByName    map[string][]integrity.Reference
	PieceSize int64 // from a haul manifest, 0 when none
}

// MaxFile is the largest reference file read.
const MaxFile = 64 << 20

// Reader reads reference files.
type Reader struct {
	// Conns bounds the requests in flight at once (-j).
	Conns int
	// Open opens a --manifest URL.
	Open source.OpenOptions
	// ReadAt reads bytes [off, off+len(dst)) of o from src into dst, with
	// the caller's retries and stall timeout; it gives an error matching
	// source.ErrRangeIgnored when the server ignores the range.
	ReadAt func(ctx context.Context, src source.Source, o source.Object, off int64, dst []byte) error
}

// Load reads every reference file beside the parts (files, from src) and
// the --manifest one (manifest, "" for none). A malformed file is an
// error naming it and the line.
func (rd Reader) Load(ctx context.Context, src source.Source, files []source.Object, manifest string) (*Index, error) {
	idx := &Index{ByName: map[string][]integrity.Reference{}}
	add := func(name string, r io.Reader) error {
		if integrity.IsManifestFile(name) {
			h, parts, err := integrity.ReadManifest(name, r)
			if err != nil {
				return err
			}
			if idx.PieceSize == 0 {
				idx.PieceSize = h.PieceSize
			}
			for _, p := range parts {
				idx.ByName[p.Name] = append(idx.ByName[p.Name], p.References()...)
			}
			return nil
		}
		refs, err := integrity.ParseSumFile(name, r)
		if err != nil {
			return err
		}
		if len(idx.ByName) == 0 {
			idx.ByName = refs // the first file: its map is the index, not copied (100,000 lines: 16 MB)
			return nil
		}
		for n, rs := range refs {
			idx.ByName[n] = append(idx.ByName[n], rs...)
		}
		return nil
	}
	for _, o := range files {
		if o.Size > MaxFile {
			return nil, source.Permanent(fmt.Errorf("reference file %s is %d bytes, more than a sum file should be", o.Name, o.Size))
		}
	}
	datas, err := rd.readRefs(ctx, src, files)
	if err != nil {
		return nil, err
	}
	for i, o := range files {
		data := datas[i]
		datas[i] = nil // parsed files are let go one by one: a set's SHA256SUMS can be megabytes
		if err := add(o.Name, bytes.NewReader(data)); err != nil {
			return nil, source.Permanent(err)
		}
	}
	if m := manifest; m != "" {
		data, name, err := rd.readManifestArg(ctx, m)
		if err != nil {
			return nil, err
		}
		if err := add(name, bytes.NewReader(data)); err != nil {
			return nil, source.Permanent(err)
		}
	}
	return idx, nil
}

// readManifestArg reads --manifest PATH|URL.
func (rd Reader) readManifestArg(ctx context.Context, m string) ([]byte, string, error) {
	if !strings.Contains(m, "://") {
		data, err := os.ReadFile(m)
		if err != nil {
			return nil, "", source.Permanent(fmt.Errorf("--manifest %s: %w", m, err))
		}
		return data, filepath.Base(m), nil
	}
	op, err := open.Open(ctx, m, rd.Open)
	if err != nil {
		return nil, "", fmt.Errorf("--manifest %s: %w", redact.URL(m), err)
	}
	defer op.Source.Close()
	objs, err := op.Source.List(ctx)
	if err != nil {
		return nil, "", err
	}
	for _, o := range objs {
		if op.Prefix == "" || o.Name == op.Prefix {
			data, err := rd.readAll(ctx, op.Source, o)
			if err != nil {
				return nil, "", fmt.Errorf("--manifest %s: %w", redact.URL(m), err)
			}
			return data, o.Name, nil
		}
	}
	return nil, "", source.Permanent(fmt.Errorf("--manifest %s: %w", redact.URL(m), source.ErrNotFound))
}

// refRange is the least a range of a reference file read in parallel
// holds.
const refRange = 2 << 10

// readRefs reads the reference files before any part: all at once, each
// in ranges over up to rd.Conns requests in all. On a link capped per
// connection a 30 GB set's manifest (about 250 KB at 8 MiB pieces) read
// on one connection would hold back every part for seconds.
func (rd Reader) readRefs(ctx context.Context, src source.Source, files []source.Object) ([][]byte, error) {
	type task struct {
		file   int
		off, n int64
	}
	var tasks []task
	out := make([][]byte, len(files))
	for i, o := range files {
		out[i] = make([]byte, o.Size)
		k := max(1, min(int64(rd.Conns), o.Size/refRange))
		step := (o.Size + k - 1) / k
		for off := int64(0); off < o.Size; off += step {
			tasks = append(tasks, task{i, off, min(step, o.Size-off)})
		}
	}
	errs := make([]error, len(files))
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, max(1, rd.Conns))
	for _, t := range tasks {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			err := rd.ReadAt(ctx, src, files[t.file], t.off, out[t.file][t.off:t.off+t.n])
			mu.Lock()
			if err != nil && errs[t.file] == nil {
				errs[t.file] = err
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	for i, err := range errs {
		if errors.Is(err, source.ErrRangeIgnored) {
			// A server that ignores Range: the file in one piece.
			out[i], err = rd.readAll(ctx, src, files[i])
		}
		if err != nil {
			return nil, fmt.Errorf("reference file %s: %w", files[i].Name, err)
		}
	}
	return out, nil
}

// readAll reads a small object whole, retried as every read is.
func (rd Reader) readAll(ctx context.Context, src source.Source, o source.Object) ([]byte, error) {
	data := make([]byte, o.Size)
	if err := rd.ReadAt(ctx, src, o, 0, data); err != nil {
		return nil, err
	}
	return data, nil
}
