package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/pieceplan"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/integrity"
	"github.com/haul-dev/haul/internal/gen"
	"github.com/haul-dev/haul/internal/retry"
	"github.com/haul-dev/haul/internal/testenv"
)

// makeSet writes n parts of random bytes named name, name.1, … into dir
// and returns their contents by name.
func makeSet(t *testing.T, dir, name string, n int, size int) map[string][]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(n), uint64(size)))
	parts := map[string][]byte{}
	for i := 0; i < n; i++ {
		pn := name
		if i > 0 {
			pn = fmt.Sprintf("%s.%d", name, i)
		}
		b := make([]byte, size+i*1000)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		signed(pn, b)
		if err := os.WriteFile(filepath.Join(dir, pn), b, 0o644); err != nil {
			t.Fatal(err)
		}
		parts[pn] = b
	}
	return parts
}

// signed makes random bytes start as the format the name claims (a name
// is a claim: integrity.CheckSignature), yet not as a gzip stream a
// structural check would decode.
func signed(name string, b []byte) {
	sig := integrity.ClaimedSignature(name)
	if len(b) > len(sig) {
		copy(b, sig)
		b[len(sig)] = 0
	}
}

func writeSums(t *testing.T, dir string, parts map[string][]byte) {
	t.Helper()
	var b bytes.Buffer
	for n, d := range parts {
		s := sha256.Sum256(d)
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(s[:]), n)
	}
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// assertSet checks every part in dest is byte-identical and no .partial
// file is left.
func assertSet(t *testing.T, dest string, parts map[string][]byte) {
	t.Helper()
	for n, want := range parts {
		got, err := os.ReadFile(filepath.Join(dest, n))
		if err != nil {
			t.Fatalf("part %s: %v", n, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("part %s differs from the source", n)
		}
	}
	left, _ := filepath.Glob(filepath.Join(dest, "*.partial"))
	if len(left) > 0 {
		t.Fatalf("partial files left: %v", left)
	}
}

func testOptions(src, dest string) Options {
	return Options{
		Sources:     []string{src},
		Dest:        dest,
		Connections: 4,
		PieceSize:   64 << 10,
		Retries:     5,
		Timeout:     5 * time.Second,
		Backoff:     retry.ExpBackoff(time.Millisecond, 10*time.Millisecond),
	}
}

func TestFetchLocalWithSums(t *testing.T) {
	src, dest := t.TempDir(), t.TempDir()
	parts := makeSet(t, src, "site.tar.gz", 6, 300_000)
	writeSums(t, src, parts)
	sum, err := Fetch(context.Background(), testOptions(filepath.Join(src, "site.tar.gz"), dest))
	if err != nil {
		t.Fatal(err)
	}
	assertSet(t, dest, parts)
	if sum.Verified != 6 {
		t.Fatalf("verified %d parts, want 6", sum.Verified)
	}
	st, err := chunk.Load(dest)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Parts {
		if len(p.VerifiedBy) == 0 || p.VerifiedBy[0] != "sha256:SHA256SUMS" {
			t.Fatalf("part %s verified_by %v, want sha256:SHA256SUMS", p.Name, p.VerifiedBy)
		}
	}
	// A second run pulls nothing.
	sum, err = Fetch(context.Background(), testOptions(filepath.Join(src, "site.tar.gz"), dest))
	if err != nil || sum.Pulled != 0 {
		t.Fatalf("second run: pulled %d, err %v", sum.Pulled, err)
	}
}

func TestFetchSumMismatchIsBroken(t *testing.T) {
	src, dest := t.TempDir(), t.TempDir()
	parts := makeSet(t, src, "db.tar.zst.000", 3, 100_000)
	writeSums(t, src, parts)
	// The source itself is bad: no retry can cure it.
	bad := append([]byte(nil), parts["db.tar.zst.000.1"]...)
	bad[500] ^= 1
	os.WriteFile(filepath.Join(src, "db.tar.zst.000.1"), bad, 0o644)
	opts := testOptions(src, dest)
	opts.Retries = 2
	_, err := Fetch(context.Background(), opts)
	var ie *IncompleteError
	if !errors.As(err, &ie) || len(ie.Broken) != 1 || ie.Broken[0] != "db.tar.zst.000.1" {
		t.Fatalf("err = %v, want one broken part db.tar.zst.000.1", err)
	}
	if _, err := os.Stat(filepath.Join(dest, "db.tar.zst.000.1")); err == nil {
		t.Fatal("a broken part has its final name")
	}
}

// TestBitrixLNNamesMissingVolume: one URL to a Bitrix first volume expands
// to the set its LN field names; a volume the server lacks is missing
// (exit 3), not silently left out.
func TestBitrixLNNamesMissingVolume(t *testing.T) {
	site, served, dest := t.TempDir(), t.TempDir(), t.TempDir()
	if err := gen.Tree(site, 3, 1<<20); err != nil {
		t.Fatal(err)
	}
	vols, err := gen.BitrixSet(site, served, "site", 128<<10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) < 3 {
		t.Fatalf("only %d volumes; make the site bigger", len(vols))
	}
	gone := filepath.Base(vols[2])
	os.Remove(vols[2])
	srv := testenv.NewFaultServer(served)
	defer srv.Close()
	opts := testOptions(srv.URL(filepath.Base(vols[0])), dest)
	_, err = Fetch(context.Background(), opts)
	var ie *IncompleteError
	if !errors.As(err, &ie) || fmt.Sprint(ie.Missing) != fmt.Sprint([]string{gone}) {
		t.Fatalf("err = %v, want %s missing", err, gone)
	}
	for _, v := range vols {
		if v == vols[2] {
			continue
		}
		want, _ := os.ReadFile(v)
		got, err := os.ReadFile(filepath.Join(dest, filepath.Base(v)))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("volume %s not identical: %v", filepath.Base(v), err)
		}
	}
}

