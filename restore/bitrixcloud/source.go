package bitrixcloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/internal/redact"
	"github.com/haul-dev/haul/internal/retry"
	"github.com/haul-dev/haul/internal/testhook"
)

// DefaultHosts are the Bitrix CDN hosts restore.php downloads cloud files
// from, in its order.
var DefaultHosts = []string{
	"https://cdn.bitrix24.ru",
	"https://cdn.bitrix24.com",
	"https://cdn.bitrix24.de",
	"https://cdn-ru.bitrix24.ru",
	"https://cdn-ru.bitrix24.de",
}

// hosts are the CDN hosts of one run, shared by its batches: one HTTP
// client, what each host's answers measured (the fastest is asked first,
// as restore.php picks the fastest host), and the files every host said
// it does not have.
type hosts struct {
	client *http.Client
	bases  []*url.URL

	mu    sync.Mutex
	stats []hostStat
	asked int
	gone  map[string]string // part name → why
}

// hostStat is what the answers of one host measured.
type hostStat struct {
	// rate is the bytes per second of its answers, from the request to
	// the last byte (so a slow answer counts as well as a slow stream),
	// averaged over the recent answers; 0 for a host that failed.
	rate     float64
	measured bool
	// probing: its first answer is under way; until it is in, the host
	// is not asked first again.
	probing bool
}

// A host is measured again every refreshEvery reads: the read goes to
// the next host in turn other than the fastest, so a host that was slow
// or failed once is not passed over for good.
const refreshEvery = 32

// ParseHosts checks CDN base URLs (http:// or https://, a host, an
// optional path prefix); nil or empty gives DefaultHosts.
func ParseHosts(list []string) ([]*url.URL, error) {
	if len(list) == 0 {
		list = DefaultHosts
	}
	var out []*url.URL
	for _, s := range list {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("CDN host %q: want http(s)://HOST[:PORT][/PREFIX]", redact.URL(s))
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		u.RawPath = ""
		out = append(out, u)
	}
	return out, nil
}

func newHosts(bases []*url.URL, timeout time.Duration) *hosts {
	if timeout <= 0 {
		timeout = source.DefaultTimeout
	}
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           source.IdleDial(source.DialFunc(testhook.DialContext(dialer.DialContext)), timeout),
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true, // the listed size is of the stored bytes
	}
	return &hosts{client: &http.Client{Transport: tr}, bases: bases, stats: make([]hostStat, len(bases)), gone: map[string]string{}}
}

// order is the hosts to ask for one read, in turn: a host not measured
// yet first (one read at a time), then the fastest; every refreshEvery
// reads another host goes first to be measured again. Ties keep the
// order given.
func (h *hosts) order() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.asked++
	idx := make([]int, len(h.bases))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ra, rb := h.stats[idx[a]].rank(), h.stats[idx[b]].rank()
		if ra != rb {
			return ra < rb
		}
		return h.stats[idx[a]].rate > h.stats[idx[b]].rate
	})
	switch s := &h.stats[idx[0]]; {
	case !s.measured:
		s.probing = true
	case len(idx) > 1 && h.asked%refreshEvery == 0:
		k := 1 + (h.asked/refreshEvery)%(len(idx)-1)
		i := idx[k]
		copy(idx[1:k+1], idx[:k])
		idx[0] = i
	}
	return idx
}

// rank orders the hosts: one not measured yet, then the measured by
// their rate, then one being measured, then one that failed.
func (s hostStat) rank() int {
	switch {
	case !s.measured && !s.probing:
		return 0
	case s.measured && s.rate > 0:
		return 1
	case !s.measured:
		return 2
	}
	return 3
}

// measured records an answer of host i: n bytes in d.
func (h *hosts) measured(i int, n int64, d time.Duration) {
	r := float64(n) / max(d.Seconds(), 1e-6)
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &h.stats[i]
	if s.measured {
		r = 0.7*s.rate + 0.3*r
	}
	s.rate, s.measured, s.probing = r, true, false
}

// failed records that host i failed an answer: it goes last until it is
// measured again.
func (h *hosts) failed(i int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stats[i] = hostStat{measured: true}
}

// unprobe ends a first measurement that measured nothing (the read was
// cancelled, or the host has no such file).
func (h *hosts) unprobe(i int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stats[i].probing = false
}

func (h *hosts) close() { h.client.CloseIdleConnections() }

// goneReason says whether every host said it has no part name, and why.
func (h *hosts) goneReason(name string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	why, ok := h.gone[name]
	return why, ok
}

// batch is the source.Source of one batch of listed files: objects named
// for their line in the list (stable across runs, so the engine's state
// of an interrupted batch is found again), sized as listed.
type batch struct {
	h     *hosts
	objs  []source.Object
	paths map[string]string // object name → path at the hosts
}

var _ source.Source = (*batch)(nil)

// partName is the engine's name of the file on line n of the list: no
// extension, so the engine runs no format check on it; the listed size
// is its proof.
func partName(line int) string { return fmt.Sprintf("line%08d", line) }

// listedTime is every object's modification time: the list gives the
// size alone as the version, so a resumed piece is kept only for the
// same listed size.
var listedTime = time.Unix(0, 0).UTC()

func newBatch(h *hosts, es []Entry) *batch {
	b := &batch{h: h, paths: make(map[string]string, len(es))}
	for _, e := range es {
		name := partName(e.Line)
		b.objs = append(b.objs, source.Object{Name: name, Size: e.Size, ModTime: listedTime})
		b.paths[name] = e.Path
	}
	return b
}

func (b *batch) List(context.Context) ([]source.Object, error) {
	return append([]source.Object(nil), b.objs...), nil
}

