package integrity

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func buildManifest(t *testing.T, pieceSize int64, parts map[string][]byte, order ...string) (string, []ManifestPart) {
	t.Helper()
	var mps []ManifestPart
	for _, name := range order {
		p, err := BuildManifestPart(name, bytes.NewReader(parts[name]), pieceSize)
		if err != nil {
			t.Fatal(err)
		}
		mps = append(mps, p)
	}
	var b bytes.Buffer
	h := ManifestHeader{PieceSize: pieceSize, Created: time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)}
	if err := WriteManifest(&b, h, mps); err != nil {
		t.Fatal(err)
	}
	return b.String(), mps
}

func TestManifestRoundTrip(t *testing.T) {
	parts := map[string][]byte{
		"site.tar.gz":   randBytes(20, 10_000),
		"site.tar.gz.1": randBytes(21, 4096*2), // exactly two pieces
		"site.tar.gz.2": nil,                   // empty: no pieces
	}
	copy(parts["site.tar.gz"], ClaimedSignature("site.tar.gz")) // a name is a claim
	text, written := buildManifest(t, 4096, parts, "site.tar.gz", "site.tar.gz.1", "site.tar.gz.2")

	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if lines[0] != `{"haul_manifest":1,"piece_size":4096,"created":"2026-11-20T03:00:00Z"}` {
		t.Fatalf("header line %s", lines[0])
	}
	whole := sha256.Sum256(parts["site.tar.gz"])
	piece0 := sha256.Sum256(parts["site.tar.gz"][:4096])
	piece2 := sha256.Sum256(parts["site.tar.gz"][8192:])
	if want := `{"name":"site.tar.gz","size":10000,"sha256":"` + hex.EncodeToString(whole[:]) + `","pieces":["` +
		hex.EncodeToString(piece0[:]) + `",`; !strings.HasPrefix(lines[1], want) || !strings.HasSuffix(lines[1], hex.EncodeToString(piece2[:])+`"]}`) {
		t.Fatalf("part line %s", lines[1])
	}
	if lines[3] != `{"name":"site.tar.gz.2","size":0,"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","pieces":[]}` {
		t.Fatalf("empty part line %s", lines[3])
	}
	if lines[4] != `{"end":true,"parts":3}` || len(lines) != 5 {
		t.Fatalf("end line %s of %d", lines[len(lines)-1], len(lines))
	}

	h, read, err := ReadManifest("set.haul.json", strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != 1 || h.PieceSize != 4096 || !h.Created.Equal(time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)) {
		t.Fatalf("header %+v", h)
	}
	for i := range written {
		if read[i].Pieces == nil {
			read[i].Pieces = []string{}
		}
		if written[i].Pieces == nil {
			written[i].Pieces = []string{}
		}
	}
	if !reflect.DeepEqual(read, written) {
		t.Fatalf("read back\n%+v\nwant\n%+v", read, written)
	}

	refs, err := ParseReferenceFile("https://host/set.haul.json", strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range parts {
		if res := check(name, data, refs[name], CheckOptions{}); !res.Verified() || res.VerifiedBy[0] != "manifest" {
			t.Fatalf("%s: %+v", name, res)
		}
	}
}

func TestManifestStreams(t *testing.T) {
	var b bytes.Buffer
	mw, err := NewManifestWriter(&b, ManifestHeader{PieceSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := BuildManifestPart("a", strings.NewReader("0123456789abcdef0"), 16)
	if err := mw.Add(p); err != nil {
		t.Fatal(err)
	}
	// A reader sees the header and the first part before the writer is done.
	mr, err := NewManifestReader("m.haul.json", bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := mr.Next(); err != nil || got.Name != "a" || len(got.Pieces) != 2 {
		t.Fatalf("first part %+v, %v", got, err)
	}
	if _, err := mr.Next(); !errors.Is(err, ErrManifestTruncated) {
		t.Fatalf("before the end line: %v, want ErrManifestTruncated", err)
	}
	if err := mw.Add(p); err == nil {
		t.Fatal("the same part twice must fail")
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	mr, _ = NewManifestReader("m.haul.json", bytes.NewReader(b.Bytes()))
	mr.Next()
	if _, err := mr.Next(); err != io.EOF {
		t.Fatalf("after the end line: %v, want io.EOF", err)
	}
}

func TestManifestErrors(t *testing.T) {
	text, _ := buildManifest(t, 4, map[string][]byte{"a": []byte("0123456789"), "b": []byte("xyz")}, "a", "b")
	lines := strings.SplitAfter(text, "\n") // header, a, b, end, ""
	for _, tc := range []struct {
		name string
		text string
		line int
		err  error
		says string
	}{
		{"cut short", lines[0] + lines[1] + lines[2], 0, ErrManifestTruncated, "cut short"},
		{"cut inside a line", lines[0] + lines[1][:30], 2, nil, "unexpected end of JSON"},
		{"newer version", strings.Replace(text, `"haul_manifest":1`, `"haul_manifest":2`, 1), 1, ErrManifestVersion, "version 2"},
		{"not a manifest", `{"name":"a"}` + "\n", 1, nil, "no haul_manifest header"},
		{"empty", "", 0, nil, "empty file"},
		{"wrong piece count", lines[0] + strings.Replace(lines[1], `"pieces":["`, `"pieces":["`+strings.Repeat("0", 64)+`","`, 1) + lines[2] + lines[3], 2, nil, "make 3 pieces, the line lists 4"},
		{"bad hash", lines[0] + strings.Replace(lines[1], `"sha256":"`, `"sha256":"zz`, 1), 2, nil, "not 64 hex digits"},
		{"name with a directory", lines[0] + strings.Replace(lines[1], `"name":"a"`, `"name":"../a"`, 1), 2, nil, "base name"},
		{"listed twice", lines[0] + lines[1] + lines[1] + lines[3], 3, nil, "listed twice"},
		{"end count wrong", lines[0] + lines[1] + lines[3], 3, nil, "counts 2 parts, the manifest has 1"},
		{"line after the end", text + lines[1], 5, nil, "after the end line"},
		{"unknown line", lines[0] + `{"what":1}` + "\n", 2, nil, "neither a part"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadManifest("/srv/set.haul.json", strings.NewReader(tc.text))
			var se *SumFileError
			if !errors.As(err, &se) || se.File != "set.haul.json" || se.Line != tc.line {
				t.Fatalf("got %v, want an error in set.haul.json line %d", err, tc.line)
			}
			if tc.err != nil && !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("%q does not say %q (%v)", err, tc.says, tc.err)
			}
		})
	}
}
