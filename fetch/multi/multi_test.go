package multi

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/source/local"
	"github.com/haul-dev/haul/integrity"
)

func TestParseMirror(t *testing.T) {
	for _, tc := range []struct {
		in    string
		url   string
		conns int
		bad   bool
	}{
		{"sftp://h/d/", "sftp://h/d/", -1, false},
		{"https://m/x/#j=3", "https://m/x/", 3, false},
		{"/mnt/nas#j=0", "/mnt/nas", 0, false},
		{"https://m/x#j=999", "", 0, true},
		{"#j=2", "", 0, true},
	} {
		m, err := ParseMirror(tc.in)
		if (err != nil) != tc.bad {
			t.Errorf("%q: err %v, want bad=%v", tc.in, err, tc.bad)
			continue
		}
		if !tc.bad && (m.URL != tc.url || m.Conns != tc.conns) {
			t.Errorf("%q: got %q j=%d, want %q j=%d", tc.in, m.URL, m.Conns, tc.url, tc.conns)
		}
	}
}

// twoCopies is a primary and one mirror, two local directories with part
// a (and the mirror's a as given), as Open leaves them after List.
func twoCopies(t *testing.T, mirrorA string) (*Source, source.Object, []string) {
	t.Helper()
	p, m := t.TempDir(), t.TempDir()
	data := strings.Repeat("x", 1000)
	for dir, body := range map[string]string{p: data, m: mirrorA} {
		if err := os.WriteFile(filepath.Join(dir, "a"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	op, err := local.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	var warned []string
	s := Open(context.Background(), op.Source, []Mirror{{URL: m, Conns: -1}}, Options{Conns: 2, Timeout: time.Second,
		Warn: func(_, msg string) { warned = append(warned, msg) }}).(*Source)
	t.Cleanup(func() { s.Close() })
	objs, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s, objs[0], warned
}

// readWhole reads obj whole and says which copy served it.
func readWhole(t *testing.T, s *Source, obj source.Object) *member {
	t.Helper()
	rc, err := s.ReadRange(context.Background(), obj, 0, obj.Size)
	if err != nil {
		t.Fatal(err)
	}
	m := rc.(*read).m
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	return m
}

func TestDisagreeingMirrorIsNotUsed(t *testing.T) {
	s, obj, warned := twoCopies(t, "short")
	if s.Copies("a") != 1 || len(warned) != 1 || !strings.Contains(warned[0], "part a") {
		t.Fatalf("copies %d, warnings %q; want 1 copy and one warning naming part a", s.Copies("a"), warned)
	}
	for range 5 {
		if m := readWhole(t, s, obj); !m.primary {
			t.Fatal("a read of part a went to the mirror that disagrees on its size")
		}
	}
}

// TestBlameMovesReads: bytes that failed proof are read from the copy
// charged least next, and the error says what each gave.
func TestBlameMovesReads(t *testing.T) {
	s, obj, _ := twoCopies(t, strings.Repeat("x", 1000))
	if s.Copies("a") != 2 {
		t.Fatalf("copies %d, want 2", s.Copies("a"))
	}
	first := readWhole(t, s, obj)
	s.Blame("a", 0, obj.Size, "sha256 mismatch", nil)
	second := readWhole(t, s, obj)
	if second == first {
		t.Fatalf("after a failed proof the part came from %s again", first.name)
	}
	s.Blame("a", 0, obj.Size, "sha256 mismatch", nil)
	// Both charged once: the first copy in order, the primary.
	if third := readWhole(t, s, obj); !third.primary {
		t.Fatalf("with both copies charged once, read from %s; want the primary", third.name)
	}
	x := s.Explain("a")
	if strings.Count(x, "gave: sha256 mismatch") != 2 {
		t.Errorf("Explain = %q; want what each copy gave", x)
	}
	var sum int64
	for _, a := range s.Accounts() {
		sum += a.Bytes
	}
	if sum != 3*obj.Size {
		t.Errorf("accounts sum to %d, want %d", sum, 3*obj.Size)
	}
}

// TestPlanVet: which hashes can prove the bytes that failed proof: a
// manifest's pieces that cover them, else the whole part's SHA-256 only
// when the whole part failed; nothing else (MD5 cannot be asked for).
func TestPlanVet(t *testing.T) {
	man := integrity.Reference{Algo: integrity.SHA256, Origin: integrity.OriginManifest, PieceSize: 100, Pieces: []string{"A0", "a1", "a2"}}
	whole := integrity.Reference{Algo: integrity.SHA256, Origin: "SHA256SUMS", Sum: strings.Repeat("b", 64)}
	md5 := integrity.Reference{Algo: integrity.MD5, Origin: "etag", Sum: strings.Repeat("c", 32)}
	for _, c := range []struct {
		name      string
		refs      []integrity.Reference
		off, end  int64
		ok        bool
		pieceSize int64
		pieces    []int
	}{
		{"one piece", []integrity.Reference{whole, man}, 100, 200, true, 100, []int{1}},
		{"across pieces", []integrity.Reference{man}, 50, 250, true, 100, []int{0, 1, 2}},
		{"whole part by SHA256SUMS", []integrity.Reference{md5, whole}, 0, 250, true, 250, []int{0}},
		{"a span without a manifest", []integrity.Reference{whole}, 0, 100, false, 0, nil},
		{"md5 only", []integrity.Reference{md5}, 0, 250, false, 0, nil},
		{"manifest of other pieces", []integrity.Reference{{Algo: integrity.SHA256, PieceSize: 100, Pieces: []string{"x"}}}, 100, 200, false, 0, nil},
	} {
		p, ok := planVet(c.refs, 250, c.off, c.end)
		if ok != c.ok || ok && (p.pieceSize != c.pieceSize || !slices.Equal(p.pieces, c.pieces)) {
			t.Errorf("%s: got %v %d %v, want %v %d %v", c.name, ok, p.pieceSize, p.pieces, c.ok, c.pieceSize, c.pieces)
		}
		if ok && c.name == "one piece" && p.want[1] != "a1" {
			t.Errorf("%s: want %q, got %q", c.name, "a1", p.want[1])
		}
		if ok && c.name == "across pieces" && p.want[0] != "a0" {
			t.Errorf("%s: the manifest's digest is compared in lower case, got %q", c.name, p.want[0])
		}
	}
}

// TestWaitersInOrder: reads waiting for the busy primary get its
// connections in the order they came. A read overtaken again and again
// holds its piece to the end of the run (the slow mirror benchmark's
// tail).
func TestWaitersInOrder(t *testing.T) {
	p := t.TempDir()
	if err := os.WriteFile(filepath.Join(p, "a"), []byte(strings.Repeat("x", 1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	op, err := local.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	s := Open(context.Background(), op.Source, nil, Options{Conns: 2, Timeout: time.Minute}).(*Source)
	t.Cleanup(func() { s.Close() })
	objs, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	obj := objs[0]
	var held []io.ReadCloser
	for range 2 {
		rc, err := s.ReadRange(context.Background(), obj, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, rc)
	}
	type took struct {
		i  int
		rc io.ReadCloser
	}
	got := make(chan took, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // the read still waiting at the end
	for i := range 3 {
		go func() {
			rc, err := s.ReadRange(ctx, obj, 0, 10)
			if err == nil {
				got <- took{i, rc}
			}
		}()
		for k := 0; ; k++ {
			s.mu.Lock()
			n := len(s.queue)
			s.mu.Unlock()
			if n == i+1 {
				break
			}
			if k > 2000 {
				t.Fatalf("read %d never waited", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for want := range 2 {
		held[want].Close()
		x := <-got
		defer x.rc.Close()
		if x.i != want {
			t.Fatalf("a freed connection went to read %d, want %d (the oldest waiting)", x.i, want)
		}
	}
}

// TestHealPrefersLeastCharged: a copy whose hash matched the references
// is read before another charged as often; once its bytes have failed on
// the way more often than the other's, the other is read again rather
// than the matching copy until the tries run out.
func TestHealPrefersLeastCharged(t *testing.T) {
	s, obj, _ := twoCopies(t, strings.Repeat("x", 1000))
	if first := readWhole(t, s, obj); !first.primary {
		t.Fatalf("first read from %s, want the primary", first.name)
	}
	s.Blame("a", 0, obj.Size, "sha256 mismatch", nil)
	s.mu.Lock()
	var mirror *member
	for _, m := range s.members {
		if !m.primary {
			mirror = m
		}
	}
	ps := s.parts["a"]
	if ps.vets == nil {
		ps.vets = map[vetKey]*vet{}
	}
	done := make(chan struct{})
	close(done)
	ps.vets[vetKey{mirror, 0, obj.Size}] = &vet{done: done, asked: true, pieceSize: obj.Size, pieces: []int{0}}
	s.mu.Unlock()

	for i, want := range []*member{mirror, mirror} {
		if got := readWhole(t, s, obj); got != want {
			t.Fatalf("read %d after the mirror's hash matched: from %s, want %s", i, got.name, want.name)
		}
		s.Blame("a", 0, obj.Size, "sha256 mismatch", nil)
	}
	// The mirror now charged twice, the primary once.
	if got := readWhole(t, s, obj); !got.primary {
		t.Fatalf("with the matching mirror charged twice and the primary once, read from %s; want the primary", got.name)
	}
}