func (b *batch) String() string {
	if len(b.h.bases) == 1 {
		return redact.URL(b.h.bases[0].String())
	}
	return fmt.Sprintf("%s (+%d CDN hosts)", redact.URL(b.h.bases[0].String()), len(b.h.bases)-1)
}

// Close keeps the connections: the next batch uses them.
func (b *batch) Close() error { return nil }

// notHere is a host's answer that it has no such file (HTTP 4xx other
// than 408, 416 and 429, as restore.php takes any answer but 2xx).
type notHere struct{ msg string }

func (e *notHere) Error() string { return e.msg }

// ReadRange reads bytes [off, off+n) of obj from the fastest host
// (hosts.order), passing to the next host when one has no such file or
// fails; a file no host has is recorded as gone and ends the batch (a
// permanent error), so the engine does not spend its retries on it.
func (b *batch) ReadRange(ctx context.Context, obj source.Object, off, n int64) (io.ReadCloser, error) {
	p := b.paths[obj.Name]
	var last error
	missing, unreachable := 0, 0
	var whys []string
	for _, i := range b.h.order() {
		t := time.Now()
		rc, err := b.get(ctx, b.h.bases[i], p, obj, off, n)
		if err == nil {
			return &timedBody{ReadCloser: rc, ctx: ctx, h: b.h, i: i, start: t, n: n}, nil
		}
		if ctx.Err() != nil || errors.Is(err, source.ErrRangeIgnored) {
			b.h.unprobe(i)
			return nil, err
		}
		var nh *notHere
		if errors.As(err, &nh) {
			b.h.unprobe(i) // a file a host does not have says nothing of its speed
			missing++
			whys = append(whys, nh.msg)
			continue
		}
		b.h.failed(i)
		if retry.ReachOf(err) != retry.Reached {
			// A host that cannot be reached at all is passed over, as
			// restore.php drops a mirror that fails.
			unreachable++
		}
		last = err // a host failing, or a file of another size: the engine retries
	}
	if missing > 0 && missing+unreachable == len(b.h.bases) {
		why := strings.Join(whys, "; ")
		b.h.mu.Lock()
		b.h.gone[obj.Name] = why
		b.h.mu.Unlock()
		return nil, source.Permanent(fmt.Errorf("%s: %s: %w", p, why, source.ErrNotFound))
	}
	return nil, last
}

// timedBody measures one answer of host i: the time from the request to
// its last byte. An answer that breaks off marks the host failed.
type timedBody struct {
	io.ReadCloser
	ctx      context.Context
	h        *hosts
	i        int
	start    time.Time
	n, got   int64
	recorded bool
}

func (t *timedBody) Read(p []byte) (int, error) {
	k, err := t.ReadCloser.Read(p)
	t.got += int64(k)
	switch {
	case t.recorded:
	case t.got >= t.n:
		t.recorded = true
		t.h.measured(t.i, t.got, time.Since(t.start))
	case err != nil && err != io.EOF && t.ctx.Err() == nil:
		t.recorded = true
		t.h.failed(t.i)
	}
	return k, err
}

func (t *timedBody) Close() error {
	if !t.recorded {
		t.recorded = true
		t.h.unprobe(t.i) // closed early: the engine stopped, not the host
	}
	return t.ReadCloser.Close()
}

// get asks one host for the range; the answer must be of the listed
// size.
func (b *batch) get(ctx context.Context, base *url.URL, p string, obj source.Object, off, n int64) (io.ReadCloser, error) {
	u := *base
	u.Path = base.Path + "/" + p
	raw := u.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, &notHere{fmt.Sprintf("%s: not a URL", redact.URL(raw))}
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "haul")
	resp, err := b.h.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s %s: %w", ue.Op, redact.URL(raw), ue.Err)
		}
		return nil, err
	}
	body, err := checkAnswer(resp, redact.URL(raw), obj, off, n)
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	return body, nil
}

// checkAnswer sorts a host's answer: the bytes asked for, a file of
// another size than listed (retry.Data: fetched again, then a miss),
// no such file (notHere), or the host failing for now.
func checkAnswer(resp *http.Response, where string, obj source.Object, off, n int64) (io.ReadCloser, error) {
	c := resp.StatusCode
	switch {
	case c == http.StatusPartialContent:
		var a, z, total int64
		_, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%d", &a, &z, &total)
		switch {
		case err == nil && total != obj.Size: // before the range: a host clamps it to its file
			return nil, sizeError(where, total, obj.Size)
		case err != nil || a != off || z != off+n-1:
			return nil, &source.ProtocolError{Err: fmt.Errorf("%s: asked bytes %d-%d, the host answered Content-Range %q", where, off, off+n-1, resp.Header.Get("Content-Range"))}
		}
	case c == http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != obj.Size {
			return nil, sizeError(where, resp.ContentLength, obj.Size)
		}
		if off > 0 || n < obj.Size {
			return nil, source.ErrRangeIgnored // the engine streams it whole
		}
	case c == http.StatusRequestedRangeNotSatisfiable:
		return nil, &source.ProtocolError{Err: fmt.Errorf("%s: HTTP 416 for bytes %d-%d: the file there is smaller than the listed %d bytes", where, off, off+n-1, obj.Size)}
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return nil, fmt.Errorf("%s: HTTP %d: %w", where, c, source.ErrUnavailable)
	default:
		return nil, &notHere{fmt.Sprintf("%s: HTTP %d", where, c)}
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && ce != "identity" {
		return nil, &source.ProtocolError{Err: fmt.Errorf("%s: the host sent Content-Encoding %q despite Accept-Encoding: identity", where, ce)}
	}
	return source.ExactReader(resp.Body, n), nil
}

func sizeError(where string, got, want int64) error {
	return retry.Mark(retry.Data, fmt.Errorf("%s: the host has %d bytes, the list says %d", where, got, want))
}
