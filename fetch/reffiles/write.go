package reffiles

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/source/open"
	"github.com/haul-dev/haul/integrity"
)

// WriteManifest writes a haul manifest for the set a SOURCE names (a local
// directory, or any remote source): each part's size and SHA-256 and each
// piece's SHA-256, read in one sequential pass per part.
func WriteManifest(ctx context.Context, spec string, oo source.OpenOptions, pieceSize int64, w io.Writer) error {
	op, err := open.OpenSources(ctx, []string{spec}, oo)
	if err != nil {
		return err
	}
	defer op.Source.Close()
	objs, err := op.Source.List(ctx)
	if err != nil {
		return fmt.Errorf("list %s: %w", op.Source, err)
	}
	set := source.SelectSet(objs, source.Filter{Prefix: op.Prefix})
	if len(set.Parts) == 0 {
		return source.Permanent(fmt.Errorf("no parts found at %s: %w", op.Source, source.ErrNotFound))
	}
	mw, err := integrity.NewManifestWriter(w, integrity.ManifestHeader{Version: 1, PieceSize: pieceSize, Created: time.Now().UTC()})
	if err != nil {
		return err
	}
	for _, o := range set.Parts {
		rc, err := op.Source.ReadRange(ctx, o, 0, o.Size)
		if err != nil {
			return fmt.Errorf("read %s: %w", o.Name, err)
		}
		mp, err := integrity.BuildManifestPart(o.Name, rc, pieceSize)
		rc.Close()
		if err != nil {
			return fmt.Errorf("hash %s: %w", o.Name, err)
		}
		if mp.Size != o.Size {
			return fmt.Errorf("hash %s: read %d bytes, the source says %d", o.Name, mp.Size, o.Size)
		}
		if err := mw.Add(mp); err != nil {
			return err
		}
	}
	return mw.Close()
}
