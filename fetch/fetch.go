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
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/integrity"
	"github.com/haul-dev/haul/internal/bwlimit"
)

// Options configures Fetch, Verify and Repair.
type Options struct {
	Sources []string // SOURCE arguments
	Dest    string   // the workdir
	Open    OpenOptions
	Filter  Filter
	// Manifest is a --manifest PATH or URL naming a reference file.
	Manifest    string
	Connections int   // -j, default 8
	PieceSize   int64 // --chunk-size, default 8 MiB
	// AutoPieceSize lets a set of small parts use smaller pieces (no
	// --chunk-size given): see autoPieceSize.
	AutoPieceSize bool
	Retries       int              // attempts per piece, default 10
	Timeout       time.Duration    // stall timeout, default 60 s
	Limiter       *bwlimit.Limiter // --bwlimit; nil = unlimited
	Progress      Progress
	Backoff       Backoff // nil = DefaultBackoff
	// SetCheck decodes a whole set split at arbitrary bytes (parts in
	// order, at their final paths) and returns a *integrity.FormatError
	// naming the first bad part, or an error wrapping ErrNoVerdict when it
	// cannot decode the set at all (an unknown format): nil means the set
	// decoded. It runs when a multi-part set has parts no reference could
	// prove. Label names it in verified_by.
	SetCheck      func(ctx context.Context, paths []string, names []string) error
	SetCheckLabel string
}

