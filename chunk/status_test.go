package chunk

import (
	"strings"
	"testing"
	"time"
)

func TestBuildStatusPlan(t *testing.T) {
	now := time.Date(2026, 11, 20, 0, 50, 0, 0, time.Local)
	const piece = 1 << 20
	st := &State{PieceSize: piece, Parts: []*Part{
		{Name: "site.tar.gz", Size: 4 * piece, Status: Verified, VerifiedBy: []string{"gzip"}},
		{Name: "site.tar.gz.1", Size: 40 << 30, Status: Partial},
		{Name: "site.tar.gz.2", Size: 2 * piece, Status: Pending},
	}}
	st.Parts[1].Done.Set(0)
	code := 75
	start := now.Add(-time.Hour)
	events := []Event{
		{Time: start, Run: "r1", Event: EventRunStart, Cmd: "fetch"},
		{Time: start, Run: "r1", Event: EventDeadline, Message: now.Add(6*time.Hour + 10*time.Minute).Format(time.RFC3339)},
		{Time: start, Run: "r1", Event: EventStepStart, Step: StepFetch},
		{Time: start.Add(1000 * time.Second), Run: "r1", Event: EventStepEnd, Step: StepFetch, Seconds: 1000, Bytes: 1100 << 20},
		{Time: start.Add(1000 * time.Second), Run: "r1", Event: EventRunEnd, ExitCode: &code, Seconds: 1000, Bytes: 1100 << 20},
	}
	r := BuildStatus(st, events, now)
	if r.State != SetIncomplete {
		t.Fatalf("state %q, want incomplete", r.State)
	}
	if r.BytesDone != 5*piece || r.BytesTotal != 6*piece+40<<30 {
		t.Fatalf("bytes %d of %d", r.BytesDone, r.BytesTotal)
	}
	if r.ETASeconds == nil || *r.ETASeconds < 30000 || *r.ETASeconds > 45000 {
		t.Fatalf("eta %v, want about 10 hours at 1.1 MiB/s", r.ETASeconds)
	}
	for _, want := range []string{"left at 1.1 MiB/s: about", "--until", "leaves 6h10m", "not enough"} {
		if !strings.Contains(r.Plan, want) {
			t.Errorf("plan %q lacks %q", r.Plan, want)
		}
	}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil || !strings.Contains(b.String(), "plan: ") {
		t.Fatalf("text: %v\n%s", err, b.String())
	}

	st.Parts[2].Status = Broken
	if got := BuildStatus(st, nil, now); got.State != SetBroken || got.ETASeconds != nil {
		t.Fatalf("with a broken part and no journal: state %q eta %v", got.State, got.ETASeconds)
	}
}

// TestBuildStatusSources: status shows the bytes per source of the last
// run that moved bytes when it had mirrors; none for a single source, and
// none (not an earlier run's) when that run was killed before a step end.
func TestBuildStatusSources(t *testing.T) {
	now := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	st := &State{PieceSize: 1 << 20, Parts: []*Part{{Name: "a.tar", Size: 300, Status: Verified}}}
	code := 0
	run := func(id string, at time.Time, sources map[string]int64, ended bool) []Event {
		evs := []Event{
			{Time: at, Run: id, Event: EventRunStart, Cmd: "fetch"},
			{Time: at, Run: id, Event: EventStepStart, Step: StepFetch},
			{Time: at.Add(5 * time.Second), Run: id, Event: EventProgress, Bytes: 300},
		}
		if !ended {
			return evs
		}
		var sum int64
		for _, name := range []string{"http://p:1/a.tar", "sftp://u@m:22/d/"} {
			if n, ok := sources[name]; ok {
				evs = append(evs, Event{Time: at.Add(10 * time.Second), Run: id, Event: EventSourceBytes, From: name, Bytes: n})
				sum += n
			}
		}
		return append(evs,
			Event{Time: at.Add(10 * time.Second), Run: id, Event: EventStepEnd, Step: StepFetch, Bytes: sum, Seconds: 10},
			Event{Time: at.Add(10 * time.Second), Run: id, Event: EventRunEnd, ExitCode: &code, Bytes: sum, Seconds: 10})
	}
	mirrored := run("r1", now.Add(-time.Hour), map[string]int64{"http://p:1/a.tar": 200, "sftp://u@m:22/d/": 100}, true)
	for _, tc := range []struct {
		name   string
		events []Event
		want   map[string]int64
	}{
		{"mirrors", mirrored, map[string]int64{"http://p:1/a.tar": 200, "sftp://u@m:22/d/": 100}},
		{"one source", run("r1", now.Add(-time.Hour), map[string]int64{"http://p:1/a.tar": 300}, true), nil},
		{"killed after a run with mirrors", append(mirrored, run("r2", now.Add(-time.Minute), nil, false)...), nil},
		{"a verify after it moves nothing", append(mirrored, Event{Time: now, Run: "r3", Event: EventRunStart, Cmd: "verify"}), map[string]int64{"http://p:1/a.tar": 200, "sftp://u@m:22/d/": 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := BuildStatus(st, tc.events, now)
			got := map[string]int64{}
			for _, s := range r.Sources {
				got[s.Source] = s.Bytes
				if s.BytesPerSecond <= 0 {
					t.Errorf("source %s: rate %v", s.Source, s.BytesPerSecond)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("sources %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("source %s: %d bytes, want %d", k, got[k], v)
				}
			}
			var b strings.Builder
			if err := r.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			if shown := strings.Contains(b.String(), "sources (last run): http://p:1/a.tar 200 B"); shown != (tc.want != nil) {
				t.Errorf("text shows the sources: %v, want %v\n%s", shown, tc.want != nil, b.String())
			}
		})
	}
}
