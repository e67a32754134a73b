package bitrixcloud

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch"
)

// The files of the list, at the site's root as restore.php finds them.
const (
	ListTxt = "bitrix/restore_cloud.txt"
	ListPHP = "bitrix/restore_cloud.php" // wins when both are there
	MissLog = "bitrix/restore_cloud_404.php"
)

// Options configures Run.
type Options struct {
	// Root is the restored site (--into DIR).
	Root string
	// Work is haul's own directory for the step (DEST/.haul/cloud): the
	// engine's state and files of the batch in flight. Nothing of haul's
	// goes into the site.
	Work string
	// Hosts are the CDN base URLs (--bitrix-cdn); nil is DefaultHosts.
	Hosts []string
	// Fetch carries the transfer settings (Connections, Retries, Timeout,
	// Limiter, Backoff, PieceSize, AutoPieceSize, Meter); Run sets Dest,
	// Source and Progress.
	Fetch    fetch.Options
	Progress Progress
}

// Progress receives the step's progress; calls may come from several
// goroutines. A nil Progress is allowed.
type Progress interface {
	// CloudStart is called once the list is read: the files and bytes
	// to download in this run.
	CloudStart(files, bytes int64)
	// CloudProgress reports what the run did so far.
	CloudProgress(Tally)
}

// Tally is the step's progress in this run.
type Tally struct {
	Files   int64 // placed in upload/
	Bytes   int64 // pulled over the link (a file fetched again counts twice)
	Missing int64 // at no host as listed, so far
}

// Result is what a run did.
type Result struct {
	List    string // the list's path, "" when the site has none
	Listed  int    // files listed
	Skipped int    // caches and temporary files restore.php passes over
	Present int    // already in upload/ with their listed size
	Fetched int    // downloaded and placed by this run
	Bytes   int64  // their listed bytes
	Missing int    // not at any host, or of another size (MissLog)
	Removed bool   // every file is in place: the list was removed
}

// batchSize bounds the files one engine run holds (its state and plan
// are O(batch), and memory too); see the package doc for why this size.
func batchSize(connections int) int { return min(max(8*connections, 32), maxBatch) }

// maxBatch caps a batch (a variable for the benchmark of batch sizes).
var maxBatch = 256

// Find returns the list of the site at root (relative to root), or "".
func Find(root string) string {
	for _, name := range []string{ListPHP, ListTxt} {
		if fi, err := os.Lstat(filepath.Join(root, name)); err == nil && fi.Mode().IsRegular() {
			return name
		}
	}
	return ""
}

// Run downloads the files the site's cloud list names into upload/ (see
// the package doc).
func Run(ctx context.Context, o Options) (*Result, error) {
	res := &Result{List: Find(o.Root)}
	if res.List == "" {
		return res, nil
	}
	listPath := filepath.Join(o.Root, res.List)
	bases, err := ParseHosts(o.Hosts)
	if err != nil {
		return res, err
	}
	root, err := os.OpenRoot(o.Root)
	if err != nil {
		return res, err
	}
	defer root.Close()
	up, err := openTree(root, o.Root, "upload")
	if err != nil {
		return res, fmt.Errorf("%s/upload: %w", o.Root, err)
	}
	defer up.close()
	r := &run{o: o, res: res, root: root, up: up, listPath: listPath, batchDir: filepath.Join(o.Work, "batch"), began: time.Now()}
	r.st = Status{Site: o.Root, List: listPath}
	if err := os.MkdirAll(o.Work, 0o700); err != nil {
		return res, err
	}
	first, todo, err := r.survey()
	if err != nil {
		// A status of an earlier list would mislead: this one is not read.
		os.Remove(filepath.Join(o.Work, StatusFile))
		return res, err
	}
	r.h = newHosts(bases, o.Fetch.Timeout)
	defer r.h.close()
	r.saveStatus(false)
	if o.Progress != nil {
		o.Progress.CloudStart(int64(todo.files), todo.bytes)
	}
	if err := r.fetchAll(ctx, first); err != nil {
		r.saveStatus(false)
		return res, err
	}
	err = r.finish()
	r.saveStatus(err == nil || errors.Is(err, ErrMissing) || errors.Is(err, ErrUnsafe))
	return res, err
}

type run struct {
	o        Options
	res      *Result
	root     *os.Root
	up       *tree
	listPath string
	batchDir string
	h        *hosts
	began    time.Time
	st       Status
	pulled   atomic.Int64
	fetched  atomic.Int64
	nMissing atomic.Int64
	misses   []miss
	refused  []string
	nRefused int
}

type miss struct {
	e   Entry
	why string
}

type total struct {
	files int
	bytes int64
}

