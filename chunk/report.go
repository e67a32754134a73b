package chunk

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/haul-dev/haul/internal/units"
)

// Run outcomes (RunReport.Outcome), named after the SPEC's exit codes.
const (
	OutcomeDone        = "done"        // exit 0
	OutcomeFailed      = "failed"      // exit 1 (or any code not listed): needs a person
	OutcomeUsage       = "usage"       // exit 2
	OutcomeIntegrity   = "integrity"   // exit 3: broken or missing parts remain
	OutcomeIncomplete  = "incomplete"  // exit 75: deadline, signal, network, lock
	OutcomeInterrupted = "interrupted" // no run_end: killed or crashed
)

// Report is the journal summarised per run, for `haul report`. Field names
// are stable (haul report --json).
type Report struct {
	Runs []RunReport `json:"runs"`
}

// RunReport is one run of a command.
type RunReport struct {
	ID  string `json:"id"`
	Cmd string `json:"cmd"`
	PID int    `json:"pid,omitempty"`
	// Start is the run_start time (or the run's first event).
	Start time.Time `json:"start"`
	// End is the run_end time; for an interrupted run, its last event.
	End     time.Time `json:"end"`
	Seconds float64   `json:"seconds"`
	// ExitCode is null when the run was interrupted.
	ExitCode    *int   `json:"exit_code"`
	Outcome     string `json:"outcome"`
	Interrupted bool   `json:"interrupted"`
	// Message is the run_end message (why it stopped).
	Message string `json:"message,omitempty"`
	// Bytes is what the run pulled over the link.
	Bytes int64 `json:"bytes"`
	// BytesPerSecond is Bytes over the time spent moving data (the fetch
	// and repair steps when the run has them, else the whole run).
	BytesPerSecond float64 `json:"bytes_per_second"`
	PartsFetched   int     `json:"parts_fetched"`
	PartsVerified  int     `json:"parts_verified"`
	PartsBroken    int     `json:"parts_broken"`
	PartsRepaired  int     `json:"parts_repaired"`
	PartsChanged   int     `json:"parts_changed"`
	// RestoreSeconds is the time spent unpacking; null when the run did not
	// restore.
	RestoreSeconds *float64     `json:"restore_seconds"`
	Steps          []StepReport `json:"steps"`
	// Sources are the bytes each source (the SOURCE, each --mirror)
	// delivered in the run's fetch and repair steps, in the order they
	// were first named; they sum to Bytes.
	Sources []SourceReport `json:"sources"`
	// DB is the database import of the run (--db); null when it had none.
	DB *DBReport `json:"db"`
	// Cloud is the Bitrix cloud files step of the run; null when it had
	// none.
	Cloud *CloudReport `json:"cloud"`
	// Events are the ones an operator reads afterwards: broken, repaired
	// and changed parts, deadlines, warnings.
	Events []Event `json:"events"`
}

// StepReport is one step of haul run.
type StepReport struct {
	Name  string    `json:"name"`
	Start time.Time `json:"start"`
	// End is the step_end time; for an interrupted step, the last event of
	// the step or the start of the next.
	End         time.Time `json:"end"`
	Seconds     float64   `json:"seconds"`
	Bytes       int64     `json:"bytes"`
	ExitCode    *int      `json:"exit_code,omitempty"`
	Interrupted bool      `json:"interrupted"`
	Message     string    `json:"message,omitempty"`
}

// SourceReport is what one source delivered in a run.
type SourceReport struct {
	Source string `json:"source"`
	Bytes  int64  `json:"bytes"`
	// BytesPerSecond is Bytes over the time spent moving data.
	BytesPerSecond float64 `json:"bytes_per_second"`
}

// notable are the events a report lists one by one.
var notable = map[string]bool{
	EventPartBroken: true, EventPartRepaired: true, EventPartChanged: true,
	EventDeadline: true, EventWarning: true, EventDBSkipped: true,
}

