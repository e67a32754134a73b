package chunk

import (
	"strings"
	"testing"
	"time"
)

// TestReportDB: a run killed during the import reports the database step
// as interrupted, lasting until its last sign of life; a resumed run that
// finished reports what it imported and where it resumed; a run that found
// the import done reports it skipped.
func TestReportDB(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 5, 0, 0, 0, time.UTC)
	ev := func(run string, s int, e Event) Event {
		e.Run, e.Time, e.Cmd = run, t0.Add(time.Duration(s)*time.Second), "run"
		return e
	}
	const target = "mysql://bitrix@127.0.0.1/site"
	code := 0
	events := []Event{
		ev("a", 0, Event{Event: EventRunStart}),
		ev("a", 0, Event{Event: EventStepStart, Step: StepDB}),
		ev("a", 0, Event{Event: EventDBStart, Step: StepDB, From: target, Message: "d1"}),
		ev("a", 40, Event{Event: EventWarning, Message: "something"}),
		// killed here: no db_end, no run_end

		ev("b", 100, Event{Event: EventRunStart}),
		ev("b", 100, Event{Event: EventStepStart, Step: StepDB}),
		ev("b", 100, Event{Event: EventDBStart, Step: StepDB, From: target, Bytes: 5000, Message: "d1"}),
		ev("b", 110, Event{Event: EventDBEnd, Step: StepDB, From: target, Bytes: 20000, Statements: 40, Seconds: 10, Message: "the site's dbconn.php point at the database"}),
		ev("b", 110, Event{Event: EventStepEnd, Step: StepDB, Seconds: 10}),
		ev("b", 110, Event{Event: EventRunEnd, ExitCode: &code}),

		ev("c", 200, Event{Event: EventRunStart}),
		ev("c", 200, Event{Event: EventDBSkipped, Step: StepDB, From: target, Message: "already restored"}),
		ev("c", 200, Event{Event: EventRunEnd, ExitCode: &code}),
	}
	rep := BuildReport(events)
	if len(rep.Runs) != 3 {
		t.Fatalf("%d runs", len(rep.Runs))
	}
	a, b, c := rep.Runs[0].DB, rep.Runs[1].DB, rep.Runs[2].DB
	if a == nil || !a.Interrupted || a.Seconds != 40 || a.Target != target {
		t.Errorf("killed run: %+v", a)
	}
	if b == nil || b.Interrupted || b.ResumedFrom != 5000 || b.Bytes != 20000 || b.Statements != 40 || b.BytesPerSecond != 2000 || b.StatementsPerSecond != 4 {
		t.Errorf("resumed run: %+v", b)
	}
	if c == nil || !c.Skipped {
		t.Errorf("skipping run: %+v", c)
	}
	var out strings.Builder
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"db       40s  0 B, 0 statements at 0 B/s (0 statements/s) into " + target + "  (interrupted)",
		"db       10s  19.5 KiB, 40 statements at 2.0 KiB/s (4 statements/s), resumed at byte 5000 into " + target + ": the site's dbconn.php",
		"db       skipped: already restored",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestStatusDB: a set whose parts are done is incomplete while its
// database import is not (exit 75 from haul status), and done after.
func TestStatusDB(t *testing.T) {
	r := StatusReport{State: SetDone}
	r.AddDB(DBStatus{State: DBImporting, BytesTotal: 100, BytesDone: 40})
	if r.State != SetIncomplete {
		t.Fatalf("state %s while importing", r.State)
	}
	r = StatusReport{State: SetDone}
	r.AddDB(DBStatus{State: DBDone})
	if r.State != SetDone {
		t.Fatalf("state %s after the import", r.State)
	}
	r = StatusReport{State: SetBroken}
	r.AddDB(DBStatus{State: DBImporting})
	if r.State != SetBroken {
		t.Fatalf("a broken set became %s", r.State)
	}
}
