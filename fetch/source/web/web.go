package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/integrity"
	"github.com/haul-dev/haul/internal/redact"
)

// httpSource fetches one object per URL. It never decodes a body: it asks
// for identity encoding and takes the bytes as they come, checked against
// the Content-Range it asked for.
type httpSource struct {
	client *http.Client
	objs   []source.Object
	label  string
	// expected are volume names a Bitrix first volume's LN field promises
	// that the server does not have.
	expected []string
}

var (
	_ source.Source   = (*httpSource)(nil)
	_ source.Expecter = (*httpSource)(nil)
)

// Expected implements Expecter.
func (s *httpSource) Expected() []string { return s.expected }

// referenceCandidates are sum files probed beside plain (unsigned) URLs.
var referenceCandidates = []string{"SHA256SUMS", "SHA512SUMS", "SHA1SUMS", "MD5SUMS"}

// newHTTPClient is the client of one source: every connect, handshake,
// answer and read on it is bounded by timeout (--timeout).
func newHTTPClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = source.DefaultTimeout
	}
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           source.IdleDial(dialer.DialContext, timeout),
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		// Bodies are stored bytes; never let the transport inflate them.
		DisableCompression: true,
	}
	return &http.Client{Transport: tr}
}

// openHTTP stats every URL. A single URL to the first volume of a Bitrix
// set expands to the whole set from its LN field; with ProbeParts a single
// URL expands by trying NAME.1, NAME.2, … until 404.
func Open(ctx context.Context, urls []string, opts source.OpenOptions) (*source.Opened, error) {
	s := &httpSource{client: newHTTPClient(opts.Timeout)}
	for _, raw := range urls {
		o, err := s.stat(ctx, raw)
		if err != nil {
			return nil, err
		}
		s.objs = append(s.objs, o)
	}
	if len(urls) == 1 && !integrity.IsReferenceFile(s.objs[0].Name) {
		more, err := s.expand(ctx, s.objs[0], opts.ProbeParts)
		if err != nil {
			return nil, err
		}
		s.objs = append(s.objs, more...)
	}
	s.probeReferences(ctx)
	s.label = redact.URL(urls[0])
	if len(urls) > 1 {
		s.label += fmt.Sprintf(" (+%d URLs)", len(urls)-1)
	}
	return &source.Opened{Source: s}, nil
}