// BuildReport groups events by run, in the order runs first appear, and sums
// up each run. Events need not be complete: a run with no run_end is
// reported as interrupted, a step with no step_end as interrupted at the
// last sign of life.
func BuildReport(events []Event) Report {
	var order []string
	byRun := make(map[string][]Event)
	for _, e := range events {
		if _, ok := byRun[e.Run]; !ok {
			order = append(order, e.Run)
		}
		byRun[e.Run] = append(byRun[e.Run], e)
	}
	r := Report{Runs: make([]RunReport, 0, len(order))}
	for _, id := range order {
		r.Runs = append(r.Runs, buildRun(id, byRun[id]))
	}
	return r
}

func buildRun(id string, evs []Event) RunReport {
	run := RunReport{ID: id, Start: evs[0].Time, End: evs[0].Time, Steps: []StepReport{}, Events: []Event{}, Sources: []SourceReport{}}
	var (
		ended                 bool
		endBytes, progress    int64
		stepBytes, partBytes  int64
		restoreStart          time.Time
		restoreSecs           float64
		restored              bool
		fetched, verified     = map[string]bool{}, map[string]bool{}
		broken, repaired, chg = map[string]bool{}, map[string]bool{}, map[string]bool{}
		open                  = map[string]int{} // step name → index in run.Steps while running
	)
	count := func(set map[string]bool, e Event) {
		key := e.Part
		if key == "" {
			key = fmt.Sprintf("#%d", len(set)) // unnamed: count each event
		}
		set[key] = true
	}
	for _, e := range evs {
		if run.Cmd == "" {
			run.Cmd = e.Cmd
		}
		if e.Time.Before(run.Start) {
			run.Start = e.Time
		}
		if e.Time.After(run.End) {
			run.End = e.Time
		}
		if notable[e.Event] {
			run.Events = append(run.Events, e)
		}
		switch e.Event {
		case EventRunStart:
			run.Start = e.Time
			run.PID = e.PID
		case EventRunEnd:
			ended = true
			run.ExitCode = e.ExitCode
			run.Message = e.Message
			endBytes = e.Bytes
		case EventStepStart:
			open[e.Step] = len(run.Steps)
			run.Steps = append(run.Steps, StepReport{Name: e.Step, Start: e.Time, End: e.Time, Interrupted: true})
		case EventStepEnd:
			i, ok := open[e.Step]
			if !ok { // a step_end without its start: take the duration it states
				i = len(run.Steps)
				start := e.Time.Add(-time.Duration(e.Seconds * float64(time.Second)))
				run.Steps = append(run.Steps, StepReport{Name: e.Step, Start: start})
			}
			delete(open, e.Step)
			s := &run.Steps[i]
			s.End, s.Interrupted = e.Time, false
			s.Bytes, s.ExitCode, s.Message = e.Bytes, e.ExitCode, e.Message
			stepBytes += e.Bytes
		case EventPartFetched:
			count(fetched, e)
			partBytes += e.Bytes
		case EventPartVerified:
			count(verified, e)
		case EventPartBroken:
			count(broken, e)
		case EventPartRepaired:
			count(repaired, e)
			partBytes += e.Bytes
		case EventPartChanged:
			count(chg, e)
		case EventProgress:
			progress = max(progress, e.Bytes)
		case EventSourceBytes:
			i := slices.IndexFunc(run.Sources, func(s SourceReport) bool { return s.Source == e.From })
			if i < 0 {
				i = len(run.Sources)
				run.Sources = append(run.Sources, SourceReport{Source: e.From})
			}
			run.Sources[i].Bytes += e.Bytes
		case EventRestoreStart:
			restoreStart = e.Time
		case EventRestoreEnd:
			restored = true
			restoreSecs = e.Seconds
			if restoreSecs <= 0 && !restoreStart.IsZero() {
				restoreSecs = e.Time.Sub(restoreStart).Seconds()
			}
			restoreStart = time.Time{}
		}
		// A running step lasts at least until the run's latest event.
		for _, i := range open {
			run.Steps[i].End = e.Time
		}
	}

	// A step left open ends where the next one starts, if that is earlier.
	for i := range run.Steps {
		s := &run.Steps[i]
		if s.Interrupted && i+1 < len(run.Steps) && run.Steps[i+1].Start.Before(s.End) {
			s.End = run.Steps[i+1].Start
		}
		s.Seconds = s.End.Sub(s.Start).Seconds()
	}
	if !restoreStart.IsZero() { // restore interrupted
		restored = true
		restoreSecs += run.End.Sub(restoreStart).Seconds()
	}
	if !restored {
		for _, s := range run.Steps {
			if s.Name == StepRestore {
				restored = true
				restoreSecs += s.Seconds
			}
		}
	}
	if restored {
		run.RestoreSeconds = &restoreSecs
	}

	run.Interrupted = !ended
	run.Outcome = outcome(run.ExitCode, ended)
	run.Seconds = run.End.Sub(run.Start).Seconds()
	// Each figure is a lower bound of what was pulled, if the events were
	// written as documented; the largest is the best one.
	run.Bytes = max(endBytes, stepBytes, progress, partBytes)
	moving := 0.0
	for _, s := range run.Steps {
		if s.Name == StepFetch || s.Name == StepRepair || s.Name == StepCloud {
			moving += s.Seconds
		}
	}
	if moving <= 0 {
		moving = run.Seconds
	}
	if moving > 0 {
		run.BytesPerSecond = float64(run.Bytes) / moving
		for i := range run.Sources {
			run.Sources[i].BytesPerSecond = float64(run.Sources[i].Bytes) / moving
		}
	}
	run.DB = buildDB(evs)
	run.Cloud = buildCloud(evs)
	run.PartsFetched, run.PartsVerified = len(fetched), len(verified)
	run.PartsBroken, run.PartsRepaired, run.PartsChanged = len(broken), len(repaired), len(chg)
	return run
}

