package destdir

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/integrity"
)

// followPart writes a part of size random bytes as NAME.partial in a new
// DEST and returns DEST, the part's record (proven by a SHA256SUMS line)
// and its bytes.
func followPart(t *testing.T, size int) (Dir, *chunk.Part, []byte) {
	t.Helper()
	d := Dir(t.TempDir())
	rng := rand.New(rand.NewPCG(1, uint64(size)))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	sum := sha256.Sum256(b)
	p := &chunk.Part{Name: "big.bin", Size: int64(size)}
	p.SetRefs([]integrity.Reference{{Algo: integrity.SHA256, Sum: hex.EncodeToString(sum[:]), Origin: "SHA256SUMS"}})
	if err := os.WriteFile(d.PartialPath(p.Name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return d, p, b
}

// TestFollowerReadsOnlyDurableStretches: the follower hashes a stretch
// only once it is reported durable, so bytes still to be written when an
// earlier stretch is reported (here: garbage in the tail, fixed before the
// tail is reported) never reach the proof; its verdict and CRC-32C are
// those of the pass over the finished file.
func TestFollowerReadsOnlyDurableStretches(t *testing.T) {
	const size = 3<<20 + 12345
	d, p, b := followPart(t, size)
	path := d.PartialPath(p.Name)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const half = size / 2
	if _, err := f.WriteAt(make([]byte, size-half), half); err != nil { // not written yet
		t.Fatal(err)
	}
	fw, err := Follow(context.Background(), d, p, []string{p.Name})
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	fw.Advance(half / 3)
	fw.Advance(half)
	fw.Advance(half / 2) // never backwards
	fw.mu.Lock()
	target := fw.target
	fw.mu.Unlock()
	if target != half {
		t.Fatalf("target %d after Advance(%d), then a lower one", target, half)
	}
	// Only once the first half is read is the tail written, and a moment
	// later, so that a follower reading ahead would have read the zeros.
	for i := 0; fw.pos.Load() < half; i++ {
		if i == 5000 {
			t.Fatalf("the follower read %d of the %d bytes reported durable in 5 s", fw.pos.Load(), half)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if got := fw.pos.Load(); got != half {
		t.Fatalf("the follower read %d bytes, %d were reported durable", got, half)
	}
	if _, err := f.WriteAt(b[half:], half); err != nil {
		t.Fatal(err)
	}
	res, ok := fw.Result(context.Background())
	if !ok || res.Err != nil || !slices.Equal(res.VerifiedBy, []string{"sha256:SHA256SUMS"}) {
		t.Fatalf("Result = %+v, ok %v; want verified by sha256:SHA256SUMS", res, ok)
	}
	after := integrity.VerifyFile(context.Background(), path, p.Name, p.Size, p.Refs(), Checks(path, p.Name, []string{p.Name}))
	if res.CRC32C != after.CRC32C {
		t.Fatalf("CRC-32C %s, the pass after the fact says %s", res.CRC32C, after.CRC32C)
	}
}

// TestFollowerDefersToProve: a follower whose pass cannot stand for the
// part says so (ok false) rather than giving a verdict: the file grew past
// the part's size after the pass, or the pass was stopped. Close is safe
// twice and on nil.
func TestFollowerDefersToProve(t *testing.T) {
	d, p, _ := followPart(t, 1<<20)
	fw, err := Follow(context.Background(), d, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	fw.Advance(p.Size)
	f, err := os.OpenFile(d.PartialPath(p.Name), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("more"))
	f.Close()
	if res, ok := fw.Result(context.Background()); ok {
		t.Fatalf("a part file grown past its size got a verdict: %+v", res)
	}
	fw.Close()
	fw.Close()
	(*Follower)(nil).Close()

	d, p, _ = followPart(t, 1<<20)
	fw, err = Follow(context.Background(), d, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	fw.Close() // stopped before the end
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := fw.Result(ctx); ok {
		t.Fatal("a stopped follower gave a verdict")
	}
}
