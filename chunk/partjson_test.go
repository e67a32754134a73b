package chunk

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/haul-dev/haul/integrity"
)

// A part record as main wrote it before parts kept rare fields out of
// line: every field must come back, and go out again, the same.
func TestPartJSONRoundTrip(t *testing.T) {
	for _, in := range []string{
		`{"name":"a.tar.gz.1","size":16384,"version":"mtime:2026-11-29T19:36:46.444346783Z,size:16384","mtime":"2026-11-29T19:36:46.444346783Z","refs":[{"algo":"sha256","sum":"d18aaee5cd294fb2fb6f92e2dcf6d38fb91f35f50b0c02f3f47d20cb3bdd2fb4","origin":"SHA256SUMS"}],"done":"AQ==","hashes":{"w":4,"b":"DJbnxQ=="},"piece_hash":"crc32c","status":"verified","verified_by":["sha256:SHA256SUMS"],"dev":65024,"ino":11411466,"mtime_ns":1795981042855577114,"disk_size":16384,"crc32c":"0c96e7c5"}`,
		`{"name":"b","size":10,"version":"etag:abc","etag":"abc","mtime":"2026-01-02T03:04:05Z","url":"https://h/b?sig=x","encoding":"gzip","done":"Aw==","partial":[{"piece":2,"bytes":5,"algo":"crc32c","sum":"AQID"}],"status":"broken","error":"bad","attempts":2,"set_crc":"01020304","found":true}`,
		// A version the part's fields do not make (another source's token).
		`{"name":"c","size":10,"version":"mtime:2020-01-01T00:00:00Z,size:10","mtime":"2026-01-02T03:04:05Z","done":"","status":"partial"}`,
		// No version at all, as a part named only by a reference file has.
		`{"name":"d","size":0,"version":"","mtime":"0001-01-01T00:00:00Z","done":"","status":"missing","error":"named by SHA256SUMS but not found at the source"}`,
		`{"name":"e","size":7,"version":"","mtime":"2026-01-02T03:04:05Z","done":"","status":"pending"}`,
	} {
		var p Part
		if err := json.Unmarshal([]byte(in), &p); err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(&p)
		if err != nil {
			t.Fatal(err)
		}
		var a, b map[string]any
		json.Unmarshal([]byte(in), &a)
		json.Unmarshal(out, &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("round trip changed the record:\n in %s\nout %s", in, out)
		}
	}
}

// The accessors of the out-of-line fields, and a part that had them and
// then had none keeps nothing out of line.
func TestPartExtra(t *testing.T) {
	p := &Part{Name: "x", Size: 3}
	p.SetModTime(time.Unix(1e9, 5))
	p.SetVersion("mtime:2001-09-09T01:46:40.000000005Z,size:3")
	if p.x != nil {
		t.Fatalf("a version the part's fields make is stored: %+v", p.x)
	}
	if got := p.Version(); got != "mtime:2001-09-09T01:46:40.000000005Z,size:3" {
		t.Fatalf("Version() = %q", got)
	}
	p.SetAddress("https://h/x", "")
	p.SetAttempts(2)
	p.SetSetCRC("0a0b0c0d")
	p.SetFound(true)
	p.SetProgress(Progress{Piece: 1, Bytes: 9})
	p.SetVersion("etag:other")
	c := p.Clone()
	if c.URL() != "https://h/x" || c.Attempts() != 2 || c.SetCRC() != "0a0b0c0d" || !c.Found() || len(c.Partial()) != 1 || c.Version() != "etag:other" {
		t.Fatalf("clone lost fields: %+v", *c.x)
	}
	p.SetProgress(Progress{Piece: 1, Bytes: 12})
	if pr, _ := c.ProgressOf(1); pr.Bytes != 9 {
		t.Fatalf("the clone shares its progress with the part")
	}
	p.SetAddress("", "")
	p.SetAttempts(0)
	p.SetSetCRC("")
	p.ResetPieces()
	p.SetVersion(p.derivedVersion())
	if p.x != nil {
		t.Fatalf("nothing out of line is set, but %+v is kept", *p.x)
	}
	if s := unsafe.Sizeof(Part{}); s > 256 {
		t.Fatalf("Part is %d bytes; keep what few parts have out of line", s)
	}
}