func outcome(code *int, ended bool) string {
	switch {
	case !ended:
		return OutcomeInterrupted
	case code == nil:
		return OutcomeFailed
	}
	switch *code {
	case 0:
		return OutcomeDone
	case 2:
		return OutcomeUsage
	case 3:
		return OutcomeIntegrity
	case 75:
		return OutcomeIncomplete
	}
	return OutcomeFailed
}

// maxNotes bounds the events listed per run in the text report; the JSON
// report has them all.
const maxNotes = 20

// WriteText prints the report as a timeline, one block per run, times in
// local time:
//
//	2026-11-20 02:15:00 - 07:02:13  4h47m  haul run  exit 0 (done)  [run 20261120T...-4242]
//	  pulled 12.3 GiB at 742 KiB/s; parts: 37 fetched, 37 verified, 2 broken, 2 repaired; restore 3m12s
//	  02:15:00  fetch    4h20m  12.1 GiB at 795 KiB/s
//	  03:12:44  broken   site.tar.gz.3: sha256 mismatch at piece 12
//	  06:50:20  restore  3m12s
func (r Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	if len(r.Runs) == 0 {
		ew.printf("no runs recorded\n")
		return ew.err
	}
	for i, run := range r.Runs {
		if i > 0 {
			ew.printf("\n")
		}
		writeRun(ew, run)
	}
	return ew.err
}

