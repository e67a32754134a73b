package fetch

// Proof with a manifest beside a sum file (issue 7): SHA-256 runs once over
// each byte, and damage still costs only the pieces it is in.

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/pieceplan"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/integrity"
	"github.com/haul-dev/haul/internal/testenv"
)

// putManifest writes NAME.haul.json for the set in dir, with pieces
// of pieceSize bytes, and returns its path.
func putManifest(t *testing.T, dir, name string, pieceSize int64) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteManifest(context.Background(), filepath.Join(dir, name), source.OpenOptions{}, pieceSize, &b); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".haul.json")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestFetchManifestBesideSums: a set with SHA256SUMS and a manifest over
// HTTP, a bit flipped on the link in one piece of two parts. Pieces land
// with CRC32C digests (the proof pass hashes each byte with SHA-256 once,
// for both references), the flips are caught there, and only the pieces
// they are in come again. Then a byte rots on disk: verify names that part
// alone, and repair moves only its bad piece (twice: the link flips it).
func TestFetchManifestBesideSums(t *testing.T) {
	const piece = 64 << 10
	src := t.TempDir()
	parts := makeSet(t, src, "site.tar.gz", 4, 300_000)
	writeSums(t, src, parts)
	refsSize := fileSize(t, filepath.Join(src, "SHA256SUMS")) + fileSize(t, putManifest(t, src, "site.tar.gz", piece))
	names := []string{"site.tar.gz", "site.tar.gz.1", "site.tar.gz.2", "site.tar.gz.3"}
	var total int64
	for _, n := range names {
		total += int64(len(parts[n]))
	}
	flips := map[string]int64{"site.tar.gz.1": 2*piece + 10, "site.tar.gz.3": 100}
	var faults []testenv.FaultOption
	for name, off := range flips {
		faults = append(faults, testenv.FlipBits(name, 1, off))
	}
	srv := testenv.NewFaultServer(src, faults...)
	t.Cleanup(srv.Close)
	var urls []string
	for _, n := range names {
		urls = append(urls, srv.URL(n))
	}
	dest := t.TempDir()
	opts := testOptions(urls[0], dest)
	opts.Sources = urls
	// One connection: no endgame split, whose dropped bytes (the socket
	// buffers past the split point, more under load) the bound below
	// does not count.
	opts.Connections = 1
	rec := &recorder{}
	opts.Progress = rec

	if _, err := Fetch(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	assertSet(t, dest, parts)
	if got := srv.Faults().Flips; got != int64(len(flips)) {
		t.Fatalf("%d bits flipped, want %d", got, len(flips))
	}
	st, err := chunk.Load(dest)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Parts {
		if p.PieceHash != chunk.PieceCRC32C {
			t.Errorf("part %s: piece digests %q, want %q (the proof pass hashes with SHA-256)", p.Name, p.PieceHash, chunk.PieceCRC32C)
		}
		if p.Status != chunk.Verified || !slices.Equal(slices.Sorted(slices.Values(p.VerifiedBy)), []string{"manifest", "sha256:SHA256SUMS"}) {
			t.Errorf("part %s: %s by %v, want verified by SHA256SUMS and the manifest", p.Name, p.Status, p.VerifiedBy)
		}
	}
	for name := range flips {
		if !slices.ContainsFunc(rec.events, func(e Event) bool {
			return e.Kind == chunk.EventRetry && e.Part == name && strings.Contains(e.Message, "fetching 1 piece(s) again")
		}) {
			t.Errorf("no re-fetch of one piece of %s reported: %+v", name, rec.events)
		}
	}
	srv.WaitIdle(5e9)
	// The first part's head is read once more to see whether it is a
	// Bitrix first volume whose LN field promises volumes (set completeness).
	bound := total + int64(len(flips))*piece + refsSize + integrity.BitrixHeaderLen
	for _, n := range names {
		t.Logf("%s: %d bytes sent, %d long", n, srv.FileBytesSent(n), len(parts[n]))
	}
	t.Logf("%d bytes pulled for a %d-byte set with %d flips (bound %d, of which %d are the reference files and %d the head probe)", srv.BytesSent(), total, len(flips), bound, refsSize, integrity.BitrixHeaderLen)
	if srv.BytesSent() > bound {
		t.Fatalf("pulled %d bytes, more than the set, one piece per flip and the reference files (%d)", srv.BytesSent(), bound)
	}

	// Rot on disk, in piece 3 of one part.
	rot := "site.tar.gz.2"
	b := bytes.Clone(parts[rot])
	b[3*piece+5] ^= 0x10
	if err := os.WriteFile(filepath.Join(dest, rot), b, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, pc := range rep.Parts {
		want := chunk.Verified
		if pc.Name == rot {
			want = chunk.Broken
		}
		if pc.Name != names[i] || pc.Status != want {
			t.Errorf("verify: part %d is %s, %s (%s); want %s, %s", i, pc.Name, pc.Status, pc.Error, names[i], want)
		}
	}
	if rep.OK {
		t.Fatal("verify says ok with a part rotted")
	}

	// Repair over the same faulty link: a flip in the piece it moves is
	// a fault on the way, not a bad copy; that piece comes once more.
	srv.WaitIdle(5e9)
	srv.ZeroCounters()
	srv.Set(testenv.FlipBits(rot, 1, 3*piece+9))
	if _, err := Repair(context.Background(), opts, ""); err != nil {
		t.Fatal(err)
	}
	assertSet(t, dest, parts)
	srv.WaitIdle(5e9)
	for _, n := range names {
		got, want := srv.FileBytesSent(n), int64(0)
		if n == rot {
			want = 2 * piece
		}
		if got > want {
			t.Errorf("repair pulled %d bytes of %s, want at most %d", got, n, want)
		}
	}
	if rep, err := Verify(context.Background(), opts); err != nil || !rep.OK {
		t.Fatalf("verify after repair: %+v, %v", rep, err)
	}
}

// Pieces are hashed with SHA-256 and compared with the manifest as they
// land only when the proof pass would not compute SHA-256 anyway, or in a
// repair.
func TestPieceDigestChoice(t *testing.T) {
	manifest := integrity.Reference{Algo: integrity.SHA256, Origin: integrity.OriginManifest, Sum: strings.Repeat("a", 64),
		PieceSize: 4, Pieces: []string{strings.Repeat("b", 64), strings.Repeat("c", 64)}}
	sums := integrity.Reference{Algo: integrity.SHA256, Origin: "SHA256SUMS", Sum: strings.Repeat("d", 64)}
	md5 := integrity.Reference{Algo: integrity.MD5, Origin: integrity.OriginETag, Sum: strings.Repeat("e", 32)}
	for _, tc := range []struct {
		name   string
		refs   []integrity.Reference
		repair bool
		want   string
	}{
		{"manifest alone", []integrity.Reference{manifest}, false, chunk.PieceSHA256},
		{"manifest and an ETag", []integrity.Reference{manifest, md5}, false, chunk.PieceSHA256},
		{"manifest and SHA256SUMS", []integrity.Reference{manifest, sums}, false, chunk.PieceCRC32C},
		{"manifest and SHA256SUMS, repair", []integrity.Reference{manifest, sums}, true, chunk.PieceSHA256},
		{"SHA256SUMS alone", []integrity.Reference{sums}, false, chunk.PieceCRC32C},
		{"SHA256SUMS alone, repair", []integrity.Reference{sums}, true, chunk.PieceCRC32C},
	} {
		t.Run(tc.name, func(t *testing.T) {
			algo, refs := pieceplan.Digest(tc.refs, 4, 2, tc.repair)
			if algo != tc.want || (refs != nil) != (tc.want == chunk.PieceSHA256) {
				t.Fatalf("got %s with piece refs %v, want %s", algo, refs, tc.want)
			}
		})
	}
}
