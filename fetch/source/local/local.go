package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/haul-dev/haul/fetch/source"
)

// localSource reads parts from a local or mounted directory.
type localSource struct {
	dir string

	mu     sync.Mutex
	files  map[string]*openFile // part files open between reads, by name
	closed bool
	// noCopy is set once the kernel refused to copy a part (CopyTo): the
	// reads after it go through memory.
	noCopy atomic.Bool
}

var _ source.Source = (*localSource)(nil)

func Open(p string) (*source.Opened, error) {
	if p == "" {
		return nil, fmt.Errorf("source: empty path: %w", source.ErrBadSource)
	}
	p = filepath.Clean(p)
	fi, err := os.Stat(p)
	if err == nil && fi.IsDir() {
		return &source.Opened{Source: &localSource{dir: p}}, nil
	}
	dir, prefix := filepath.Dir(p), filepath.Base(p)
	if di, err := os.Stat(dir); err != nil || !di.IsDir() {
		return nil, fmt.Errorf("source %s: no such directory %s: %w", p, dir, source.ErrNotFound)
	}
	return &source.Opened{Source: &localSource{dir: dir}, Prefix: prefix}, nil
}

func (s *localSource) String() string { return s.dir }

// Close closes the part files kept open; those a read still uses close
// when it ends.
func (s *localSource) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, of := range s.files {
		s.forget(of)
	}
	return nil
}

func (s *localSource) List(ctx context.Context) ([]source.Object, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.dir, err)
	}
	var objs []source.Object
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), ".partial") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // vanished while listing
		}
		objs = append(objs, source.Object{Name: e.Name(), Size: fi.Size(), ModTime: fi.ModTime()})
	}
	return objs, nil
}

// ReadRange reads through a descriptor kept open across the reads of a
// part's pieces (one open per part, not per piece: at 256 KiB pieces the
// open, stat and close of each were a third of the system calls of a
// copy). Every read still stats the part by its name first, so that a
// file changed (size, mtime) or replaced (another inode) since the
// listing fails with ErrChanged as when it was opened for each read.
func (s *localSource) ReadRange(ctx context.Context, obj source.Object, off, n int64) (io.ReadCloser, error) {
	path := filepath.Join(s.dir, obj.Name)
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", obj.Name, source.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", obj.Name, err)
	}
	if !same(fi, obj) {
		return nil, fmt.Errorf("read %s: %w (size or mtime differs)", obj.Name, source.ErrChanged)
	}
	of, err := s.acquire(obj, path, fi)
	if err != nil {
		return nil, err
	}
	return &rangeReader{SectionReader: io.NewSectionReader(of.f, off, n), s: s, of: of, off: off, n: n}, nil
}

func same(fi os.FileInfo, obj source.Object) bool {
	return fi.Size() == obj.Size && fi.ModTime().Equal(obj.ModTime)
}

// maxOpen bounds the part files kept open between reads: a set of
// 100,000 parts holds no more descriptors than this (and those in use).
const maxOpen = 16

// openFile is a part file kept open for the reads of its pieces.
type openFile struct {
	f    *os.File
	fi   os.FileInfo
	name string
	refs int  // reads using it, under localSource.mu
	gone bool // no longer in localSource.files: closed when refs drops to 0
}

// acquire returns obj's open file, opening it when none is open or the
// open one is not the file now at path (fi).
func (s *localSource) acquire(obj source.Object, path string, fi os.FileInfo) (*openFile, error) {
	s.mu.Lock()
	if of := s.files[obj.Name]; of != nil && os.SameFile(of.fi, fi) {
		of.refs++
		s.mu.Unlock()
		return of, nil
	}
	s.mu.Unlock()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", obj.Name, source.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", obj.Name, err)
	}
	ofi, err := f.Stat()
	if err == nil && (!os.SameFile(ofi, fi) || !same(ofi, obj)) {
		err = fmt.Errorf("read %s: %w (replaced while opened)", obj.Name, source.ErrChanged)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	of := &openFile{f: f, fi: ofi, name: obj.Name, refs: 1}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		of.gone = true // closed when this read ends
		return of, nil
	}
	if s.files == nil {
		s.files = map[string]*openFile{}
	}
	if old := s.files[obj.Name]; old != nil {
		s.forget(old)
	}
	s.files[obj.Name] = of
	for _, o := range s.files {
		if len(s.files) <= maxOpen {
			break
		}
		if o.refs == 0 {
			s.forget(o)
		}
	}
	return of, nil
}

// forget drops of from the open files, closing it unless a read uses it.
// Callers hold s.mu.
func (s *localSource) forget(of *openFile) {
	delete(s.files, of.name)
	of.gone = true
	if of.refs == 0 {
		of.f.Close() // read-only: a Close error cannot lose data
	}
}

// rangeReader reads one range; Close gives its file back.
type rangeReader struct {
	*io.SectionReader
	s      *localSource
	of     *openFile
	off, n int64 // the range in the part file
	once   sync.Once
}

var _ source.FileCopier = (*rangeReader)(nil)

// CopyTo copies the range's next bytes, at most n, into dst at off inside
// the kernel (source.FileCopier).
func (r *rangeReader) CopyTo(dst *os.File, off int64, n int) (int, error) {
	pos, _ := r.Seek(0, io.SeekCurrent)
	if pos >= r.n {
		return 0, io.EOF
	}
	if r.s.noCopy.Load() {
		return 0, errors.ErrUnsupported
	}
	k, err := copyRange(r.of.f, r.off+pos, dst, off, int(min(int64(n), r.n-pos)))
	if k == 0 && errors.Is(err, errors.ErrUnsupported) {
		r.s.noCopy.Store(true)
		return 0, err
	}
	r.Seek(int64(k), io.SeekCurrent)
	if err == nil && k == 0 {
		// The file ended before the range: it was cut since the listing.
		return 0, fmt.Errorf("read %s: %w (shorter than listed)", r.of.name, source.ErrChanged)
	}
	if err != nil {
		err = fmt.Errorf("copy %s: %w", r.of.name, err)
	}
	return k, err
}

func (r *rangeReader) Close() error {
	r.once.Do(func() {
		r.s.mu.Lock()
		defer r.s.mu.Unlock()
		if r.of.refs--; r.of.refs == 0 && r.of.gone {
			r.of.f.Close()
		}
	})
	return nil
}
