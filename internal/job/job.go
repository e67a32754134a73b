// Package job runs haul's commands on a DEST as one job, with no CLI:
//
//  1. Begin takes DEST/.haul/lock (another run: exit 75 at once), opens the
//     journal, logs run_start with the redacted command line, and sets the
//     deadline (--until/--max-time) on the context.
//  2. Each step (Fetch, Verify, Repair, Restore) is bracketed in the
//     journal by step_start and step_end (seconds, bytes pulled, exit code
//     when it failed); the engine's and the restore's events reach the
//     journal through a decorator the job puts in front of the UI, and
//     the bytes come from one counter, the run's fetch.Meter.
//  3. RunAll is `haul run`: fetch (which verifies and re-fetches on its
//     own), then restore, each skipped when already done.
//  4. End logs run_end with the exit code (ExitCode) and releases the lock.
//
// SetCheck is the adapter that lets fetch prove a set split at arbitrary
// bytes by test-decoding it with restore, naming the parts a failed
// checksum may blame.
package job

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch"
	"github.com/haul-dev/haul/fetch/destdir"
	"github.com/haul-dev/haul/internal/redact"
	"github.com/haul-dev/haul/internal/units"
	"github.com/haul-dev/haul/restore"
)

// UI is what a job shows as it goes: the engine's and the restore's
// progress. It never writes the journal; the job does.
type UI interface {
	fetch.Progress
	restore.Progress
}

// Options configures a job.
type Options struct {
	// Cmd names the command (fetch, verify, repair, restore, run) in the
	// lock and the journal.
	Cmd  string
	Dest string
	// Args is the command line, logged in run_start with every URL
	// redacted.
	Args []string
	// Deadline, if not zero, stops the job cleanly (exit 75) then.
	Deadline time.Time
	// UI shows progress; nil shows nothing.
	UI UI
	// Logf prints a line that matters (a step's summary); nil prints
	// nothing.
	Logf func(format string, args ...any)
}

// Job is one run of a command on a DEST.
type Job struct {
	o       Options
	lock    *chunk.LockFile
	journal *chunk.Journal
	ui      *journaled
	meter   fetch.Meter
	start   time.Time
	cancel  context.CancelFunc
	stop    chan struct{}
	done    chan struct{}
}

// ErrDeadline is the cause of a stop at --until or --max-time.
var ErrDeadline = errors.New("deadline reached (--until/--max-time)")

// checkpointEvery is how often the bytes pulled so far are logged, so that
// the report of a run killed with -9 still shows what it moved.
const checkpointEvery = 30 * time.Second