// expand derives the other volume URLs of a set from its first volume.
func (s *httpSource) expand(ctx context.Context, first source.Object, probe bool) ([]source.Object, error) {
	if strings.Contains(first.URL, "?") {
		return nil, nil // presigned: each part's URL must be given
	}
	last := -1
	rc, err := s.ReadRange(ctx, first, 0, min(first.Size, 32))
	if errors.Is(err, source.ErrRangeIgnored) {
		// The whole object comes: its first bytes are all we read.
		rc, err = s.ReadRange(ctx, first, 0, first.Size)
	}
	if err == nil {
		head, rerr := io.ReadAll(io.LimitReader(rc, 32))
		rc.Close()
		if rerr == nil {
			if h, ok := integrity.ParseBitrixVolumeHeader(head); ok && h.LastVolume > 0 {
				last = h.LastVolume
			}
		}
	}
	var out []source.Object
	for i := 1; ; i++ {
		if last >= 0 && i > last {
			break
		}
		if last < 0 && (!probe || i > 100000) {
			break
		}
		o, err := s.stat(ctx, first.URL+"."+strconv.Itoa(i))
		if errors.Is(err, source.ErrNotFound) && last < 0 {
			break // probing ends at the first 404
		}
		if errors.Is(err, source.ErrNotFound) {
			// The set names this volume: it is missing, not absent.
			s.expected = append(s.expected, first.Name+"."+strconv.Itoa(i))
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// probeReferences looks for sum files beside plain URLs. Failures are not
// errors: references are optional.
func (s *httpSource) probeReferences(ctx context.Context) {
	first := s.objs[0].URL
	if strings.Contains(first, "?") {
		return
	}
	u, err := url.Parse(first)
	if err != nil {
		return
	}
	have := map[string]bool{}
	for _, o := range s.objs {
		have[o.Name] = true
	}
	dir := path.Dir(u.Path)
	// A manifest named for the first part (haul manifest -o NAME.haul.json).
	candidates := append([]string{s.objs[0].Name + ".haul.json"}, referenceCandidates...)
	for _, name := range candidates {
		if have[name] {
			continue
		}
		ref := *u
		ref.Path = path.Join(dir, name)
		ref.RawPath = ""
		if o, err := s.stat(ctx, ref.String()); err == nil {
			s.objs = append(s.objs, o)
		}
	}
}

func (s *httpSource) String() string { return s.label }
func (s *httpSource) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

func (s *httpSource) List(ctx context.Context) ([]source.Object, error) {
	return append([]source.Object(nil), s.objs...), nil
}

// stat learns an object's size and version with HEAD, falling back to a
// one-byte GET for servers (presigned URLs) that refuse HEAD.
func (s *httpSource) stat(ctx context.Context, raw string) (source.Object, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return source.Object{}, fmt.Errorf("source %q: not a URL: %w", redact.URL(raw), source.ErrBadSource)
	}
	name := path.Base(u.Path)
	if name == "/" || name == "." || name == "" {
		return source.Object{}, fmt.Errorf("source %s: the URL names no file: %w", redact.URL(raw), source.ErrBadSource)
	}
	o := source.Object{Name: name, URL: raw}
	resp, err := s.do(ctx, http.MethodHead, raw, nil)
	if err == nil && (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented) {
		resp.Body.Close()
		resp, err = s.do(ctx, http.MethodGet, raw, http.Header{"Range": {"bytes=0-0"}})
	}
	if err != nil {
		return o, fmt.Errorf("stat %s: %w", redact.URL(raw), err)
	}
	defer resp.Body.Close()
	if err := statusError(resp, raw); err != nil {
		return o, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		o.Size = resp.ContentLength
	case http.StatusPartialContent:
		_, _, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return o, fmt.Errorf("stat %s: %w", redact.URL(raw), err)
		}
		o.Size = total
	}
	if o.Size < 0 {
		return o, fmt.Errorf("stat %s: the server does not tell the size: %w", redact.URL(raw), source.ErrBadSource)
	}
	o.ETag = strongETag(resp.Header.Get("ETag"))
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		o.ModTime = lm
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && ce != "identity" {
		o.Encoding = ce
	}
	h := resp.Header
	if resp.StatusCode == http.StatusPartialContent {
		h = h.Clone()
		h.Del("Content-MD5") // it is the MD5 of the one-byte body
	}
	o.Refs = integrity.HTTPReferences(h)
	return o, nil
}

func (s *httpSource) do(ctx context.Context, method, raw string, h http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, raw, nil)
	if err != nil {
		return nil, source.Permanent(fmt.Errorf("bad URL %s: %w", redact.URL(raw), source.ErrBadSource))
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "haul")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, redactURLError(err)
	}
	return resp, nil
}

// redactURLError strips the URL (with its query string) that net/http
// puts into errors.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, redact.URL(ue.URL), ue.Err)
	}
	return err
}

func statusError(resp *http.Response, raw string) error {
	switch c := resp.StatusCode; {
	case c == http.StatusOK || c == http.StatusPartialContent:
		return nil
	case c == http.StatusNotFound || c == http.StatusGone:
		return fmt.Errorf("%s: HTTP %d, no such file at the server (check the URL; a presigned link may have expired): %w", redact.URL(raw), c, source.ErrNotFound)
	case c == http.StatusUnauthorized || c == http.StatusForbidden:
		return fmt.Errorf("%s: HTTP %d (the link may have expired or need credentials): %w", redact.URL(raw), c, source.ErrAuth)
	case c == http.StatusPreconditionFailed || c == http.StatusRequestedRangeNotSatisfiable:
		return fmt.Errorf("%s: HTTP %d: %w", redact.URL(raw), c, source.ErrChanged)
	case c == http.StatusTooManyRequests || c >= 500:
		return fmt.Errorf("%s: HTTP %d: %w", redact.URL(raw), c, source.ErrUnavailable)
	default:
		return source.Permanent(fmt.Errorf("%s: unexpected HTTP %d", redact.URL(raw), c))
	}
}

