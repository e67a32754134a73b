// Package open turns SOURCE arguments into sources: the scheme picks the
// package (s3://, http(s)://, sftp:// and ssh://, file:// or a path).
package open

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/source/local"
	"github.com/haul-dev/haul/fetch/source/s3"
	"github.com/haul-dev/haul/fetch/source/sftp"
	"github.com/haul-dev/haul/fetch/source/web"
	"github.com/haul-dev/haul/internal/redact"
)

// Open turns one SOURCE argument into a Source.
func Open(ctx context.Context, spec string, opts source.OpenOptions) (*source.Opened, error) {
	u, err := url.Parse(spec)
	if err != nil || u.Scheme == "" || len(u.Scheme) == 1 { // "C:" style or plain path
		return local.Open(spec)
	}
	// One --timeout for every kind of source.
	opts.S3.Timeout = cmp.Or(opts.S3.Timeout, opts.Timeout)
	opts.SSH.Timeout = cmp.Or(opts.SSH.Timeout, opts.Timeout)
	switch strings.ToLower(u.Scheme) {
	case "file":
		return local.Open(u.Path)
	case "s3":
		return s3.Open(ctx, u, opts.S3)
	case "http", "https":
		return web.Open(ctx, []string{spec}, opts)
	case "sftp", "ssh":
		return sftp.Open(ctx, u, opts.SSH)
	}
	return nil, fmt.Errorf("source %q: unknown scheme %q (want s3://, https://, http://, sftp://, ssh://, file:// or a path): %w", redact.URL(spec), u.Scheme, source.ErrBadSource)
}

// OpenSources opens the SOURCE arguments of a command: any number of
// HTTP(S) URLs (one part each), or exactly one other source. A --list
// file's URLs arrive here as separate arguments. A server that cannot be
// reached at all gives a *ReachError.
func OpenSources(ctx context.Context, specs []string, opts source.OpenOptions) (*source.Opened, error) {
	op, err := openSources(ctx, specs, opts)
	if err != nil {
		return nil, reachError(err, specs, opts)
	}
	return op, nil
}

func openSources(ctx context.Context, specs []string, opts source.OpenOptions) (*source.Opened, error) {
	if len(specs) == 0 {
		return nil, source.Permanent(fmt.Errorf("no SOURCE given: %w", source.ErrBadSource))
	}
	allHTTP := true
	for _, s := range specs {
		l := strings.ToLower(s)
		if !strings.HasPrefix(l, "http://") && !strings.HasPrefix(l, "https://") {
			allHTTP = false
		}
	}
	if allHTTP {
		return web.Open(ctx, specs, opts)
	}
	if len(specs) > 1 {
		return nil, source.Permanent(fmt.Errorf("several SOURCEs given (%s, …): give one s3://, sftp:// or local source, or any number of https:// URLs: %w", redact.URL(specs[0]), source.ErrBadSource))
	}
	return Open(ctx, specs[0], opts)
}