func (o *Options) defaults() {
	if o.Connections <= 0 {
		o.Connections = 8
	}
	if o.Open.SSH.Connections <= 0 {
		o.Open.SSH.Connections = o.Connections // the SFTP pool's size
	}
	if o.PieceSize <= 0 {
		o.PieceSize = 8 << 20
	}
	if o.Retries <= 0 {
		o.Retries = 10
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Progress == nil {
		o.Progress = nopProgress{}
	}
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
}

// ErrNoVerdict is what a SetCheck returns when it cannot test-decode the
// set (a format it does not know, an encrypted stream): the parts stay
// unverified rather than proven.
var ErrNoVerdict = errors.New("the set cannot be test-decoded")

// SuspectError is a SetCheck failure whose cause is in one of several
// parts: a checksum that covers them all (a gzip member's CRC over a stream
// split at arbitrary bytes) failed. Err is the *integrity.FormatError.
type SuspectError struct {
	Parts []string // in set order
	Err   error
}

func (e *SuspectError) Error() string { return e.Err.Error() }
func (e *SuspectError) Unwrap() error { return e.Err }

// Summary is what a Fetch, Verify or Repair leaves behind.
type Summary struct {
	Parts      int
	Verified   int
	Unverified int
	Broken     []string
	Missing    []string
	BytesTotal int64
	Pulled     int64 // bytes received over the link in this run
	// Detail says why each broken or missing part is so.
	Detail map[string]string
}

// Fetch downloads every part of the set into opts.Dest, resumably, and
// verifies each part as it completes; a part that fails is fetched again
// up to opts.Retries times. It returns *IncompleteError (exit 3) when parts
// stay broken or missing, an error wrapping ErrInterrupted (exit 75) when
// ctx ends first, and ErrNetworkDown (exit 75) when the link stays down.
func Fetch(ctx context.Context, opts Options) (*Summary, error) {
	opts.defaults()
	if err := ensureDest(opts.Dest); err != nil {
		return nil, err
	}
	if err := opts.Filter.Validate(); err != nil {
		return nil, Permanent(fmt.Errorf("%w: %v", ErrBadSource, err))
	}
	op, err := openSources(ctx, &opts)
	if err != nil {
		return nil, err
	}
	if op.Prefix != "" {
		opts.Filter.Prefix = op.Prefix
	}
	e := &engine{opts: &opts, src: op.Source}
	defer func() { e.src.Close() }()
	for {
		err := e.prepareRun(ctx)
		if err == nil {
			// A failed set decode sends a part back for another fetch;
			// that loop is bounded by the parts' attempts (--retries).
			err = e.setCheck(ctx)
			if errors.Is(err, errRelist) {
				continue
			}
		}
		if e.st == nil {
			return nil, err
		}
		s := e.summary()
		if err == nil {
			err = s.Err(opts.Dest)
		}
		return s, err
	}
}

// prepareRun prepares the engine and runs it. A part that changes at the
// source mid-run sends it back to listing with the source opened again
// (an HTTP source learns versions only when it is opened), at most
// maxChanges times, so a source that changes all the time still ends.
func (e *engine) prepareRun(ctx context.Context) error {
	for changes := 1; ; changes++ {
		if err := retryTransient(ctx, e.opts, func() error { return e.prepare(ctx) }); err != nil {
			return err
		}
		err := e.run(ctx)
		if !errors.Is(err, errRelist) {
			return err
		}
		if changes > maxChanges {
			return fmt.Errorf("%w: parts changed at the source %d times during this run; run again when the copy at the source is complete", ErrInterrupted, changes)
		}
		e.src.Close()
		op, err := openSources(ctx, e.opts)
		if err != nil {
			return err
		}
		e.src = op.Source
	}
}

// openSources opens the SOURCE arguments, trying again while the link or
// the server is down.
func openSources(ctx context.Context, opts *Options) (*Opened, error) {
	var op *Opened
	err := retryTransient(ctx, opts, func() error {
		var err error
		op, err = OpenSources(ctx, opts.Sources, opts.Open)
		return err
	})
	return op, err
}

// maxChanges bounds how often one run starts over because a part changed
// at the source.
const maxChanges = 5

// ensureDest creates DEST/.haul and proves it is writable.
func ensureDest(dest string) error {
	if dest == "" {
		return Permanent(fmt.Errorf("no DEST given: %w", ErrBadSource))
	}
	if err := os.MkdirAll(filepath.Join(dest, chunk.StateDir), 0o700); err != nil {
		return Permanent(fmt.Errorf("DEST %s is not writable (%v): choose another directory or fix its permissions: %w", dest, errors.Unwrap(err), ErrDest))
	}
	f, err := os.CreateTemp(filepath.Join(dest, chunk.StateDir), ".probe*")
	if err != nil {
		return Permanent(fmt.Errorf("DEST %s is not writable (%v): choose another directory or fix its permissions: %w", dest, errors.Unwrap(err), ErrDest))
	}
	f.Close()
	return os.Remove(f.Name())
}

// refIndex is what the reference files say.
type refIndex struct {
	byName    map[string][]integrity.Reference
	pieceSize int64 // from a haul manifest, 0 when none
}

// loadReferences reads every reference file beside the parts and the
// --manifest one. A malformed file is an error naming it and the line.
func (e *engine) loadReferences(ctx context.Context, files []Object) (*refIndex, error) {
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
			return nil, Permanent(fmt.Errorf("reference file %s is %d bytes, more than a sum file should be", o.Name, o.Size))
		}
	}
	datas, err := e.readRefs(ctx, files)
	if err != nil {
		return nil, err
	}
	for i, o := range files {
		if err := add(o.Name, bytes.NewReader(datas[i])); err != nil {
			return nil, Permanent(err)
		}
	}
	if m := e.opts.Manifest; m != "" {
		data, name, err := readManifestArg(ctx, m, e.opts.Open)
		if err != nil {
			return nil, err
		}
		if err := add(name, bytes.NewReader(data)); err != nil {
			return nil, Permanent(err)
		}
	}
	return idx, nil
}

const maxRefFile = 64 << 20