// References come back as they were set, in order, whether kept in a few
// bytes or whole.
func TestPartRefs(t *testing.T) {
	refs := []integrity.Reference{
		{Algo: "sha256", Sum: "d18aaee5cd294fb2fb6f92e2dcf6d38fb91f35f50b0c02f3f47d20cb3bdd2fb4", Origin: "SHA256SUMS"},
		{Algo: "sha256", Sum: "AB", Origin: "manifest", PieceSize: 4, Pieces: []string{"aa", "bb"}},
		{Algo: "md5", Sum: "ABCDEF", Origin: "site.md5"}, // upper case: not hex this package writes
		{Algo: "md5-multipart", Sum: "00ff", Origin: "etag", PartSizes: []int64{5, 5}},
		{Algo: "crc32c", Sum: "0a0b0c0d", Origin: "s3"},
	}
	p := &Part{Name: "x"}
	p.SetRefs(refs)
	if got := p.Refs(); !reflect.DeepEqual(got, refs) {
		t.Fatalf("Refs() = %+v, want %+v", got, refs)
	}
	c := p.Clone()
	p.SetRefs(refs[:1])
	if got := c.Refs(); !reflect.DeepEqual(got, refs) {
		t.Fatalf("the clone's refs changed with the part's: %+v", got)
	}
	if got := p.Refs(); !reflect.DeepEqual(got, refs[:1]) || p.x != nil {
		t.Fatalf("after SetRefs of one digest: %+v, out of line %v", got, p.x)
	}
	p.SetRefs(append(refs[:1:1], refs...))
	if got := p.Refs(); !reflect.DeepEqual(got, refs) {
		t.Fatalf("a reference set twice is kept twice: %+v", got)
	}
	p.SetRefs(nil)
	if p.Refs() != nil || p.refs != nil {
		t.Fatalf("no refs set, but %v kept", p.refs)
	}
}

// Modification times come back as the same instant, the zero time as
// zero, including those eight bytes of nanoseconds cannot hold.
func TestPartModTime(t *testing.T) {
	for _, mt := range []time.Time{
		{},
		time.Unix(0, 0),
		time.Unix(1e9, 5).In(time.FixedZone("x", 3*3600)),
		time.Date(1500, 1, 2, 3, 4, 5, 6, time.UTC),
		time.Date(3000, 1, 2, 3, 4, 5, 6, time.UTC),
	} {
		p := &Part{Name: "x"}
		p.SetModTime(mt)
		if got := p.ModTime(); !got.Equal(mt) || got.IsZero() != mt.IsZero() {
			t.Errorf("SetModTime(%v): ModTime() = %v", mt, got)
		}
		b, _ := json.Marshal(p)
		var q Part
		if err := json.Unmarshal(b, &q); err != nil || !q.ModTime().Equal(mt) {
			t.Errorf("%v through JSON: %v (%v)", mt, q.ModTime(), err)
		}
		p.SetModTime(time.Time{})
		if p.x != nil || !p.ModTime().IsZero() {
			t.Errorf("after SetModTime(zero): %v, out of line %v", p.ModTime(), p.x)
		}
	}
}

// TestReferenceFieldsKnown: a part stores a plain whole-part digest in
// binary (simpleSum) and keeps only Algo, Sum and Origin of it. A field
// added to integrity.Reference would be lost on every save of such a
// reference unless simpleSum declines references that set it.
func TestReferenceFieldsKnown(t *testing.T) {
	var names []string
	rt := reflect.TypeOf(integrity.Reference{})
	for i := range rt.NumField() {
		names = append(names, rt.Field(i).Name)
	}
	if want := []string{"Algo", "Sum", "Origin", "PartSizes", "PieceSize", "Pieces"}; !slices.Equal(names, want) {
		t.Fatalf("integrity.Reference has fields %v, simpleSum knows %v: make it decline references that set the new ones", names, want)
	}
}
