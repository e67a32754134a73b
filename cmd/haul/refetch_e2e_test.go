package main

// Issue 18, case 7: a set no reference proves, whose joined stream fails
// its own checksum (a gzip CRC over parts cut at arbitrary bytes), is
// fetched again within a bound — --retries attempts for the whole set, and
// never a part again once the source sent the same bytes twice — then
// the run exits 3 naming the suspects and the fix. Bytes are counted at
// the server.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haul-dev/haul/internal/testenv"
)

// storedTarGz is a tar.gz of one file of random bytes, stored without
// compression so that a flipped byte in it is seen only by the gzip
// trailer's CRC, cut into parts of partSize bytes named NAME, NAME.1, ….
// It returns the parts and the file's content.
func storedTarGz(t *testing.T, name string, size, partSize int) ([]e2ePart, []byte) {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	data := e2eBytes(77, size)
	if err := tw.WriteHeader(&tar.Header{Name: "data.bin", Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	var parts []e2ePart
	for i := 0; len(b) > 0; i++ {
		n := min(partSize, len(b))
		pn := name
		if i > 0 {
			pn = fmt.Sprintf("%s.%d", name, i)
		}
		parts = append(parts, e2ePart{pn, b[:n]})
		b = b[n:]
	}
	return parts, data
}

// damagedSource serves the set with one byte of part bad flipped for
// good (the source's own copy is damaged): no reference file, so only
// the set's gzip CRC can tell.
func damagedSource(t *testing.T, parts []e2ePart, bad int) *testenv.FaultServer {
	t.Helper()
	served := append([]e2ePart(nil), parts...)
	b := bytes.Clone(parts[bad].data)
	b[len(b)/2] ^= 0x10
	served[bad] = e2ePart{parts[bad].name, b}
	return e2eServe(t, served)
}

// wantSuspects fails unless the failure names every part as a suspect
// and the repair command.
func wantSuspects(t *testing.T, r result, parts []e2ePart) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(r.stderr, p.name) {
			t.Errorf("the failure does not name the suspect %s", p.name)
		}
	}
	if !strings.Contains(r.stderr, "haul repair --from") || !strings.Contains(r.stderr, "does not decode") {
		t.Errorf("the failure does not say the set does not decode and name the fix:\n%s", r.stderr)
	}
}

func TestSetCRCFailureBoundedRefetch(t *testing.T) {
	parts, _ := storedTarGz(t, "site.tar.gz", 1<<20, 200<<10)
	set := e2eTotal(parts)
	for _, tc := range []struct {
		retries int
		// most is the most bytes the run may pull: the set, then one
		// re-fetch of each suspect at most (the source sends the same
		// bytes again, so no part is fetched a third time), and never
		// more than --retries-1 re-fetches of one part each.
		most int64
	}{
		{10, 2 * set},
		{3, set + 2*int64(len(parts[0].data))},
		{1, set},
	} {
		t.Run(fmt.Sprintf("retries %d", tc.retries), func(t *testing.T) {
			srv := damagedSource(t, parts, 2)
			dest := t.TempDir()
			// One connection: with several, the endgame may split a slow
			// span on a loaded machine, and the server then counts the
			// bytes it sent past the split as well; this test counts
			// the re-fetches of suspects, not the endgame.
			args := append([]string{"fetch", "--progress", "none", "-j", "1", "--retries", fmt.Sprint(tc.retries)}, append(e2eURLs(srv, parts), dest)...)
			r := runHaul(t, nil, args...)
			wantCode(t, r, 3)
			wantSuspects(t, r, parts)
			if got := srv.BytesSent(); got > tc.most || got > set+int64(tc.retries)*set {
				t.Fatalf("the server sent %d bytes for a set of %d with --retries %d; at most %d", got, set, tc.retries, tc.most)
			}
			for _, p := range parts {
				if _, err := os.Stat(filepath.Join(dest, p.name)); err == nil {
					t.Errorf("suspect %s carries its final name", p.name)
				}
			}
		})
	}
	t.Run("retries 0 is a usage error", func(t *testing.T) {
		wantCode(t, runHaul(t, nil, "fetch", "--progress", "none", "--retries", "0", "http://127.0.0.1:1/x", t.TempDir()), 2)
	})
}

// A run after the failure tries the source once more (a new run is a new
// chance) and stops as soon as each suspect comes back the same; repair
// from the source does the same; repair from a good copy cures the set.
func TestSetCRCFailureRunTwiceThenRepair(t *testing.T) {
	parts, data := storedTarGz(t, "site.tar.gz", 1<<20, 200<<10)
	set := e2eTotal(parts)
	srv := damagedSource(t, parts, 3)
	dest, into := t.TempDir(), filepath.Join(t.TempDir(), "into")
	// One connection, for the reason TestSetCRCFailureBoundedRefetch gives.
	run := append([]string{"run", "--progress", "none", "-j", "1"}, append(e2eURLs(srv, parts), dest, "--into", into)...)

	r := runHaul(t, nil, run...)
	wantCode(t, r, 3)
	wantSuspects(t, r, parts)
	if got := srv.BytesSent(); got > 2*set {
		t.Fatalf("the first run pulled %d bytes for a set of %d", got, set)
	}

	srv.ZeroCounters()
	r = runHaul(t, nil, run...)
	wantCode(t, r, 3)
	wantSuspects(t, r, parts)
	if got := srv.BytesSent(); got > set {
		t.Fatalf("the second run pulled %d bytes; each suspect once at most (%d)", got, set)
	}
	if _, err := os.Stat(into); err == nil {
		t.Fatal("a tree was restored from a set that does not decode")
	}

	srv.ZeroCounters()
	r = runHaul(t, nil, "repair", "--progress", "none", "-j", "1", dest)
	wantCode(t, r, 3)
	if !strings.Contains(r.stderr, "haul repair --from") {
		t.Fatalf("repair from the damaged source does not name the fix:\n%s", r.stderr)
	}
	if got := srv.BytesSent(); got > set {
		t.Fatalf("repair pulled %d bytes; each suspect once at most (%d)", got, set)
	}

	good := t.TempDir()
	e2eWriteDir(t, good, parts)
	wantCode(t, runHaul(t, nil, "repair", "--progress", "none", "--from", good+"/", dest), 0)
	e2eIdentical(t, dest, parts)
	wantCode(t, runHaul(t, nil, "restore", "--progress", "none", dest, "--into", into), 0)
	got, err := os.ReadFile(filepath.Join(into, "data.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the restored file differs from the source's (%v)", err)
	}
}

// Damage in transit (the source's copy is good) is cured by fetching the
// suspects again until the set decodes, each at most once.
func TestSetCRCFailureInTransitCured(t *testing.T) {
	parts, _ := storedTarGz(t, "site.tar.gz", 1<<20, 200<<10)
	set := e2eTotal(parts)
	srv := e2eServe(t, parts, testenv.FlipBits(parts[2].name, 1, int64(len(parts[2].data)/2)))
	dest := t.TempDir()
	wantCode(t, runHaul(t, nil, append([]string{"fetch", "--progress", "none", "-j", "1"}, append(e2eURLs(srv, parts), dest)...)...), 0)
	e2eIdentical(t, dest, parts)
	if got := srv.BytesSent(); got > 2*set {
		t.Fatalf("the server sent %d bytes for a set of %d", got, set)
	}
}