// readManifestArg reads --manifest PATH|URL.
func readManifestArg(ctx context.Context, m string, oo OpenOptions) ([]byte, string, error) {
	if !strings.Contains(m, "://") {
		data, err := os.ReadFile(m)
		if err != nil {
			return nil, "", Permanent(fmt.Errorf("--manifest %s: %w", m, err))
		}
		return data, filepath.Base(m), nil
	}
	op, err := Open(ctx, m, oo)
	if err != nil {
		return nil, "", fmt.Errorf("--manifest %s: %w", Redact(m), err)
	}
	defer op.Source.Close()
	objs, err := op.Source.List(ctx)
	if err != nil {
		return nil, "", err
	}
	for _, o := range objs {
		if op.Prefix == "" || o.Name == op.Prefix {
			e := &engine{opts: &Options{Timeout: time.Minute}}
			data, err := e.readAll(ctx, op.Source, o)
			return data, o.Name, err
		}
	}
	return nil, "", Permanent(fmt.Errorf("--manifest %s: %w", Redact(m), ErrNotFound))
}

// refRange is the least a range of a reference file read in parallel
// holds.
const refRange = 2 << 10

// readRefs reads the reference files before any part: all at once, each
// in ranges over up to opts.Connections requests in all. On a link capped
// per connection a 30 GB set's manifest (about 250 KB at 8 MiB pieces)
// read on one connection would hold back every part for seconds.
func (e *engine) readRefs(ctx context.Context, files []Object) ([][]byte, error) {
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
			err := e.readInto(ctx, e.src, files[t.file], t.off, out[t.file][t.off:t.off+t.n])
			mu.Lock()
			if err != nil && errs[t.file] == nil {
				errs[t.file] = err
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	for i, err := range errs {
		if errors.Is(err, errRangeIgnored) {
			// A server that ignores Range: the file in one piece.
			out[i], err = e.readAll(ctx, e.src, files[i])
		}
		if err != nil {
			return nil, fmt.Errorf("reference file %s: %w", files[i].Name, err)
		}
	}
	return out, nil
}

// readAll reads a small object whole, with a few retries.
func (e *engine) readAll(ctx context.Context, src Source, o Object) ([]byte, error) {
	data := make([]byte, o.Size)
	if err := e.readInto(ctx, src, o, 0, data); err != nil {
		return nil, err
	}
	return data, nil
}

// readInto reads bytes [off, off+len(dst)) of a small object into dst,
// with a few retries.
func (e *engine) readInto(ctx context.Context, src Source, o Object, off int64, dst []byte) error {
	var last error
	for attempt := 1; attempt <= 3; attempt++ {
		rc, err := src.ReadRange(ctx, o, off, int64(len(dst)))
		if err == nil {
			_, err = io.ReadFull(rc, dst)
			rc.Close()
			if err == nil {
				return nil
			}
		}
		if IsPermanent(err) || ctx.Err() != nil || errors.Is(err, errRangeIgnored) {
			return err
		}
		last = err
		if err := sleep(ctx, time.Duration(attempt)*200*time.Millisecond); err != nil {
			return err
		}
	}
	return last
}

// IncompleteError lists parts that stay broken or missing (exit 3).
type IncompleteError struct {
	Dest    string
	Broken  []string
	Missing []string
	Detail  map[string]string // part → why
}

func (e *IncompleteError) Error() string {
	var b strings.Builder
	for _, n := range e.Broken {
		fmt.Fprintf(&b, "part %s is broken", n)
		if d := e.Detail[n]; d != "" {
			fmt.Fprintf(&b, " (%s)", d)
		}
		b.WriteString("; ")
	}
	for _, n := range e.Missing {
		fmt.Fprintf(&b, "part %s is missing at the source; ", n)
	}
	fmt.Fprintf(&b, "run: haul repair --from ssh://HOST/DIR %s (a host with a good copy), or haul repair %s to retry the source", e.Dest, e.Dest)
	return b.String()
}

func (e *IncompleteError) Unwrap() error { return ErrIncomplete }

// Err turns a summary into the error the run ends with, nil when every
// part is on disk and proven (or unverifiable).
func (s *Summary) Err(dest string) error {
	if len(s.Broken) == 0 && len(s.Missing) == 0 {
		return nil
	}
	return &IncompleteError{Dest: dest, Broken: s.Broken, Missing: s.Missing, Detail: s.Detail}
}
