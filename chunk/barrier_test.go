package chunk

import (
	"errors"
	"os"
	"testing"
	"time"
)

// The barrier (a fetch: the fsync of DEST that makes proven parts' renames
// durable) runs before the records or the snapshot that may rely on it
// are on disk, and when it fails nothing of them is.
func TestStoreBarrierRunsBeforeRecordsAreDurable(t *testing.T) {
	dest := t.TempDir()
	s := &State{PieceSize: 4, Parts: []*Part{{Name: "a.bin", Size: 8, Status: Pending}}}
	st := NewStore(dest)
	var calls int
	var logAtBarrier []int64
	st.Barrier = func() error {
		calls++
		if fi, err := os.Stat(LogPath(dest)); err == nil {
			logAtBarrier = append(logAtBarrier, fi.Size())
		}
		return nil
	}
	if err := st.Snapshot(s); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("snapshot ran the barrier %d times, want 1", calls)
	}
	before, err := os.Stat(LogPath(dest))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Append(PieceRecord("a.bin", 0, sumOf(0))); err != nil {
		t.Fatal(err)
	}
	if calls != 2 || logAtBarrier[len(logAtBarrier)-1] != before.Size() {
		t.Fatalf("append: barrier calls %d, log sizes seen %v; want the barrier before the log grew past %d", calls, logAtBarrier, before.Size())
	}

	fail := errors.New("fsync DEST: disk gone")
	st.Barrier = func() error { return fail }
	if err := st.Append(PieceRecord("a.bin", 1, sumOf(1))); !errors.Is(err, fail) {
		t.Fatalf("append with a failing barrier: %v, want it to wrap %v", err, fail)
	}
	st.Close()
	got, err := Load(dest)
	if err != nil {
		t.Fatal(err)
	}
	if p := got.Parts[0]; !p.Done.Has(0) || p.Done.Has(1) {
		t.Fatalf("after a failed barrier the state has pieces %v, want piece 0 only", p.Done)
	}
}

// StatusEvents folds part events, yet status finds the same rate as from
// the whole journal, also for a run killed before run_end.
func TestStatusEventsSameRate(t *testing.T) {
	dest := t.TempDir()
	j, err := OpenJournal(dest, "fetch")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)
	j.now = func() time.Time { return t0 }
	must(t, j.Log(Event{Time: t0, Event: EventRunStart}))
	must(t, j.Log(Event{Time: t0, Event: EventStepStart, Step: StepFetch}))
	for i := 0; i < 500; i++ {
		at := t0.Add(time.Duration(i+1) * 10 * time.Millisecond)
		part := "p" + string(rune('a'+i%26)) + time.Duration(i).String()
		must(t, j.Log(Event{Time: at, Event: EventPartFetched, Part: part, Bytes: 1000}))
		must(t, j.Log(Event{Time: at, Event: EventPartVerified, Part: part, VerifiedBy: []string{"sha256:SHA256SUMS"}}))
		if i == 250 {
			must(t, j.Log(Event{Time: at, Event: EventWarning, Message: "slow"}))
		}
	}
	// Killed: no step_end, no run_end; the part events carry the bytes.
	must(t, j.Close())
	all, err := ReadJournal(dest)
	if err != nil {
		t.Fatal(err)
	}
	folded, err := StatusEvents(dest)
	if err != nil {
		t.Fatal(err)
	}
	if len(folded) > 6 {
		t.Fatalf("StatusEvents kept %d of %d events, want the part events folded", len(folded), len(all))
	}
	st := &State{PieceSize: 1000, Parts: []*Part{{Name: "left", Size: 5000, Status: Pending}}}
	now := t0.Add(time.Hour)
	want, got := BuildStatus(st, all, now), BuildStatus(st, folded, now)
	if want.Rate <= 0 || got.Rate != want.Rate || got.Plan != want.Plan {
		t.Fatalf("rate from folded events %v (%q), from all %v (%q)", got.Rate, got.Plan, want.Rate, want.Plan)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
