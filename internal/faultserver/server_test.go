package faultserver

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fixture is a directory with two files and a Server on it.
type fixture struct {
	srv    *Server
	big    []byte
	small  []byte
	client *http.Client
}

func newFixture(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{big: randomBytes(7, 3*mib+123), small: randomBytes(8, 1000)}
	if err := os.MkdirAll(filepath.Join(dir, "sub dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"big.bin": f.big, "sub dir/small.bin": f.small} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f.srv = New(dir, opts...)
	t.Cleanup(f.srv.Close)
	// No transparent gzip decoding: the tests look at what was sent.
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	f.client = &http.Client{Transport: tr, Timeout: time.Minute}
	return f
}

type answer struct {
	status int
	header http.Header
	body   []byte
	err    error // error reading the body
}

func (f *fixture) do(t *testing.T, method, name string, hdr ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL(name), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: body, err: err}
}

func (f *fixture) get(t *testing.T, name string, hdr ...string) answer {
	t.Helper()
	return f.do(t, http.MethodGet, name, hdr...)
}

func wantAnswer(t *testing.T, a answer, status int, body []byte) {
	t.Helper()
	if a.err != nil {
		t.Fatalf("read: %v", a.err)
	}
	if a.status != status {
		t.Fatalf("status %d, want %d", a.status, status)
	}
	if body != nil && !bytes.Equal(a.body, body) {
		t.Fatalf("body of %d bytes differs from the expected %d bytes", len(a.body), len(body))
	}
}

func TestServerServesFiles(t *testing.T) {
	f := newFixture(t)
	big := f.big
	size := int64(len(big))
	var wantBytes int64
	check := func(a answer, status int, body []byte) {
		t.Helper()
		wantAnswer(t, a, status, body)
		if status == 200 || status == 206 {
			wantBytes += int64(len(a.body))
		}
	}

	full := f.get(t, "big.bin")
	check(full, 200, big)
	etag := full.header.Get("ETag")
	lastMod := full.header.Get("Last-Modified")
	if len(etag) < 3 || etag[0] != '"' || full.header.Get("Accept-Ranges") != "bytes" || lastMod == "" {
		t.Fatalf("headers: %v", full.header)
	}
	if full.header.Get("Content-Length") != strconv.FormatInt(size, 10) {
		t.Fatalf("Content-Length %q", full.header.Get("Content-Length"))
	}

	for _, tc := range []struct {
		rng        string
		start, end int64
	}{
		{"bytes=0-0", 0, 0},
		{"bytes=100-1099", 100, 1099},
		{"bytes=1048576-", 1 << 20, size - 1},
		{"bytes=-500", size - 500, size - 1},
		{"bytes=5-99999999", 5, size - 1},
	} {
		a := f.get(t, "big.bin", "Range", tc.rng)
		check(a, 206, big[tc.start:tc.end+1])
		want := fmt.Sprintf("bytes %d-%d/%d", tc.start, tc.end, size)
		if got := a.header.Get("Content-Range"); got != want {
			t.Errorf("%s: Content-Range %q, want %q", tc.rng, got, want)
		}
	}
	check(f.get(t, "sub dir/small.bin"), 200, f.small)
	check(f.get(t, "sub dir/small.bin", "Range", "bytes=10-19"), 206, f.small[10:20])

	// Conditionals.
	check(f.get(t, "big.bin", "Range", "bytes=0-9", "If-Match", etag), 206, big[:10])
	check(f.get(t, "big.bin", "Range", "bytes=0-9", "If-Match", `"other"`), 412, nil)
	check(f.get(t, "big.bin", "If-None-Match", etag), 304, nil)
	check(f.get(t, "big.bin", "Range", "bytes=0-9", "If-Range", etag), 206, big[:10])
	check(f.get(t, "big.bin", "Range", "bytes=0-9", "If-Range", lastMod), 206, big[:10])
	check(f.get(t, "big.bin", "Range", "bytes=0-9", "If-Range", `"other"`), 200, big)
	check(f.get(t, "big.bin", "Range", "bytes=0-9", "If-Range", "Mon, 02 Jan 2006 15:04:05 GMT"), 200, big)

	// Errors.
	check(f.get(t, "missing.bin"), 404, nil)
	check(f.get(t, "sub dir"), 404, nil)
	check(f.get(t, "../etc/passwd"), 404, nil)
	a := f.get(t, "big.bin", "Range", fmt.Sprintf("bytes=%d-", size))
	check(a, 416, nil)
	if got := a.header.Get("Content-Range"); got != fmt.Sprintf("bytes */%d", size) {
		t.Errorf("416 Content-Range %q", got)
	}
	head := f.do(t, http.MethodHead, "big.bin")
	check(head, 200, []byte{})
	if head.header.Get("Content-Length") != strconv.FormatInt(size, 10) || head.header.Get("ETag") != etag {
		t.Errorf("HEAD headers: %v", head.header)
	}

	// The counters: file body bytes only, error pages are not counted.
	if got := f.srv.BytesSent(); got != wantBytes {
		t.Fatalf("BytesSent() = %d, want %d", got, wantBytes)
	}
	wantSmall := int64(len(f.small) + 10)
	if got := f.srv.FileBytesSent("sub dir/small.bin"); got != wantSmall {
		t.Errorf("FileBytesSent(small) = %d, want %d", got, wantSmall)
	}
	if got := f.srv.Requests(); got != 20 {
		t.Errorf("Requests() = %d, want 20", got)
	}
}

func TestServerCountsExactly(t *testing.T) {
	f := newFixture(t)
	var want int64
	for i := range 10 {
		a := f.get(t, "big.bin", "Range", fmt.Sprintf("bytes=%d-%d", i*1000, i*1000+99999))
		wantAnswer(t, a, 206, f.big[i*1000:i*1000+100000])
		want += 100000
	}
	if got := f.srv.BytesSent(); got != want {
		t.Fatalf("BytesSent() = %d, want %d", got, want)
	}
	if got := f.srv.FileBytesSent("big.bin"); got != want {
		t.Fatalf("FileBytesSent() = %d, want %d", got, want)
	}
	f.srv.ZeroCounters()
	if f.srv.BytesSent() != 0 || f.srv.Requests() != 0 || f.srv.FileBytesSent("big.bin") != 0 {
		t.Fatal("ZeroCounters left counts")
	}
}

func diffOffsets(a, b []byte) []int {
	var d []int
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			d = append(d, i)
		}
	}
	return d
}

