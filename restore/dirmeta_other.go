//go:build !linux

package restore

import (
	"errors"
	"io/fs"
	"slices"
	"strings"
)

// applyDirs sets the metadata of the named directories by their paths,
// deepest first, so that a parent without write or search permission is
// set after its children.
func (x *extractor) applyDirs(names []string, metas map[string]*dirMeta) error {
	order := slices.Clone(names)
	slices.SortStableFunc(order, func(a, b string) int {
		return strings.Count(b, "/") - strings.Count(a, "/")
	})
	for _, n := range order {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		err := x.applyDir(n, metas[n])
		if x.incremental && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}
