package chunk

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

const mib = 1 << 20

// night is a journal of the kind the team kept by hand: a run killed during
// fetch, a run that finishes the job with a repair and a restore, and a
// last cron run that finds nothing to do.
func night() []Event {
	t0 := time.Date(2026, 11, 20, 2, 15, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	ev := func(run string, d time.Duration, e Event) Event {
		e.Run, e.Time = run, at(d)
		if e.Cmd == "" {
			e.Cmd = "run"
		}
		return e
	}
	const a, b, c = "r1", "r2", "r3"
	return []Event{
		// Run 1: killed 1h into the fetch.
		ev(a, 0, Event{Event: EventRunStart, PID: 4242}),
		ev(a, 0, Event{Event: EventStepStart, Step: StepFetch}),
		ev(a, 40*time.Minute, Event{Event: EventPartFetched, Step: StepFetch, Part: "site.tar.gz", Bytes: 100 * mib}),
		ev(a, 41*time.Minute, Event{Event: EventPartVerified, Part: "site.tar.gz", VerifiedBy: []string{"sha256:SHA256SUMS"}}),
		ev(a, 60*time.Minute, Event{Event: EventProgress, Bytes: 150 * mib}),

		// Run 2: resumes, finds a broken part, repairs it, restores.
		ev(b, 75*time.Minute, Event{Event: EventRunStart, PID: 5151}),
		ev(b, 75*time.Minute, Event{Event: EventStepStart, Step: StepFetch}),
		ev(b, 120*time.Minute, Event{Event: EventPartFetched, Part: "site.tar.gz.1", Bytes: 100 * mib}),
		ev(b, 121*time.Minute, Event{Event: EventPartBroken, Part: "site.tar.gz.1", Message: "sha256 mismatch at piece 12"}),
		ev(b, 150*time.Minute, Event{Event: EventPartFetched, Part: "site.tar.gz.2", Bytes: 80 * mib}),
		ev(b, 150*time.Minute, Event{Event: EventPartVerified, Part: "site.tar.gz.2"}),
		ev(b, 150*time.Minute, Event{Event: EventStepEnd, Step: StepFetch, Bytes: 180 * mib, Seconds: 75 * 60, ExitCode: new(3)}),
		ev(b, 150*time.Minute, Event{Event: EventStepStart, Step: StepVerify}),
		ev(b, 155*time.Minute, Event{Event: EventStepEnd, Step: StepVerify, Seconds: 300}),
		ev(b, 155*time.Minute, Event{Event: EventStepStart, Step: StepRepair}),
		ev(b, 165*time.Minute, Event{Event: EventPartRepaired, Part: "site.tar.gz.1", From: "ssh://backup@nas/srv/site", Bytes: 8 * mib}),
		ev(b, 165*time.Minute, Event{Event: EventStepEnd, Step: StepRepair, Bytes: 8 * mib, Seconds: 600}),
		ev(b, 165*time.Minute, Event{Event: EventStepStart, Step: StepRestore}),
		ev(b, 165*time.Minute, Event{Event: EventRestoreStart}),
		ev(b, 168*time.Minute, Event{Event: EventRestoreEnd, Seconds: 180, Bytes: 900 * mib}),
		ev(b, 168*time.Minute, Event{Event: EventStepEnd, Step: StepRestore, Seconds: 180}),
		ev(b, 168*time.Minute, Event{Event: EventRunEnd, ExitCode: new(0), Bytes: 188 * mib, Seconds: 93 * 60}),

		// Run 3: the next cron run: nothing to do.
		ev(c, 180*time.Minute, Event{Event: EventRunStart, PID: 6161}),
		ev(c, 180*time.Minute+time.Second, Event{Event: EventRunEnd, ExitCode: new(0)}),
	}
}

func TestBuildReport(t *testing.T) {
	r := BuildReport(night())
	if len(r.Runs) != 3 {
		t.Fatalf("%d runs, want 3", len(r.Runs))
	}
	t.Run("interrupted run", func(t *testing.T) {
		run := r.Runs[0]
		if !run.Interrupted || run.Outcome != OutcomeInterrupted || run.ExitCode != nil {
			t.Errorf("run 1: interrupted %v outcome %q exit %v", run.Interrupted, run.Outcome, run.ExitCode)
		}
		if run.PID != 4242 || run.Cmd != "run" || run.ID != "r1" {
			t.Errorf("run 1 identity: %+v", run)
		}
		if run.Seconds != 3600 {
			t.Errorf("run 1 lasted %v s until its last sign of life, want 3600", run.Seconds)
		}
		if run.Bytes != 150*mib {
			t.Errorf("run 1 pulled %d, want the progress checkpoint 150 MiB", run.Bytes)
		}
		if len(run.Steps) != 1 || !run.Steps[0].Interrupted || run.Steps[0].Seconds != 3600 {
			t.Errorf("run 1 steps: %+v", run.Steps)
		}
		if run.PartsFetched != 1 || run.PartsVerified != 1 || run.RestoreSeconds != nil {
			t.Errorf("run 1 counts: %+v", run)
		}
	})
	t.Run("full run", func(t *testing.T) {
		run := r.Runs[1]
		if run.Interrupted || run.Outcome != OutcomeDone || run.ExitCode == nil || *run.ExitCode != 0 {
			t.Errorf("run 2: %+v", run)
		}
		if run.Seconds != 93*60 || run.Bytes != 188*mib {
			t.Errorf("run 2: %v s, %d bytes", run.Seconds, run.Bytes)
		}
		// The rate is over the time spent moving data: fetch + repair.
		if want := float64(188*mib) / (75*60 + 600); math.Abs(run.BytesPerSecond-want) > 1e-6 {
			t.Errorf("run 2 rate %v, want %v", run.BytesPerSecond, want)
		}
		if run.PartsFetched != 2 || run.PartsVerified != 1 || run.PartsBroken != 1 || run.PartsRepaired != 1 {
			t.Errorf("run 2 counts: fetched %d verified %d broken %d repaired %d", run.PartsFetched, run.PartsVerified, run.PartsBroken, run.PartsRepaired)
		}
		if run.RestoreSeconds == nil || *run.RestoreSeconds != 180 {
			t.Errorf("run 2 restore seconds %v", run.RestoreSeconds)
		}
		var names []string
		for _, s := range run.Steps {
			names = append(names, s.Name)
			if s.Interrupted {
				t.Errorf("step %s interrupted", s.Name)
			}
		}
		if !slices.Equal(names, []string{"fetch", "verify", "repair", "restore"}) {
			t.Errorf("steps %v", names)
		}
		if f := run.Steps[0]; f.Seconds != 75*60 || f.Bytes != 180*mib || f.ExitCode == nil || *f.ExitCode != 3 {
			t.Errorf("fetch step %+v", f)
		}
		var kinds []string
		for _, e := range run.Events {
			kinds = append(kinds, e.Event)
		}
		if !slices.Equal(kinds, []string{EventPartBroken, EventPartRepaired}) {
			t.Errorf("notable events %v", kinds)
		}
	})
	t.Run("nothing to do", func(t *testing.T) {
		run := r.Runs[2]
		if run.Outcome != OutcomeDone || run.Bytes != 0 || run.Seconds != 1 || len(run.Steps) != 0 {
			t.Errorf("run 3: %+v", run)
		}
	})
}

func TestBuildReportOutcomes(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)
	tests := []struct {
		code *int
		want string
	}{
		{new(0), OutcomeDone},
		{new(1), OutcomeFailed},
		{new(2), OutcomeUsage},
		{new(3), OutcomeIntegrity},
		{new(75), OutcomeIncomplete},
		{new(9), OutcomeFailed},
		{nil, OutcomeFailed},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			r := BuildReport([]Event{
				{Time: t0, Run: "x", Event: EventRunStart, Cmd: "fetch"},
				{Time: t0.Add(time.Minute), Run: "x", Event: EventRunEnd, ExitCode: tt.code},
			})
			if got := r.Runs[0].Outcome; got != tt.want || r.Runs[0].Interrupted {
				t.Fatalf("outcome %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBuildReportEdgeCases(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)
	t.Run("empty", func(t *testing.T) {
		r := BuildReport(nil)
		if r.Runs == nil || len(r.Runs) != 0 {
			t.Fatalf("%+v: want an empty, non-nil list (JSON [])", r)
		}
	})
	t.Run("no run_start", func(t *testing.T) {
		// A journal whose first lines were lost still reports the run.
		r := BuildReport([]Event{
			{Time: t0, Run: "x", Cmd: "fetch", Event: EventPartFetched, Part: "a", Bytes: 10},
			{Time: t0.Add(10 * time.Second), Run: "x", Cmd: "fetch", Event: EventRunEnd, ExitCode: new(0)},
		})
		run := r.Runs[0]
		if run.Cmd != "fetch" || !run.Start.Equal(t0) || run.Seconds != 10 || run.Bytes != 10 || run.BytesPerSecond != 1 {
			t.Fatalf("%+v", run)
		}
	})
	t.Run("interrupted step ends at the next", func(t *testing.T) {
		r := BuildReport([]Event{
			{Time: t0, Run: "x", Event: EventRunStart},
			{Time: t0, Run: "x", Event: EventStepStart, Step: StepFetch},
			{Time: t0.Add(time.Minute), Run: "x", Event: EventStepStart, Step: StepVerify},
			{Time: t0.Add(3 * time.Minute), Run: "x", Event: EventStepEnd, Step: StepVerify},
			{Time: t0.Add(4 * time.Minute), Run: "x", Event: EventRunEnd, ExitCode: new(3)},
		})
		s := r.Runs[0].Steps
		if len(s) != 2 || !s[0].Interrupted || s[0].Seconds != 60 || s[1].Interrupted || s[1].Seconds != 120 {
			t.Fatalf("%+v", s)
		}
	})
	t.Run("interrupted restore", func(t *testing.T) {
		r := BuildReport([]Event{
			{Time: t0, Run: "x", Cmd: "restore", Event: EventRunStart},
			{Time: t0, Run: "x", Event: EventRestoreStart},
			{Time: t0.Add(30 * time.Second), Run: "x", Event: EventWarning, Message: "slow disk"},
		})
		run := r.Runs[0]
		if run.RestoreSeconds == nil || *run.RestoreSeconds != 30 || !run.Interrupted {
			t.Fatalf("%+v", run)
		}
	})
}

func TestReportJSONFieldNames(t *testing.T) {
	data, err := json.Marshal(BuildReport(night()))
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Runs []map[string]json.RawMessage `json:"runs"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	want := []string{"id", "cmd", "pid", "start", "end", "seconds", "exit_code", "outcome", "interrupted", "bytes",
		"bytes_per_second", "parts_fetched", "parts_verified", "parts_broken", "parts_repaired", "parts_changed",
		"restore_seconds", "steps", "events"}
	for _, k := range want {
		if _, ok := raw.Runs[1][k]; !ok {
			t.Errorf("run has no %q field: %s", k, data)
		}
	}
	// Null, not missing or 0, where nothing is known.
	if string(raw.Runs[0]["exit_code"]) != "null" || string(raw.Runs[0]["restore_seconds"]) != "null" {
		t.Errorf("interrupted run: exit_code %s, restore_seconds %s; want null", raw.Runs[0]["exit_code"], raw.Runs[0]["restore_seconds"])
	}
	if string(raw.Runs[2]["steps"]) != "[]" || string(raw.Runs[2]["events"]) != "[]" {
		t.Errorf("empty lists should be [], got steps %s events %s", raw.Runs[2]["steps"], raw.Runs[2]["events"])
	}
	var step map[string]json.RawMessage
	var steps []json.RawMessage
	json.Unmarshal(raw.Runs[1]["steps"], &steps)
	json.Unmarshal(steps[0], &step)
	for _, k := range []string{"name", "start", "end", "seconds", "bytes", "exit_code", "interrupted"} {
		if _, ok := step[k]; !ok {
			t.Errorf("step has no %q field: %s", k, steps[0])
		}
	}
}

func TestReportWriteText(t *testing.T) {
	var buf bytes.Buffer
	if err := BuildReport(night()).WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Logf("\n%s", out)
	local := func(d time.Duration) string {
		return time.Date(2026, 11, 20, 2, 15, 0, 0, time.UTC).Add(d).Local().Format("15:04:05")
	}
	blocks := strings.Split(out, "\n\n")
	if len(blocks) != 3 {
		t.Fatalf("%d blocks, want one per run", len(blocks))
	}
	for _, tt := range []struct {
		block int
		want  []string
	}{
		{0, []string{"1h0m", "haul run", "interrupted", "[run r1]", "pulled 150 MiB", "parts: 1 fetched, 1 verified",
			local(0) + "  fetch    1h0m  (interrupted)"}},
		{1, []string{
			local(75*time.Minute) + " - " + local(168*time.Minute) + "  1h33m  haul run  exit 0 (done)  [run r2]",
			"pulled 188 MiB at 37.7 KiB/s; parts: 2 fetched, 1 verified, 1 broken, 1 repaired; restore 3m0s",
			local(75*time.Minute) + "  fetch    1h15m  180 MiB at 41.0 KiB/s  (exit 3)",
			local(121*time.Minute) + "  broken   site.tar.gz.1: sha256 mismatch at piece 12",
			local(150*time.Minute) + "  verify   5m0s",
			local(165*time.Minute) + "  repaired site.tar.gz.1 from ssh://backup@nas/srv/site (8.0 MiB)",
			local(165*time.Minute) + "  restore  3m0s",
		}},
		{2, []string{"1s  haul run  exit 0 (done)", "pulled nothing"}},
	} {
		for _, w := range tt.want {
			if !strings.Contains(blocks[tt.block], w) {
				t.Errorf("run %d block lacks %q:\n%s", tt.block+1, w, blocks[tt.block])
			}
		}
	}
	// The timeline is in time order: the broken part sits between fetch and verify.
	b := blocks[1]
	if !(strings.Index(b, "  fetch") < strings.Index(b, "broken ") && strings.Index(b, "broken ") < strings.Index(b, "  verify")) {
		t.Errorf("timeline out of order:\n%s", b)
	}
	if strings.ContainsRune(out, '\x1b') {
		t.Error("escape codes in the text report")
	}

	buf.Reset()
	if err := (Report{}).WriteText(&buf); err != nil || buf.String() != "no runs recorded\n" {
		t.Errorf("empty report: %q, %v", buf.String(), err)
	}
	if err := BuildReport(night()).WriteText(failWriter{}); !errors.Is(err, errBrokenPipe) {
		t.Errorf("write error lost: %v", err)
	}
}

func TestReportCapsListedEvents(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)
	evs := []Event{{Time: t0, Run: "x", Event: EventRunStart}}
	for i := range 50 {
		evs = append(evs, Event{Time: t0.Add(time.Duration(i) * time.Second), Run: "x", Event: EventWarning, Message: "retrying"})
	}
	r := BuildReport(evs)
	if len(r.Runs[0].Events) != 50 {
		t.Fatalf("JSON report lists %d events, want all 50", len(r.Runs[0].Events))
	}
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "retrying"); n != maxNotes {
		t.Errorf("text lists %d events, want %d", n, maxNotes)
	}
	if !strings.Contains(buf.String(), "and 30 more events") {
		t.Errorf("no note of the events left out:\n%s", buf.String())
	}
}

// TestReportFromJournal runs the whole path: events written by Journal, read
// back, summarised.
func TestReportFromJournal(t *testing.T) {
	dest := t.TempDir()
	j := startJournal(t, dest, "fetch", "")
	if err := j.Log(Event{Event: EventPartFetched, Part: "a", Bytes: 42}); err != nil {
		t.Fatal(err)
	}
	if err := j.End(75, 42, "--max-time 2h reached; state saved"); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	evs, err := ReadJournal(dest)
	if err != nil {
		t.Fatal(err)
	}
	r := BuildReport(evs)
	if len(r.Runs) != 1 {
		t.Fatalf("%d runs", len(r.Runs))
	}
	run := r.Runs[0]
	if run.ID != j.RunID() || run.Cmd != "fetch" || run.Outcome != OutcomeIncomplete || run.Bytes != 42 || run.PartsFetched != 1 {
		t.Fatalf("%+v", run)
	}
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "exit 75 (incomplete)") || !strings.Contains(buf.String(), "--max-time 2h reached") {
		t.Errorf("text:\n%s", buf.String())
	}
}

var errBrokenPipe = errors.New("broken pipe")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errBrokenPipe }