func TestFaultFlipBits(t *testing.T) {
	f := newFixture(t, FlipBits("big.bin", 1, 5, 2*mib+3))
	a := f.get(t, "big.bin")
	wantAnswer(t, a, 200, nil)
	if d := diffOffsets(a.body, f.big); len(d) != 2 || d[0] != 5 || d[1] != 2*mib+3 || a.body[5]^f.big[5] != 1 {
		t.Fatalf("damaged offsets %v, want [5 %d] with bit 0 flipped", d, 2*mib+3)
	}
	// Served once damaged: the next fetch is clean.
	wantAnswer(t, f.get(t, "big.bin"), 200, f.big)
	flips := f.srv.Flips()
	if len(flips) != 2 || flips[0] != (Flip{Name: "big.bin", Offset: 5, Mask: 1}) {
		t.Fatalf("Flips() = %v", flips)
	}
	if got := f.srv.Faults().Flips; got != 2 {
		t.Fatalf("Faults().Flips = %d", got)
	}

	// A range that does not cover a spot leaves it for later.
	f.srv.Set(FlipBits("big.bin", 2, 1000))
	wantAnswer(t, f.get(t, "big.bin", "Range", "bytes=0-999"), 206, f.big[:1000])
	for range 2 {
		a := f.get(t, "big.bin", "Range", "bytes=900-1100")
		if d := diffOffsets(a.body, f.big[900:1101]); len(d) != 1 || d[0] != 100 {
			t.Fatalf("damaged offsets %v, want [100]", d)
		}
	}
	wantAnswer(t, f.get(t, "big.bin", "Range", "bytes=900-1100"), 206, f.big[900:1101])
}