// survey reads the whole list once before anything is downloaded: every
// line must parse and every path be safe (else nothing is fetched), the
// files to fetch are counted, and the entries of a batch an earlier run
// left unfinished (its state in Work) are taken to be fetched first.
func (r *run) survey() (first []Entry, todo total, err error) {
	left := r.leftover()
	sum := sha256.New()
	var unsafe []string
	nUnsafe := 0
	err = r.each(sum, func(e Entry) error {
		r.res.Listed++
		if why := unsafePath(e.Save); why != "" {
			nUnsafe++
			if len(unsafe) < maxNamed {
				unsafe = append(unsafe, fmt.Sprintf("line %d: %q: %s", e.Line, clip(e.Path), why))
			}
			return nil
		}
		if skipped(e.Save) {
			r.res.Skipped++
			return nil
		}
		r.st.Files++
		r.st.Bytes += e.Size
		if r.up.present(e.Save, e.Size) {
			r.res.Present++
			r.st.FilesDone++
			r.st.BytesDone += e.Size
		} else {
			todo.files++
			todo.bytes += e.Size
			if left[partName(e.Line)] {
				first = append(first, e)
			}
		}
		return nil
	})
	if err != nil {
		return nil, todo, err
	}
	r.st.Listed, r.st.Skipped = r.res.Listed, r.res.Skipped
	if nUnsafe > 0 {
		return nil, todo, &UnsafeError{List: r.listPath, Paths: unsafe, Count: nUnsafe}
	}
	id := hex.EncodeToString(sum.Sum(nil))
	if !r.sameList(id) {
		// Another list than the one the leftover batch came from.
		first = nil
		if err := os.RemoveAll(r.batchDir); err != nil {
			return nil, todo, err
		}
	}
	return first, todo, r.saveListID(id)
}

// each calls f with every entry of the list, in order; the list's bytes
// also go to w.
func (r *run) each(w io.Writer, f func(Entry) error) error {
	fh, err := r.root.Open(filepath.ToSlash(r.res.List))
	if err != nil {
		return err
	}
	defer fh.Close()
	lr := newLineReader(r.listPath, io.TeeReader(fh, w))
	for {
		e, err := lr.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := f(e); err != nil {
			return err
		}
	}
}

// leftover names the parts of the batch an interrupted run left.
func (r *run) leftover() map[string]bool {
	st, err := chunk.Load(r.batchDir)
	if err != nil {
		return nil
	}
	m := make(map[string]bool, len(st.Parts))
	for _, p := range st.Parts {
		m[p.Name] = true
	}
	return m
}

const listIDFile = "list.json"

type listID struct {
	SHA256 string `json:"sha256"`
}

func (r *run) sameList(id string) bool {
	data, err := os.ReadFile(filepath.Join(r.o.Work, listIDFile))
	var l listID
	return err == nil && json.Unmarshal(data, &l) == nil && l.SHA256 == id
}

func (r *run) saveListID(id string) error {
	data, _ := json.Marshal(listID{SHA256: id})
	return os.WriteFile(filepath.Join(r.o.Work, listIDFile), data, 0o600)
}

// fetchAll downloads the leftover batch, then the rest of the list in
// batches, in list order.
func (r *run) fetchAll(ctx context.Context, first []Entry) error {
	size := batchSize(r.o.Fetch.Connections)
	if len(first) > 0 {
		if err := r.fetchBatch(ctx, first); err != nil {
			return err
		}
	}
	inFirst := make(map[int]bool, len(first))
	for _, e := range first {
		inFirst[e.Line] = true
	}
	var b []Entry
	err := r.each(io.Discard, func(e Entry) error {
		if inFirst[e.Line] || skipped(e.Save) || r.up.present(e.Save, e.Size) {
			return nil
		}
		b = append(b, e)
		if len(b) < size {
			return nil
		}
		err := r.fetchBatch(ctx, b)
		b = b[:0]
		return err
	})
	if err == nil && len(b) > 0 {
		err = r.fetchBatch(ctx, b)
	}
	return err
}

// fetchBatch runs the engine on one batch, places what it fetched and
// records what it could not. A file no host has ends the engine's run
// (a permanent error): it is recorded and the rest of the batch runs
// again, so each round removes at least one file.
func (r *run) fetchBatch(ctx context.Context, es []Entry) error {
	es = append([]Entry(nil), es...)
	for len(es) > 0 {
		fo := r.o.Fetch
		fo.Dest, fo.Source, fo.Progress = r.batchDir, newBatch(r.h, es), engineProgress{r}
		fo.Sources, fo.Manifest, fo.SetCheck, fo.Replace = nil, "", nil, false
		sum, err := fetch.Fetch(ctx, fo)
		var rest []Entry
		gone := 0
		for _, e := range es {
			if why, ok := r.h.goneReason(partName(e.Line)); ok {
				r.missed(e, "not at any CDN host ("+why+")")
				gone++
				continue
			}
			rest = append(rest, e)
		}
		if err != nil && gone > 0 && ctx.Err() == nil {
			es = rest // the engine stopped at a file no host has
			continue
		}
		var inc *fetch.IncompleteError
		if err != nil && !errors.As(err, &inc) {
			if perr := r.place(rest, nil); perr != nil {
				return perr
			}
			return err
		}
		var detail map[string]string
		if sum != nil {
			detail = sum.Detail
		}
		if err := r.place(rest, detail); err != nil {
			return err
		}
		r.saveStatus(false)
		return os.RemoveAll(r.batchDir)
	}
	return os.RemoveAll(r.batchDir)
}

