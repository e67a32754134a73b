// Reference files: sum files and haul manifests beside the parts, and
// --manifest, read before any part.

package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/haul-dev/haul/fetch/reffiles"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/stall"
	"github.com/haul-dev/haul/internal/retry"
)

// loadReferences reads every reference file beside the parts and the
// --manifest one (package reffiles), each read retried and watched for
// stalls as a part's is.
func (e *engine) loadReferences(ctx context.Context, files []source.Object) (*reffiles.Index, error) {
	rd := reffiles.Reader{Conns: e.opts.Connections, Open: e.opts.Open, ReadAt: func(ctx context.Context, src source.Source, o source.Object, off int64, dst []byte) error {
		return readInto(ctx, e.opts, src, o, off, dst)
	}}
	return rd.Load(ctx, e.src, files, e.opts.Manifest)
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
		watch := stall.New(opts.Timeout, cancel)
		defer watch.Stop()
		rc, err := src.ReadRange(rctx, o, off, int64(len(dst)))
		if err != nil {
			return watch.Explain(err)
		}
		_, err = io.ReadFull(watch.Reader(rc), dst)
		rc.Close()
		if err != nil {
			return watch.Explain(err)
		}
		return nil
	})
}
