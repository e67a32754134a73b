// Reference files: sum files and haul manifests beside the parts, and
// --manifest, read before any part.

package fetch

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
	"github.com/haul-dev/haul/internal/retry"
)

// refIndex is what the reference files say.
type refIndex struct {
	byName    map[string][]integrity.Reference
	pieceSize int64 // from a haul manifest, 0 when none
}

// loadReferences reads every reference file beside the parts and the
// --manifest one. A malformed file is an error naming it and the line.
func (e *engine) loadReferences(ctx context.Context, files []source.Object) (*refIndex, error) {
	idx := &refIndex{byName: map[string][]integrity.Reference{}}
	add := func(name string, r io.Reader) error {
		if integrity.IsManifestFile(name) {
			h, parts, err := integrity.ReadManifest(name, r)
			if err != nil {
				return err
			}
			if idx.pieceSize == 0 {
				idx.pieceSize = h.PieceSize
			}
			for _, p := range parts {
				idx.byName[p.Name] = append(idx.byName[p.Name], p.References()...)
			}
			return nil
		}
		refs, err := integrity.ParseSumFile(name, r)
		if err != nil {
			return err
		}
		for n, rs := range refs {
			idx.byName[n] = append(idx.byName[n], rs...)
		}
		return nil
	}
	for _, o := range files {
		if o.Size > maxRefFile {
			return nil, source.Permanent(fmt.Errorf("reference file %s is %d bytes, more than a sum file should be", o.Name, o.Size))
		}
	}
	datas, err := e.readRefs(ctx, files)
	if err != nil {
		return nil, err
	}
	for i, o := range files {
		if err := add(o.Name, bytes.NewReader(datas[i])); err != nil {
			return nil, source.Permanent(err)
		}
	}
	if m := e.opts.Manifest; m != "" {
		data, name, err := readManifestArg(ctx, m, e.opts)
		if err != nil {
			return nil, err
		}
		if err := add(name, bytes.NewReader(data)); err != nil {
			return nil, source.Permanent(err)
		}
	}
	return idx, nil
}

const maxRefFile = 64 << 20

// readManifestArg reads --manifest PATH|URL.
func readManifestArg(ctx context.Context, m string, opts *Options) ([]byte, string, error) {
	if !strings.Contains(m, "://") {
		data, err := os.ReadFile(m)
		if err != nil {
			return nil, "", source.Permanent(fmt.Errorf("--manifest %s: %w", m, err))
		}
		return data, filepath.Base(m), nil
	}
	op, err := open.Open(ctx, m, opts.Open)
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
			data, err := readAll(ctx, opts, op.Source, o)
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
// in ranges over up to opts.Connections requests in all. On a link capped
// per connection a 30 GB set's manifest (about 250 KB at 8 MiB pieces)
// read on one connection would hold back every part for seconds.
func (e *engine) readRefs(ctx context.Context, files []source.Object) ([][]byte, error) {
	type task struct {
		file   int
		off, n int64
	}
	var tasks []task
	out := make([][]byte, len(files))
	for i, o := range files {
		out[i] = make([]byte, o.Size)
		k := max(1, min(int64(e.opts.Connections), o.Size/refRange))
		step := (o.Size + k - 1) / k
		for off := int64(0); off < o.Size; off += step {
			tasks = append(tasks, task{i, off, min(step, o.Size-off)})
		}
	}
	errs := make([]error, len(files))
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, max(1, e.opts.Connections))
	for _, t := range tasks {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			err := readInto(ctx, e.opts, e.src, files[t.file], t.off, out[t.file][t.off:t.off+t.n])
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
			out[i], err = readAll(ctx, e.opts, e.src, files[i])
		}
		if err != nil {
			return nil, fmt.Errorf("reference file %s: %w", files[i].Name, err)
		}
	}
	return out, nil
}

// readAll reads a small object whole, retried as every read is.
func readAll(ctx context.Context, opts *Options, src source.Source, o source.Object) ([]byte, error) {
	data := make([]byte, o.Size)
	if err := readInto(ctx, opts, src, o, 0, data); err != nil {
		return nil, err
	}
	return data, nil
}

// readInto reads bytes [off, off+len(dst)) of a small object into dst,
// with the run's retry policy (--retries and its backoff).
func readInto(ctx context.Context, opts *Options, src source.Source, o source.Object, off int64, dst []byte) error {
	return retry.Do(ctx, opts.policy("", func(err error, _ int) bool {
		return !source.IsPermanent(err) && !errors.Is(err, source.ErrRangeIgnored)
	}, func(err error, attempt int) string {
		return fmt.Sprintf("reference file %s: %v; retrying (%d/%d)", o.Name, err, attempt, opts.Retries)
	}), func(int) error {
		// A reference file that stops coming halfway is a stall like a
		// part's: --timeout ends the try (transient), not the user.
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		watch := newStallWatch(opts.Timeout, cancel)
		defer watch.stop()
		rc, err := src.ReadRange(rctx, o, off, int64(len(dst)))
		if err != nil {
			return watch.explain(err)
		}
		_, err = io.ReadFull(watchedReader{rc, watch}, dst)
		rc.Close()
		if err != nil {
			return watch.explain(err)
		}
		return nil
	})
}

// watchedReader tells its stall watch of every read.
type watchedReader struct {
	r io.Reader
	w *stallWatch
}

func (r watchedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.w.kick()
	}
	return n, err
}