func writeRun(w *errWriter, run RunReport) {
	start, end := run.Start.Local(), run.End.Local()
	endFmt := "15:04:05"
	if start.Format(time.DateOnly) != end.Format(time.DateOnly) {
		endFmt = time.DateTime
	}
	status := fmt.Sprintf("exit %d (%s)", derefInt(run.ExitCode), run.Outcome)
	if run.Interrupted {
		status = "interrupted (no end recorded: killed or crashed)"
	} else if run.ExitCode == nil {
		status = "ended without an exit code (" + run.Outcome + ")"
	}
	cmd := run.Cmd
	if cmd == "" {
		cmd = "?"
	}
	w.printf("%s - %s  %s  haul %s  %s  [run %s]\n", start.Format(time.DateTime), end.Format(endFmt),
		units.FormatDuration(dur(run.Seconds)), cmd, status, run.ID)
	if run.Message != "" {
		w.printf("  %s\n", run.Message)
	}

	var facts []string
	if run.Bytes > 0 {
		facts = append(facts, fmt.Sprintf("pulled %s at %s", units.FormatBytes(run.Bytes), units.FormatRate(run.BytesPerSecond)))
	} else {
		facts = append(facts, "pulled nothing")
	}
	var parts []string
	for _, c := range []struct {
		n    int
		what string
	}{{run.PartsFetched, "fetched"}, {run.PartsVerified, "verified"}, {run.PartsBroken, "broken"}, {run.PartsRepaired, "repaired"}, {run.PartsChanged, "changed at the source"}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	if len(parts) > 0 {
		facts = append(facts, "parts: "+strings.Join(parts, ", "))
	}
	if run.RestoreSeconds != nil {
		facts = append(facts, "restore "+units.FormatDuration(dur(*run.RestoreSeconds)))
	}
	w.printf("  %s\n", strings.Join(facts, "; "))
	if len(run.Sources) > 1 {
		for _, s := range run.Sources {
			w.printf("    %s from %s at %s\n", units.FormatBytes(s.Bytes), s.Source, units.FormatRate(s.BytesPerSecond))
		}
	}

	type line struct {
		at   time.Time
		text string
	}
	var lines []line
	// Events go first so that, at equal times, an event that closed a step
	// is listed before the next step.
	for i, e := range run.Events {
		if i == maxNotes {
			lines = append(lines, line{e.Time, fmt.Sprintf("... and %d more events (haul report --json lists them all)", len(run.Events)-maxNotes)})
			break
		}
		lines = append(lines, line{e.Time, noteText(e)})
	}
	for _, s := range run.Steps {
		text := fmt.Sprintf("%-8s %s", s.Name, units.FormatDuration(dur(s.Seconds)))
		var stepText string
		switch {
		case s.Name == StepDB && run.DB != nil:
			stepText = run.DB.text()
		case s.Name == StepCloud && run.Cloud != nil:
			stepText = run.Cloud.text()
		}
		if stepText != "" {
			text = stepText
			if s.ExitCode != nil && *s.ExitCode != 0 {
				text += fmt.Sprintf("  (exit %d)", *s.ExitCode)
			}
			lines = append(lines, line{s.Start, text})
			continue
		}
		if s.Bytes > 0 {
			text += "  " + units.FormatBytes(s.Bytes)
			if s.Seconds > 0 {
				text += " at " + units.FormatRate(float64(s.Bytes)/s.Seconds)
			}
		}
		switch {
		case s.Interrupted:
			text += "  (interrupted)"
		case s.ExitCode != nil && *s.ExitCode != 0:
			text += fmt.Sprintf("  (exit %d)", *s.ExitCode)
		}
		if s.Message != "" {
			text += ": " + s.Message
		}
		lines = append(lines, line{s.Start, text})
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].at.Before(lines[j].at) })
	for _, l := range lines {
		w.printf("  %s  %s\n", l.at.Local().Format("15:04:05"), l.text)
	}
}

func noteText(e Event) string {
	if e.Event == EventDBSkipped {
		return "db       skipped: " + e.Message
	}
	kind := strings.TrimPrefix(e.Event, "part_")
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s", kind)
	if e.Part != "" {
		b.WriteString(" " + e.Part)
	}
	if e.From != "" {
		b.WriteString(" from " + e.From)
	}
	if e.Bytes > 0 {
		b.WriteString(" (" + units.FormatBytes(e.Bytes) + ")")
	}
	if e.Message != "" {
		if e.Part != "" || e.From != "" {
			b.WriteString(":")
		}
		b.WriteString(" " + e.Message)
	}
	return b.String()
}

func dur(seconds float64) time.Duration { return time.Duration(seconds * float64(time.Second)) }

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// errWriter keeps the first write error so printing code stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err != nil {
		return
	}
	_, e.err = fmt.Fprintf(e.w, format, args...)
}