// Begin starts a job: DEST must exist (fetch and run create it), the lock
// is taken, the journal opened and run_start logged. The context it
// returns ends at the deadline.
func Begin(ctx context.Context, o Options) (context.Context, *Job, error) {
	if o.Cmd != "verify" && o.Cmd != "restore" && o.Cmd != "repair" {
		if err := os.MkdirAll(o.Dest, 0o755); err != nil {
			return nil, nil, fmt.Errorf("DEST %s: %w (choose a writable directory)", o.Dest, err)
		}
	}
	if _, err := os.Stat(o.Dest); err != nil {
		return nil, nil, fmt.Errorf("DEST %s: %w", o.Dest, err)
	}
	lock, err := chunk.LockFor(o.Dest, o.Cmd)
	if err != nil {
		return nil, nil, err
	}
	jr, err := chunk.OpenJournal(o.Dest, o.Cmd)
	if err != nil {
		lock.Unlock()
		return nil, nil, err
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	j := &Job{o: o, lock: lock, journal: jr, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	if o.UI == nil {
		o.UI = quiet{}
	}
	j.o = o
	j.ui = newJournaled(jr, o.UI)
	jr.Log(chunk.Event{Event: chunk.EventRunStart, Message: strings.Join(redactArgs(o.Args), " ")})
	if !o.Deadline.IsZero() {
		ctx, j.cancel = context.WithDeadlineCause(ctx, o.Deadline, ErrDeadline)
		jr.Log(chunk.Event{Event: chunk.EventDeadline, Message: o.Deadline.Format(time.RFC3339)})
	}
	go j.checkpoints()
	return ctx, j, nil
}

// checkpoints logs the bytes pulled so far every checkpointEvery.
func (j *Job) checkpoints() {
	defer close(j.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-t.C:
			j.journal.Log(chunk.Event{Event: chunk.EventProgress, Bytes: j.meter.Total()})
		}
	}
}

// End logs run_end with err's exit code and the bytes the job pulled,
// releases the lock, and returns err.
func (j *Job) End(err error) error {
	close(j.stop)
	<-j.done
	code := ExitCode(err)
	ev := chunk.Event{Event: chunk.EventRunEnd, ExitCode: &code, Seconds: time.Since(j.start).Seconds(), Bytes: j.meter.Total()}
	if err != nil {
		ev.Message = oneLine(err.Error())
	}
	j.journal.Log(ev)
	if j.cancel != nil {
		j.cancel()
	}
	j.journal.Close()
	j.lock.Unlock()
	return err
}

// Step brackets one step of the job in the journal.
func (j *Job) Step(name string, f func() error) error {
	t := time.Now()
	j.journal.Log(chunk.Event{Event: chunk.EventStepStart, Step: name})
	before := j.meter.Total()
	err := f()
	ev := chunk.Event{Event: chunk.EventStepEnd, Step: name, Seconds: time.Since(t).Seconds(), Bytes: j.meter.Total() - before}
	if err != nil {
		ev.Message = oneLine(err.Error())
		code := ExitCode(err)
		ev.ExitCode = &code
	}
	j.journal.Log(ev)
	return err
}

// engineOptions puts the job's progress, meter and set check into fo.
func (j *Job) engineOptions(fo fetch.Options) fetch.Options {
	fo.Progress = j.ui
	fo.Meter = &j.meter
	fo.SetCheck, fo.SetCheckLabel = SetCheck, "decode"
	return fo
}

// Fetch is the fetch step.
func (j *Job) Fetch(ctx context.Context, fo fetch.Options) error {
	return j.Step(chunk.StepFetch, func() error {
		sum, err := fetch.Fetch(ctx, j.engineOptions(fo))
		if sum != nil {
			j.o.Logf("fetch: %d parts, %d verified, %d unverified, %d broken, %d missing; %s pulled%s",
				sum.Parts, sum.Verified, sum.Unverified, len(sum.Broken), len(sum.Missing), units.FormatBytes(sum.Pulled), bySource(sum))
		}
		return wrapDeadline(ctx, err)
	})
}

// Verify is the verify step. show gets the report before the outcome is
// decided (the CLI prints it). A broken or missing part fails the step
// with fetch.ErrIncomplete (run repair); a set whose parts are only pending
// or partial, with fetch.ErrInterrupted (finish the fetch), and no
// part_broken is logged for them.
func (j *Job) Verify(ctx context.Context, show func(*destdir.Report) error) error {
	return j.Step(chunk.StepVerify, func() error {
		rep, err := fetch.Verify(ctx, fetch.Options{Dest: j.o.Dest, SetCheck: SetCheck, SetCheckLabel: "decode"})
		if err != nil {
			return wrapDeadline(ctx, err)
		}
		if show != nil {
			if err := show(rep); err != nil {
				return err
			}
		}
		if rep.OK {
			return nil
		}
		var bad, unfinished []string
		for _, p := range rep.Parts {
			switch p.Status {
			case chunk.Verified, chunk.Unverified:
			case chunk.Pending, chunk.Partial:
				// Not broken: this part is still being fetched.
				unfinished = append(unfinished, p.Name+" ("+p.Status+")")
			default:
				bad = append(bad, p.Name+" ("+p.Status+")")
				j.journal.Log(chunk.Event{Event: chunk.EventPartBroken, Part: p.Name, Message: p.Error})
			}
		}
		if len(bad) == 0 {
			// Still downloading: repair is not the answer, finishing is.
			return &said{fmt.Sprintf("the set is not fetched yet: %s; run the fetch (haul fetch or haul run) again to finish", someNames(unfinished, j.o.Dest)), fetch.ErrInterrupted}
		}
		return &said{fmt.Sprintf("%s; run: haul repair %s (or haul repair --from ssh://HOST/DIR %s)", someNames(bad, j.o.Dest), j.o.Dest, j.o.Dest), fetch.ErrIncomplete}
	})
}

// Repair is the repair step, from the original source or from.
func (j *Job) Repair(ctx context.Context, fo fetch.Options, from string) error {
	return j.Step(chunk.StepRepair, func() error {
		sum, err := fetch.Repair(ctx, j.engineOptions(fo), from)
		if sum != nil {
			j.o.Logf("repair: %d parts, %d broken, %d missing; %s pulled%s", sum.Parts, len(sum.Broken), len(sum.Missing), units.FormatBytes(sum.Pulled), bySource(sum))
		}
		return wrapDeadline(ctx, err)
	})
}

// Restore is the restore step; ro.Progress is the job's. bases are the
// DESTs of the sets before this one in an incremental chain (level 0
// first): they are locked while the chain is applied, so that no fetch
// changes them underneath.
func (j *Job) Restore(ctx context.Context, ro restore.Options, bases []string) error {
	return j.Step(chunk.StepRestore, func() error {
		j.journal.Log(chunk.Event{Event: chunk.EventRestoreStart})
		t := time.Now()
		ro.Progress = j.ui
		unlock, err := lockAll(bases)
		if err != nil {
			return err
		}
		defer unlock()
		// Every verdict is re-established before the parts are read: a
		// part changed or deleted since it was proven stops the restore
		// as not ready (exit 3, "run haul repair").
		for _, d := range chain(bases, j.o.Dest) {
			changes, err := fetch.CheckDest(ctx, d)
			if err != nil {
				return wrapDeadline(ctx, err)
			}
			for _, c := range changes {
				j.ui.Event(fetch.Event{Kind: chunk.EventPartBroken, Part: c.Part, Message: fmt.Sprintf("part %s: %s", c.Part, c.Why)})
			}
		}
		err = restore.RunChain(ctx, chain(bases, j.o.Dest), ro)
		if err != nil {
			err = j.changed(err, bases)
		}
		ev := chunk.Event{Event: chunk.EventRestoreEnd, Seconds: time.Since(t).Seconds()}
		if err != nil {
			ev.Message = oneLine(err.Error())
		}
		j.journal.Log(ev)
		if err == nil {
			target := ro.Into
			if target == "" {
				target = ro.Assemble
			}
			j.o.Logf("restore: done into %s", target)
		}
		return wrapDeadline(ctx, err)
	})
}

// changed records, when a restore found a part whose bytes differ from
// those it was proven with (restore.DigestError), that the part is
// broken in its DEST's state, and names that DEST in the error.
func (j *Job) changed(err error, bases []string) error {
	var de *restore.DigestError
	if !errors.As(err, &de) {
		return err
	}
	for _, d := range chain(bases, j.o.Dest) {
		name := de.Part
		if len(bases) > 0 {
			rel, rerr := filepath.Rel(d, de.Part)
			if rerr != nil || strings.HasPrefix(rel, "..") {
				continue
			}
			name = rel
		}
		if merr := chunk.MarkChanged(d, name, "changed on disk after it was verified: its CRC-32C differs"); merr == nil {
			de.Dest = d
			j.journal.Log(chunk.Event{Event: chunk.EventPartBroken, Part: name, Message: oneLine(de.Error())})
			break
		}
	}
	return err
}

// chain is the incremental chain ending with dest.
func chain(bases []string, dest string) []string {
	return append(append([]string(nil), bases...), dest)
}

// lockAll holds the lock of every DEST in dests.
func lockAll(dests []string) (unlock func(), err error) {
	var held []*chunk.LockFile
	unlock = func() {
		for _, l := range held {
			l.Unlock()
		}
	}
	for _, d := range dests {
		l, err := chunk.LockFor(d, "restore")
		if err != nil {
			unlock()
			return nil, err
		}
		held = append(held, l)
	}
	return unlock, nil
}

// RunAll is `haul run`: each step is skipped when already done, so the
// same line in cron every 15 minutes does the right thing. Fetch verifies
// each part as it lands and re-fetches broken ones from the source up to
// --retries: the verify and repair steps are in it.
//
// A part that the restore finds changed since it was proven (its digest
// differs: rot that left its stat alone) is fetched again — only its
// pieces that differ — and the restore runs once more, without a person.
func (j *Job) RunAll(ctx context.Context, fo fetch.Options, ro restore.Options, bases []string) error {
	if st, _, err := fetch.LoadChecked(ctx, j.o.Dest); err == nil && allComplete(st) {
		if done, _ := restore.DoneChain(chain(bases, j.o.Dest), ro.Into); done {
			j.o.Logf("run: every part verified and already restored into %s; nothing to do", ro.Into)
			return nil
		}
	}
	for again := false; ; again = true {
		if err := j.Fetch(ctx, fo); err != nil {
			return err
		}
		err := j.Restore(ctx, ro, bases)
		var de *restore.DigestError
		if again || !errors.As(err, &de) || de.Dest != j.o.Dest {
			return err
		}
		j.o.Logf("run: part %s changed on disk after it was verified; fetching it again, then restoring again", de.Part)
	}
}

func allComplete(st *chunk.State) bool {
	for _, p := range st.Parts {
		if !p.Complete() {
			return false
		}
	}
	return len(st.Parts) > 0
}

// wrapDeadline says which deadline stopped the run.
func wrapDeadline(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	cause := context.Cause(ctx)
	if errors.Is(cause, ErrDeadline) {
		return &said{"stopped at the deadline (--until/--max-time); state saved, run the same command again to continue", fetch.ErrInterrupted}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// The caller's cause names the stop ("stopped by SIGTERM"); a bare
		// cancel has none to give.
		why := "stopped"
		if cause != nil && cause != context.Canceled && cause != context.DeadlineExceeded {
			why = cause.Error()
		}
		return &said{why + "; state saved, run the same command again to continue", fetch.ErrInterrupted}
	}
	return err
}

// said is an error whose message is complete as written; it wraps the
// sentinel that gives its exit code, which the message does not repeat
// ("…; run the same command again to continue", not "…: interrupted").
type said struct {
	msg string
	err error
}

func (e *said) Error() string { return e.msg }
func (e *said) Unwrap() error { return e.err }

// redactArgs hides query strings (presigned signatures) in the journal.
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.Contains(a, "://") {
			a = redact.URL(a)
		}
		out[i] = a
	}
	return out
}

// someNames joins the first maxNamed names and counts the rest, so that a
// set of 100,000 parts still makes a line one can read.
func someNames(names []string, dest string) string {
	const maxNamed = 10
	if len(names) <= maxNamed {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more (haul status %s lists them)", strings.Join(names[:maxNamed], ", "), len(names)-maxNamed, dest)
}

// bySource says what each source delivered when there were several.
func bySource(sum *fetch.Summary) string {
	if len(sum.Sources) < 2 {
		return ""
	}
	var parts []string
	for _, a := range sum.Sources {
		parts = append(parts, units.FormatBytes(a.Bytes)+" from "+a.Source)
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
