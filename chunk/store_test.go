package chunk

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/haul-dev/haul/internal/testenv"
)

func TestMain(m *testing.M) {
	if os.Getenv("HAUL_STORE_HELPER") != "" {
		storeHelper(os.Getenv("HAUL_STORE_HELPER"))
		return
	}
	os.Exit(m.Run())
}

// sumOf is the digest the tests record for piece i.
func sumOf(i int) []byte {
	s := sha256.Sum256(binary.LittleEndian.AppendUint64(nil, uint64(i)))
	return s[:]
}

const helperPieces = 20_000

func helperState() *State {
	return &State{PieceSize: 1, Parts: []*Part{{Name: "big.img", Size: helperPieces, Status: Pending}, {Name: "small.img", Size: 10, Status: Pending}}}
}

// storeHelper records pieces of big.img in batches, compacting whenever
// the log outgrows the snapshot, and prints the number of pieces durable
// after each append, until it is killed.
func storeHelper(dest string) {
	st := NewStore(dest)
	s, err := Load(dest)
	if err != nil {
		s = helperState()
	}
	if err := st.Snapshot(s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	p := s.Parts[0]
	next := p.Done.Count(helperPieces)
	out := bufio.NewWriter(os.Stdout)
	for next < helperPieces {
		var recs []Record
		for k := 0; k < 10 && next < helperPieces; k++ {
			p.SetPiece(next, helperPieces, sumOf(next))
			recs = append(recs, PieceRecord(p.Name, next, sumOf(next)))
			next++
		}
		pr := Progress{Piece: next, Bytes: 1, Sum: sumOf(-next)}
		p.SetProgress(pr)
		recs = append(recs, ProgressRecord(p.Name, pr))
		if err := st.Append(recs...); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		// Compactions more often than Full asks, so that kills land in them.
		if st.Full() || next%400 == 0 {
			if err := st.Snapshot(s); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		fmt.Fprintln(out, next)
		out.Flush()
	}
	os.Exit(0)
}

// checkPieces fails unless big.img holds exactly pieces 0…n-1 (n ≥ least),
// each with its digest, and with progress the progress recorded with the
// last batch acknowledged (see below for one that was not).
func checkPieces(t *testing.T, s *State, least int, progress bool) int {
	t.Helper()
	p := s.Find("big.img")
	n := p.Done.Count(helperPieces)
	if n < least {
		t.Fatalf("%d pieces durable, but the writer was told %d were", n, least)
	}
	for i := 0; i < n; i++ {
		if !p.Done.Has(i) || !bytes.Equal(p.Hashes.Get(i), sumOf(i)) {
			t.Fatalf("piece %d of %d: done %v, digest %x", i, n, p.Done.Has(i), p.Hashes.Get(i))
		}
	}
	if progress && n > 0 && n < helperPieces {
		// The progress record is the last of its batch. A batch the
		// writer was told is durable (n == least) has it; one it was
		// not told about (n > least) may have landed in part, since a
		// SIGKILL can cut a write between pages: each record that
		// landed is whole (CRC-framed) and true, the rest is simply not
		// there. Progress that is there must be the right one.
		pr, ok := p.ProgressOf(n)
		if (ok || n == least) && !bytes.Equal(pr.Sum, sumOf(-n)) {
			t.Fatalf("progress of piece %d after %d pieces (%d acknowledged): %+v", n, n, least, pr)
		}
	}
	return n
}

// TestStoreKill9 kills a process that appends to the store and compacts
// it, at random moments, again and again: every state left behind loads,
// holds every record the writer was told is durable, and nothing torn.
func TestStoreKill9(t *testing.T) {
	dest := t.TempDir()
	rng := rand.New(rand.NewPCG(12, 2026))
	acked, kills, compactions := 0, 0, 0
	for try := 0; try < 40 && kills < 20; try++ {
		cmd, out := testenv.StartChild(t, "HAUL_STORE_HELPER="+dest)
		lines := make(chan int, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				n, _ := strconv.Atoi(sc.Text())
				lines <- n
			}
		}()
		// The delay runs from the writer's first durable batch: each
		// round then lands inside appends and compactions, however slow
		// the process is to start.
		delay := time.Duration(rng.IntN(300)) * time.Millisecond
		var timer <-chan time.Time
	wait:
		for {
			select {
			case n, ok := <-lines:
				if !ok {
					break wait
				}
				acked = max(acked, n)
				if timer == nil && delay > 0 {
					timer, delay = time.After(delay), 0
				}
			case <-timer:
				cmd.Process.Signal(syscall.SIGKILL)
				timer = nil
			}
		}
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok && ee.Sys().(syscall.WaitStatus).Signaled() {
			kills++
		} else if err != nil {
			t.Fatalf("writer failed: %v", err)
		}
		s, err := Load(dest)
		if errors.Is(err, ErrNoState) && acked == 0 {
			continue // killed before its first snapshot
		}
		if err != nil {
			t.Fatalf("after kill %d: %v", kills, err)
		}
		compactions = int(s.Gen)
		checkPieces(t, s, acked, true)
		if s.Find("small.img") == nil {
			t.Fatal("a part vanished")
		}
	}
	if kills < 10 || compactions < 3 {
		t.Fatalf("only %d kills and %d snapshots landed", kills, compactions)
	}
	t.Logf("%d kills, %d snapshots, %d pieces durable", kills, compactions, acked)
}

// TestStoreTornTail cuts the log inside its last record at every byte:
// the state loads with every record before it.
func TestStoreTornTail(t *testing.T) {
	dest := t.TempDir()
	st := NewStore(dest)
	s := helperState()
	if err := st.Snapshot(s); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := st.Append(PieceRecord("big.img", i, sumOf(i))); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(LogPath(dest))
	if err != nil {
		t.Fatal(err)
	}
	full := fi.Size()
	if err := st.Append(PieceRecord("big.img", 3, sumOf(3))); err != nil {
		t.Fatal(err)
	}
	st.Close()
	whole, _ := os.ReadFile(LogPath(dest))
	for cut := full; cut < int64(len(whole)); cut++ {
		if err := os.WriteFile(LogPath(dest), whole[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Load(dest)
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if n := checkPieces(t, s, 3, false); n != 3 {
			t.Fatalf("cut at %d: %d pieces, want 3", cut, n)
		}
	}
	// Garbage after the last record (a torn append of a longer batch) and
	// a flipped byte in the last record: both read as a torn tail.
	for _, bad := range [][]byte{append(bytes.Clone(whole), 0xff, 0x00, 0x00, 0x10, 1, 2, 3), flipLast(whole)} {
		os.WriteFile(LogPath(dest), bad, 0o600)
		s, err := Load(dest)
		if err != nil {
			t.Fatal(err)
		}
		checkPieces(t, s, 3, false)
	}
}

func flipLast(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)-2] ^= 0x40
	return c
}

// TestStoreCompactionInterrupted: a kill between the new snapshot and
// the new log leaves the old log, whose records the snapshot holds; it is
// not applied again. A temp file of a snapshot cut short is ignored.
func TestStoreCompactionInterrupted(t *testing.T) {
	dest := t.TempDir()
	st := NewStore(dest)
	s := helperState()
	if err := st.Snapshot(s); err != nil {
		t.Fatal(err)
	}
	p := s.Parts[0]
	for i := 0; i < 5; i++ {
		p.SetPiece(i, helperPieces, sumOf(i))
		st.Append(PieceRecord(p.Name, i, sumOf(i)))
	}
	st.Close()
	oldLog, _ := os.ReadFile(LogPath(dest))
	// The snapshot that follows forgets piece 2 (a proof sent it back):
	// replaying the old log over it would bring it back.
	p.ClearPiece(2)
	if err := Save(dest, s); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(LogPath(dest), oldLog, 0o600)
	os.WriteFile(filepath.Join(dest, StateDir, ".state.json.tmp123"), []byte(`{"version":2,"parts":[{"na`), 0o600)
	got, err := Load(dest)
	if err != nil {
		t.Fatal(err)
	}
	q := got.Find("big.img")
	if q.Done.Has(2) || !q.Done.Has(4) || q.Done.Count(10) != 4 {
		t.Fatalf("pieces after an interrupted compaction: %08b", q.Done)
	}
}

// TestLoadVersion1 loads a state.json written by haul before the log
// (version 1: hex piece digests, no generation), as DESTs in the middle of
// a fetch have, and carries it over into version 2.
func TestLoadVersion1(t *testing.T) {
	dest := t.TempDir()
	os.MkdirAll(filepath.Join(dest, StateDir), 0o700)
	v1 := `{
 "version": 1,
 "sources": ["s3://bucket/backups/"],
 "piece_size": 4,
 "created": "2026-01-02T03:04:05Z",
 "updated": "2026-01-02T03:05:05Z",
 "parts": [
  {"name": "site.tar.gz.1", "size": 10, "version": "etag-1", "done": "BQ==",
   "hashes": ["0a0b0c0d", "", "01020304"], "piece_hash": "crc32c", "status": "partial"},
  {"name": "site.tar.gz.2", "size": 3, "version": "etag-2", "done": "", "status": "verified",
   "verified_by": ["sha256:SHA256SUMS"], "refs": [{"algo": "sha256", "sum": "ab", "origin": "SHA256SUMS"}]}
 ]
}`
	if err := os.WriteFile(StatePath(dest), []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(s *State) {
		t.Helper()
		p := s.Find("site.tar.gz.1")
		if s.Version == 0 || s.PieceSize != 4 || len(s.Sources) != 1 || p == nil || s.Find("site.tar.gz.2").Status != Verified {
			t.Fatalf("state: %+v", s)
		}
		if !p.Done.Has(0) || p.Done.Has(1) || !p.Done.Has(2) || p.Hashes.Hex(0) != "0a0b0c0d" || p.Hashes.Hex(2) != "01020304" || p.BytesDone(4) != 6 {
			t.Fatalf("pieces of %s: done %08b, digests %x", p.Name, p.Done, p.Hashes.b)
		}
	}
	s, err := Load(dest)
	if err != nil {
		t.Fatal(err)
	}
	check(s)
	if err := Save(dest, s); err != nil {
		t.Fatal(err)
	}
	s2, err := Load(dest)
	if err != nil {
		t.Fatal(err)
	}
	check(s2)
	if s2.Version != StateVersion {
		t.Fatalf("saved as version %d", s2.Version)
	}
}
