package fetch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/internal/testenv"
)

// stopMidPiece fetches parts over a slow link and stops the run (a clean
// stop, as SIGTERM or --until) while every connection is inside a piece.
// It returns the first run's summary and the state it left.
func stopMidPiece(t *testing.T, srv *testenv.FaultServer, dest string, names ...string) (*Summary, *chunk.State) {
	t.Helper()
	var urls []string
	for _, n := range names {
		urls = append(urls, srv.URL(n))
	}
	opts := testOptions(urls[0], dest)
	opts.Sources = urls
	opts.PieceSize = 2 << 20
	// As many connections as pieces at most: no idle one splits a span
	// (the endgame keeps only the progress from a piece's start).
	opts.Connections = 2
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	sum, err := Fetch(ctx, opts)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("stopped run: %v, want ErrInterrupted", err)
	}
	st, lerr := chunk.Load(dest)
	if lerr != nil {
		t.Fatal(lerr)
	}
	var kept int64
	for _, p := range st.Parts {
		kept += p.BytesDone(st.PieceSize)
	}
	// Every byte the stopped run pulled is kept, and the message says so.
	if kept != sum.Pulled || kept == 0 {
		t.Fatalf("the stopped run pulled %d bytes and the state keeps %d", sum.Pulled, kept)
	}
	if !strings.Contains(err.Error(), "inside unfinished pieces") {
		t.Fatalf("the stop message does not say what was kept: %v", err)
	}
	return sum, st
}

// TestStopKeepsProgressInsidePieces is issue 12's target 6 as a
// correctness test: a clean stop in the middle of large pieces keeps every
// byte written, and the rerun pulls exactly the rest.
func TestStopKeepsProgressInsidePieces(t *testing.T) {
	served, dest := t.TempDir(), t.TempDir()
	parts := makeSet(t, served, "db.dump", 2, 3<<20) // pieces of 2 MiB and 1 MiB
	srv := testenv.NewFaultServer(served, testenv.ConnRate(256<<10))
	defer srv.Close()
	first, st := stopMidPiece(t, srv, dest, "db.dump", "db.dump.1")
	inPieces := 0
	for _, p := range st.Parts {
		inPieces += len(p.Partial())
	}
	if inPieces == 0 {
		t.Fatalf("no progress inside a piece recorded after %d bytes", first.Pulled)
	}
	srv.ClearFaults()
	if !srv.WaitIdle(10 * time.Second) {
		t.Fatal("the server still answers the stopped run")
	}
	before := srv.BytesSent()
	opts := testOptions(srv.URL("db.dump"), dest)
	opts.Sources = []string{srv.URL("db.dump"), srv.URL("db.dump.1")}
	opts.PieceSize = 2 << 20
	opts.Connections = 1 // no span split: the server's count is exact
	sum, err := Fetch(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	assertSet(t, dest, parts)
	var total int64
	for _, b := range parts {
		total += int64(len(b))
	}
	sent := srv.BytesSent() - before
	if sum.Pulled != total-first.Pulled || sent != sum.Pulled {
		t.Fatalf("the rerun pulled %d bytes (server sent %d); want exactly the %d the first run did not keep", sum.Pulled, sent, total-first.Pulled)
	}
}

// TestResumedPrefixChangedOnDisk: progress inside a piece is trusted only
// after its bytes, read back, match the digest recorded; a prefix changed
// on disk is fetched again, and nothing wrong is installed.
func TestResumedPrefixChangedOnDisk(t *testing.T) {
	served, dest := t.TempDir(), t.TempDir()
	parts := makeSet(t, served, "vm.img", 1, 4<<20)
	srv := testenv.NewFaultServer(served, testenv.ConnRate(256<<10))
	defer srv.Close()
	first, st := stopMidPiece(t, srv, dest, "vm.img")
	p := st.Find("vm.img")
	if len(p.Partial()) == 0 {
		t.Fatal("no progress inside a piece recorded")
	}
	pr := p.Partial()[0]
	off := int64(pr.Piece)*st.PieceSize + pr.Bytes/2
	f, err := os.OpenFile(filepath.Join(dest, "vm.img.partial"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{^parts["vm.img"][off]}, off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	srv.ClearFaults()
	opts := testOptions(srv.URL("vm.img"), dest)
	opts.PieceSize = 2 << 20
	opts.Connections = 1 // no span split: the bytes pulled are exact
	sum, err := Fetch(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	assertSet(t, dest, parts)
	if want := 4<<20 - first.Pulled + pr.Bytes; sum.Pulled != want {
		t.Fatalf("the rerun pulled %d bytes, want %d (the rest, and the damaged piece's %d bytes again)", sum.Pulled, want, pr.Bytes)
	}
}
