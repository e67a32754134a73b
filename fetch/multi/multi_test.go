package multi

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/source/local"
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
	s.Blame("a", 0, obj.Size, "sha256 mismatch")
	second := readWhole(t, s, obj)
	if second == first {
		t.Fatalf("after a failed proof the part came from %s again", first.name)
	}
	s.Blame("a", 0, obj.Size, "sha256 mismatch")
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