func TestFaultFlipRandom(t *testing.T) {
	f := newFixture(t, Seed(42), FlipRandom(When{Max: 2}))
	for i := range 2 {
		a := f.get(t, "big.bin")
		d := diffOffsets(a.body, f.big)
		if len(d) != 1 {
			t.Fatalf("fetch %d: %d damaged bytes, want 1", i, len(d))
		}
		fl := f.srv.Flips()[i]
		if int64(d[0]) != fl.Offset || a.body[d[0]]^f.big[d[0]] != fl.Mask {
			t.Fatalf("fetch %d: damage at %d, recorded %+v", i, d[0], fl)
		}
	}
	wantAnswer(t, f.get(t, "big.bin"), 200, f.big)

	// The same seed damages the same bytes.
	g := newFixture(t, Seed(42), FlipRandom(When{Max: 2}))
	g.get(t, "big.bin")
	g.get(t, "big.bin")
	if a, b := f.srv.Flips(), g.srv.Flips(); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("same seed, different flips: %v vs %v", a, b)
	}
}

func TestFaultIgnoreRange(t *testing.T) {
	f := newFixture(t, IgnoreRange(When{Every: 2}))
	for i := 1; i <= 4; i++ {
		a := f.get(t, "big.bin", "Range", "bytes=10-19")
		if i%2 == 0 {
			wantAnswer(t, a, 200, f.big)
			if a.header.Get("Content-Range") != "" {
				t.Fatalf("200 with Content-Range %q", a.header.Get("Content-Range"))
			}
		} else {
			wantAnswer(t, a, 206, f.big[10:20])
		}
	}
	if got := f.srv.Faults().IgnoredRange; got != 2 {
		t.Fatalf("IgnoredRange = %d, want 2", got)
	}
	// A plain GET is not a request this fault counts.
	wantAnswer(t, f.get(t, "big.bin"), 200, f.big)
	wantAnswer(t, f.get(t, "big.bin", "Range", "bytes=10-19"), 206, f.big[10:20])
}

func TestFaultShiftContentRange(t *testing.T) {
	f := newFixture(t, ShiftContentRange(1, When{}))
	a := f.get(t, "big.bin", "Range", "bytes=100-199")
	wantAnswer(t, a, 206, f.big[100:200])
	want := fmt.Sprintf("bytes 101-200/%d", len(f.big))
	if got := a.header.Get("Content-Range"); got != want {
		t.Fatalf("Content-Range %q, want %q", got, want)
	}
}

func TestFaultShiftBody(t *testing.T) {
	f := newFixture(t, ShiftBody(7, When{}))
	a := f.get(t, "big.bin", "Range", "bytes=100-199")
	wantAnswer(t, a, 206, f.big[107:207])
	if got := a.header.Get("Content-Range"); got != fmt.Sprintf("bytes 100-199/%d", len(f.big)) {
		t.Fatalf("Content-Range %q", got)
	}
	// At the end of the file the shift goes backwards.
	n := int64(len(f.big))
	a = f.get(t, "big.bin", "Range", fmt.Sprintf("bytes=%d-", n-10))
	wantAnswer(t, a, 206, f.big[n-17:n-7])
	// The whole file cannot be shifted: it is sent as is.
	wantAnswer(t, f.get(t, "big.bin"), 200, f.big)
	if got := f.srv.Faults().WrongBody; got != 2 {
		t.Fatalf("WrongBody = %d, want 2", got)
	}
}

