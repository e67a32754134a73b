package contact

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/haul-dev/haul/fetch/source/open"
)

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{24 * time.Hour: "24h", 90 * time.Minute: "1h30m", time.Minute: "1m", time.Millisecond: "1ms", 10 * time.Second: "10s"} {
		if got := shortDuration(d); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}

// TestEnd: the failure clock across runs — started by the first run that
// ends with the network down, kept by the next, restarted by a run that
// moved bytes, stopped by one that reached the source, and read against
// --give-up-after (never when below zero).
func TestEnd(t *testing.T) {
	dest := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dest, ".haul"), 0o700); err != nil {
		t.Fatal(err)
	}
	target := open.Target{ID: "http://h:1", Kind: "server", Addr: "http://h:1"}
	down := errors.New("network down")
	run := func(networkDown bool, pulled int64, after time.Duration) (Record, error) {
		c := Load(dest, target)
		err := c.End(down, networkDown, pulled, after)
		return Load(dest, target).Rec, err
	}
	rec, err := run(true, 0, time.Hour)
	if err != down || rec.FailingSince == nil {
		t.Fatalf("first failure: %v, %+v", err, rec)
	}
	first := *rec.FailingSince
	if rec, _ = run(true, 0, time.Hour); !rec.FailingSince.Equal(first) {
		t.Fatalf("the clock moved on a second failure: %v → %v", first, rec.FailingSince)
	}
	var gu *GaveUpError
	if _, err = run(true, 0, time.Nanosecond); !errors.As(err, &gu) || !errors.Is(err, ErrGaveUp) || !errors.Is(err, down) {
		t.Fatalf("past --give-up-after: %v, want a GaveUpError wrapping the run's error", err)
	}
	if _, err = run(true, 0, -1); err != down {
		t.Fatalf("never giving up: %v", err)
	}
	if rec, _ = run(true, 10, time.Hour); !rec.FailingSince.After(first) {
		t.Fatalf("a run that moved bytes did not restart the clock: %v", rec.FailingSince)
	}
	c := Load(dest, target)
	if err := c.Opened(); err != nil {
		t.Fatal(err)
	}
	if err := c.End(nil, false, 0, 0); err != nil {
		t.Fatal(err)
	}
	if rec := Load(dest, target).Rec; rec.FailingSince != nil || rec.Reached == nil {
		t.Fatalf("after a good run: %+v, want reached and no clock", rec)
	}
}