// place moves the batch's complete files into upload/; with broken (the
// engine's summary of a finished batch), a file not complete is a miss.
func (r *run) place(es []Entry, broken map[string]string) error {
	src, err := os.OpenRoot(r.batchDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer src.Close()
	for _, e := range es {
		name := partName(e.Line)
		fi, err := src.Lstat(name)
		if err != nil || !fi.Mode().IsRegular() || fi.Size() != e.Size {
			if broken != nil {
				why := broken[name]
				if why == "" {
					why = "not fetched"
				}
				// The engine's name for the file means nothing to
				// the reader of the miss log, which names the path.
				why = strings.TrimPrefix(why, name+" ")
				r.missed(e, strings.ReplaceAll(why, name, e.Path))
			}
			continue
		}
		err = r.up.put(src, name, e.Save)
		var pe *placeError
		switch {
		case errors.As(err, &pe):
			r.nRefused++
			r.st.Refused++
			if len(r.refused) < maxNamed {
				r.refused = append(r.refused, fmt.Sprintf("line %d: %s", e.Line, pe.err))
			}
		case err != nil:
			return errors.Join(err, r.up.syncDirs())
		default:
			r.res.Fetched++
			r.res.Bytes += e.Size
			r.st.FilesDone++
			r.st.BytesDone += e.Size
			r.fetched.Add(1)
			r.progress()
		}
	}
	return r.up.syncDirs()
}

func (r *run) missed(e Entry, why string) {
	r.misses = append(r.misses, miss{e, strings.Join(strings.Fields(why), " ")})
	r.res.Missing++
	r.st.Missing++
	r.nMissing.Add(1)
	r.progress()
}

func (r *run) progress() {
	if r.o.Progress != nil {
		r.o.Progress.CloudProgress(Tally{Files: r.fetched.Load(), Bytes: r.pulled.Load(), Missing: r.nMissing.Load()})
	}
}

// finish writes the misses where restore.php logs them, or removes the
// list (and an old miss log) when every file is in place.
func (r *run) finish() error {
	bx, err := openTree(r.root, r.o.Root, "bitrix")
	if err != nil {
		return err
	}
	defer bx.close()
	switch {
	case r.nRefused > 0:
		if err := r.writeMisses(bx); err != nil {
			return err
		}
		return &UnsafeError{List: r.listPath, Paths: r.refused, Count: r.nRefused}
	case len(r.misses) > 0:
		if err := r.writeMisses(bx); err != nil {
			return err
		}
		return &MissingError{Count: len(r.misses), Log: filepath.Join(r.o.Root, MissLog)}
	}
	for _, name := range []string{MissLog, r.res.List} {
		if err := r.root.Remove(filepath.ToSlash(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	r.res.Removed = true
	return syncRoot(bx.root)
}

// writeMisses replaces the miss log: restore.php's guard line, then one
// line per file: `DATE SIZE PATH: why`.
func (r *run) writeMisses(bx *tree) error {
	var b [6]byte
	_, _ = rand.Read(b[:])
	tmp := ".restore_cloud_404.php.haul-" + hex.EncodeToString(b[:])
	f, err := bx.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(r.o.Root, MissLog), err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("<?php die(); ?>\n")
	for _, m := range r.misses {
		fmt.Fprintf(w, "%s %d %s: %s\n", m.e.Date, m.e.Size, m.e.Path, m.why)
	}
	werr := w.Flush()
	if werr == nil {
		werr = f.Sync()
	}
	if err := errors.Join(werr, f.Close()); err != nil {
		bx.root.Remove(tmp)
		return fmt.Errorf("write %s: %w", filepath.Join(r.o.Root, MissLog), err)
	}
	if err := bx.root.Rename(tmp, filepath.Base(MissLog)); err != nil {
		bx.root.Remove(tmp)
		return err
	}
	r.st.MissLog = filepath.Join(r.o.Root, MissLog)
	return syncRoot(bx.root)
}

// engineProgress counts the bytes the engine pulls; the engine's
// per-batch plan and its part names are its own business.
type engineProgress struct{ r *run }

func (p engineProgress) Plan([]fetch.PartProgress) {}
func (p engineProgress) Event(fetch.Event)         {}
func (p engineProgress) Pulled(_ string, n int64) {
	p.r.pulled.Add(n)
	p.r.progress()
}