func TestFaultShortBody(t *testing.T) {
	f := newFixture(t, ShortBody(1000, When{Max: 1}))
	a := f.get(t, "big.bin", "Range", "bytes=0-99999")
	if !errors.Is(a.err, io.ErrUnexpectedEOF) {
		t.Fatalf("read error %v, want unexpected EOF", a.err)
	}
	if a.status != 206 || a.header.Get("Content-Length") != "100000" || !bytes.Equal(a.body, f.big[:99000]) {
		t.Fatalf("status %d, Content-Length %s, %d bytes", a.status, a.header.Get("Content-Length"), len(a.body))
	}
	if got := f.srv.BytesSent(); got != 99000 {
		t.Fatalf("BytesSent %d, want 99000", got)
	}
	wantAnswer(t, f.get(t, "big.bin", "Range", "bytes=0-99999"), 206, f.big[:100000])
}

func TestFaultGzipBody(t *testing.T) {
	f := newFixture(t, GzipBody(When{}))
	a := f.get(t, "big.bin", "Range", "bytes=1000-2999999", "Accept-Encoding", "identity")
	wantAnswer(t, a, 206, nil)
	if a.header.Get("Content-Encoding") != "gzip" || a.header.Get("Content-Length") != "" {
		t.Fatalf("headers %v", a.header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(a.body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain, f.big[1000:3000000]) {
		t.Fatal("gunzipped body differs")
	}
	if got := f.srv.BytesSent(); got != int64(len(a.body)) {
		t.Fatalf("BytesSent %d, want the %d compressed bytes", got, len(a.body))
	}
}

func TestFaultResetAfter(t *testing.T) {
	f := newFixture(t, ResetAfter(50000, When{Every: 2}))
	// A fresh connection per request: Go's client silently retries a GET
	// whose reused connection fails before the first response byte, which
	// would hide a reset.
	f.client.Transport.(*http.Transport).DisableKeepAlives = true
	wantAnswer(t, f.get(t, "big.bin"), 200, f.big)
	a := f.get(t, "big.bin")
	if a.err == nil || len(a.body) >= len(f.big) {
		t.Fatalf("reset answer read %d bytes, err %v", len(a.body), a.err)
	}
	if !bytes.Equal(a.body, f.big[:len(a.body)]) {
		t.Fatal("bytes before the reset differ")
	}
	if got := f.srv.BytesSent(); got != int64(len(f.big))+50000 {
		t.Fatalf("BytesSent %d, want %d", got, len(f.big)+50000)
	}
	if got := f.srv.Faults().Resets; got != 1 {
		t.Fatalf("Resets = %d", got)
	}
	// Bodies no longer than the offset are never reset.
	for range 3 {
		wantAnswer(t, f.get(t, "big.bin", "Range", "bytes=0-49999"), 206, f.big[:50000])
	}
	// A reset right after the headers.
	f.srv.Set(ResetAfter(0, When{}))
	if a := f.get(t, "sub dir/small.bin"); a.err == nil || len(a.body) != 0 {
		t.Fatalf("reset at 0: %d bytes, err %v", len(a.body), a.err)
	}
}

func TestFaultStallAfter(t *testing.T) {
	f := newFixture(t, StallAfter(1000, 20*time.Millisecond, When{}))
	wantAnswer(t, f.get(t, "big.bin"), 200, f.big)
	if got := f.srv.Faults().Stalls; got != 1 {
		t.Fatalf("Stalls = %d", got)
	}
}

// A stall that outlives the test ends when the server closes; Close does
// not wait for it.
func TestFaultStallEndsOnClose(t *testing.T) {
	f := newFixture(t, StallAfter(1000, time.Hour, When{}))
	resp, err := f.client.Get(f.srv.URL("big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := make([]byte, 1000)
	if _, err := io.ReadFull(resp.Body, head); err != nil || !bytes.Equal(head, f.big[:1000]) {
		t.Fatalf("first bytes: %v", err)
	}
	f.srv.Close()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("body complete after Close during a stall")
	}
}

func TestFaultFailWith(t *testing.T) {
	f := newFixture(t, FailWith(503, When{Max: 2}))
	if a := f.do(t, http.MethodHead, "big.bin"); a.status != 503 {
		t.Fatalf("status %d, want 503", a.status)
	}
	wantAnswer(t, f.get(t, "big.bin"), 503, nil)
	wantAnswer(t, f.get(t, "big.bin"), 200, f.big)
	if got := f.srv.Faults().Failed; got != 2 {
		t.Fatalf("Failed = %d", got)
	}
	if got := f.srv.FileBytesSent("big.bin"); got != int64(len(f.big)) {
		t.Fatalf("FileBytesSent %d: failure pages counted as file bytes", got)
	}
}

func TestFaultWhenName(t *testing.T) {
	f := newFixture(t, FailWith(500, When{Name: "sub dir/small.bin"}))
	wantAnswer(t, f.get(t, "big.bin"), 200, f.big)
	wantAnswer(t, f.get(t, "sub dir/small.bin"), 500, nil)
	f.srv.ClearFaults()
	wantAnswer(t, f.get(t, "sub dir/small.bin"), 200, f.small)
}

func TestFaultRateCapsKeepBytes(t *testing.T) {
	f := newFixture(t, ConnRate(4<<20), TotalRate(6<<20))
	var wg sync.WaitGroup
	answers := make([]answer, 3)
	for i := range answers {
		wg.Go(func() {
			answers[i] = f.get(t, "big.bin", "Range", fmt.Sprintf("bytes=%d-%d", i*mib, i*mib+mib/2-1))
		})
	}
	wg.Wait()
	for i, a := range answers {
		wantAnswer(t, a, 206, f.big[i*mib:i*mib+mib/2])
	}
	// Caps can change while serving and be switched off.
	f.srv.SetConnRate(1 << 20)
	f.srv.SetTotalRate(0)
	wantAnswer(t, f.get(t, "sub dir/small.bin"), 200, f.small)
	if got := f.srv.BytesSent(); got != int64(3*mib/2+len(f.small)) {
		t.Fatalf("BytesSent %d", got)
	}
}

// A client that goes away mid-body ends its handler: Close, which waits
// for every handler, returns.
func TestFaultClientGoneEndsHandler(t *testing.T) {
	f := newFixture(t, ConnRate(64<<10))
	resp, err := f.client.Get(f.srv.URL("big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !f.srv.WaitIdle(time.Minute) {
		t.Fatal("handler still running after its client left")
	}
	f.srv.Close()
	if got := f.srv.BytesSent(); got >= int64(len(f.big)) {
		t.Fatalf("BytesSent %d: the whole file went out at 64 KiB/s", got)
	}
}

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		h          string
		start, end int64
		ok, unsat  bool
	}{
		{"bytes=0-9", 0, 9, true, false},
		{"bytes=5-", 5, 99, true, false},
		{"bytes=-10", 90, 99, true, false},
		{"bytes=-1000", 0, 99, true, false},
		{"bytes=90-1000", 90, 99, true, false},
		{"bytes=100-", 0, 0, false, true},
		{"bytes=-0", 0, 0, false, true},
		{"bytes=9-5", 0, 0, false, false},
		{"bytes=0-1,5-6", 0, 0, false, false},
		{"bytes=+1-2", 0, 0, false, false},
		{"items=0-1", 0, 0, false, false},
		{"bytes=x-", 0, 0, false, false},
	} {
		start, end, ok, unsat := parseRange(tc.h, 100)
		if ok != tc.ok || unsat != tc.unsat || (ok && (start != tc.start || end != tc.end)) {
			t.Errorf("parseRange(%q) = %d, %d, %v, %v", tc.h, start, end, ok, unsat)
		}
	}
}

func BenchmarkServer(b *testing.B) {
	dir := b.TempDir()
	data := randomBytes(3, 32*mib)
	if err := os.WriteFile(filepath.Join(dir, "f"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	srv := New(dir)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		resp, err := client.Get(srv.URL("f"))
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != int64(len(data)) {
			b.Fatalf("%d bytes, %v", n, err)
		}
	}
}

const mib = 1 << 20

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
