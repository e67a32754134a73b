package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/haul-dev/haul/fetch/source"
)

// localSource reads parts from a local or mounted directory.
type localSource struct {
	dir string
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
func (s *localSource) Close() error   { return nil }

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

func (s *localSource) ReadRange(ctx context.Context, obj source.Object, off, n int64) (io.ReadCloser, error) {
	f, err := os.Open(filepath.Join(s.dir, obj.Name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", obj.Name, source.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", obj.Name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi.Size() != obj.Size || !fi.ModTime().Equal(obj.ModTime) {
		f.Close()
		return nil, fmt.Errorf("read %s: %w (size or mtime differs)", obj.Name, source.ErrChanged)
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, off, n), f}, nil
}