// TestProbeParts: with ProbeParts one URL expands to NAME.1, NAME.2 … until
// the server says 404; without it, the URL is the whole set.
func TestProbeParts(t *testing.T) {
	served := t.TempDir()
	parts := makeSet(t, served, "db.dump", 4, 50_000)
	srv := testenv.NewFaultServer(served)
	defer srv.Close()
	for _, probe := range []bool{false, true} {
		dest := t.TempDir()
		opts := testOptions(srv.URL("db.dump"), dest)
		opts.Open.ProbeParts = probe
		sum, err := Fetch(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if probe {
			want = 4
			assertSet(t, dest, parts)
		}
		if sum.Parts != want {
			t.Fatalf("probe=%v: %d parts, want %d", probe, sum.Parts, want)
		}
	}
}

// TestResumeRechecksDonePieces: on start, done pieces of an unfinished part
// are re-hashed (CRC32C without a manifest, SHA-256 with a manifest alone,
// whose pieces are compared as they land); a piece damaged on disk since
// is fetched again, and only it.
func TestResumeRechecksDonePieces(t *testing.T) {
	for _, manifest := range []bool{false, true} {
		t.Run(map[bool]string{false: "crc32c", true: "sha256"}[manifest], func(t *testing.T) {
			src, dest := t.TempDir(), t.TempDir()
			parts := makeSet(t, src, "vm.img", 1, 640<<10) // 10 pieces of 64 KiB
			algo, digest := chunk.PieceCRC32C, 4
			if manifest {
				writeManifestFile(t, src, 64<<10)
				algo, digest = chunk.PieceSHA256, 32
			}
			opts := testOptions(src, dest)
			if _, err := Fetch(context.Background(), opts); err != nil {
				t.Fatal(err)
			}
			st, err := chunk.Load(dest)
			if err != nil {
				t.Fatal(err)
			}
			p := st.Find("vm.img")
			if p.PieceHash != algo || p.Hashes.Get(9) == nil || p.Hashes.Get(10) != nil || p.Hashes.Width() != digest {
				t.Fatalf("piece digests %q %v: want %s", p.PieceHash, p.Hashes, algo)
			}
			// Back to "all pieces written, not yet proven", then damage piece 3.
			os.Rename(filepath.Join(dest, "vm.img"), filepath.Join(dest, "vm.img.partial"))
			p.Status, p.VerifiedBy = chunk.Partial, nil
			if err := chunk.Save(dest, st); err != nil {
				t.Fatal(err)
			}
			f, _ := os.OpenFile(filepath.Join(dest, "vm.img.partial"), os.O_RDWR, 0)
			f.WriteAt([]byte{0xff, 0xee}, 3*64<<10+100)
			f.Close()
			// One connection: idle ones would split the one piece's span
			// when the machine is slow, and the bytes already on their way
			// to its owner would count as pulled too.
			opts.Connections = 1
			sum, err := Fetch(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			assertSet(t, dest, parts)
			if sum.Pulled != 64<<10 {
				t.Fatalf("pulled %d bytes of parts, want one piece (%d)", sum.Pulled, 64<<10)
			}
		})
	}
}

func TestAutoPieceSize(t *testing.T) {
	sizes := func(n int, each int64) []source.Object {
		var o []source.Object
		for i := 0; i < n; i++ {
			o = append(o, source.Object{Size: each})
		}
		return o
	}
	for _, c := range []struct {
		name  string
		parts []source.Object
		j     int
		want  int64
	}{
		{"30 GB night keeps 8 MiB", sizes(30, 1<<30), 8, 8 << 20},
		{"28 MiB in 8 parts, -j16", sizes(8, 3584<<10), 16, 448 << 10},
		{"tiny set stops at 256 KiB", sizes(2, 100<<10), 8, 256 << 10},
	} {
		if got := pieceplan.AutoSize(c.parts, 8<<20, c.j); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}