func (s *httpSource) ReadRange(ctx context.Context, obj source.Object, off, n int64) (io.ReadCloser, error) {
	h := http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", off, off+n-1)}}
	switch {
	case obj.ETag != "":
		h.Set("If-Match", `"`+obj.ETag+`"`)
	case !obj.ModTime.IsZero():
		h.Set("If-Unmodified-Since", obj.ModTime.UTC().Format(http.TimeFormat))
	}
	resp, err := s.do(ctx, http.MethodGet, obj.URL, h)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", obj.Name, err)
	}
	if err := statusError(resp, obj.URL); err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("get %s: %w", obj.Name, err)
	}
	if et := strongETag(resp.Header.Get("ETag")); obj.ETag != "" && et != "" && et != obj.ETag {
		resp.Body.Close()
		return nil, fmt.Errorf("get %s: ETag %q, first seen %q: %w", obj.Name, et, obj.ETag, source.ErrChanged)
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && ce != "identity" && ce != obj.Encoding {
		resp.Body.Close()
		return nil, &source.ProtocolError{Err: fmt.Errorf("get %s: the server sent Content-Encoding %q despite Accept-Encoding: identity", obj.Name, ce)}
	}
	body := resp.Body
	switch resp.StatusCode {
	case http.StatusPartialContent:
		a, b, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || a != off || b != off+n-1 || (total >= 0 && total != obj.Size) {
			resp.Body.Close()
			return nil, &source.ProtocolError{Err: fmt.Errorf("get %s: asked bytes %d-%d/%d, server answered Content-Range %q", obj.Name, off, off+n-1, obj.Size, resp.Header.Get("Content-Range"))}
		}
		if resp.ContentLength >= 0 && resp.ContentLength != n {
			resp.Body.Close()
			return nil, &source.ProtocolError{Err: fmt.Errorf("get %s: Content-Length %d for a %d-byte range", obj.Name, resp.ContentLength, n)}
		}
	case http.StatusOK:
		// The server ignored Range and sends the whole object.
		if resp.ContentLength >= 0 && resp.ContentLength != obj.Size {
			resp.Body.Close()
			return nil, fmt.Errorf("get %s: whole-object answer of %d bytes, expected %d: %w", obj.Name, resp.ContentLength, obj.Size, source.ErrChanged)
		}
		if off > 0 || n < obj.Size {
			// Skipping to off costs off bytes on every piece: the engine
			// fetches such an object in one stream instead.
			resp.Body.Close()
			return nil, fmt.Errorf("get %s: %w", obj.Name, source.ErrRangeIgnored)
		}
	}
	return source.ExactReader(body, n), nil
}

// parseContentRange parses "bytes a-b/total" (total may be "*", giving
// -1). Numbers are plain decimal digits, a ≤ b, and b < total when the
// total is known: anything else is not a range a server could send.
func parseContentRange(v string) (a, b, total int64, err error) {
	bad := fmt.Errorf("bad Content-Range %q", v)
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, 0, bad
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, 0, bad
	}
	as, bs, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, 0, bad
	}
	if a, ok = decimal(as); !ok {
		return 0, 0, 0, bad
	}
	if b, ok = decimal(bs); !ok || b < a {
		return 0, 0, 0, bad
	}
	total = -1
	if tot != "*" {
		if total, ok = decimal(tot); !ok || b >= total {
			return 0, 0, 0, bad
		}
	}
	return a, b, total, nil
}

// decimal parses a non-negative decimal number of digits only (no sign,
// no space), as HTTP writes byte positions.
func decimal(s string) (int64, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// strongETag returns a strong ETag without quotes; weak ones ("W/…")
// cannot pin byte ranges and give "".
func strongETag(v string) string {
	v = strings.TrimSpace(v)
	if v == "" || strings.HasPrefix(v, "W/") {
		return ""
	}
	return strings.Trim(v, `"`)
}
