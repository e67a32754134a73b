package fetch

import (
	"context"
	"io"

	"github.com/haul-dev/haul/fetch/reffiles"
	"github.com/haul-dev/haul/fetch/source"
)

// WriteManifest writes a haul manifest for the set a SOURCE names (a local
// directory, or any remote source): each part's size and SHA-256 and each
// piece's SHA-256, read in one sequential pass per part
// (reffiles.WriteManifest).
func WriteManifest(ctx context.Context, spec string, oo source.OpenOptions, pieceSize int64, w io.Writer) error {
	return settle(reffiles.WriteManifest(ctx, spec, oo, pieceSize, w))
}
