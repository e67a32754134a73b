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
