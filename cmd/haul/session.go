package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch"
	"github.com/haul-dev/haul/integrity"
	"github.com/haul-dev/haul/internal/redact"
	"github.com/haul-dev/haul/internal/units"
	"github.com/haul-dev/haul/restore"
)

// session is one run of a command on a DEST: the lock, the journal, the
// deadline and the progress output.
type session struct {
	a       *app
	cmd     string
	dest    string
	lock    *chunk.LockFile
	journal *chunk.Journal
	rep     *reporter
	start   time.Time
	cancel  context.CancelFunc
}

// errDeadline is the cause of a stop at --until or --max-time.
var errDeadline = errors.New("deadline reached (--until/--max-time)")

func (a *app) begin(ctx context.Context, cmd, dest string, o *opts) (context.Context, *session, error) {
	if cmd != "verify" && cmd != "restore" && cmd != "repair" {
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return nil, nil, fmt.Errorf("DEST %s: %w (choose a writable directory)", dest, err)
		}
	}
	if _, err := os.Stat(dest); err != nil {
		return nil, nil, fmt.Errorf("DEST %s: %w", dest, err)
	}
	lock, err := chunk.LockFor(dest, cmd)
	if err != nil {
		return nil, nil, err
	}
	s := &session{a: a, cmd: cmd, dest: dest, lock: lock, start: time.Now()}
	j, err := chunk.OpenJournal(dest, cmd)
	if err != nil {
		lock.Unlock()
		return nil, nil, err
	}
	s.journal = j
	s.rep = newReporter(a, o.progress, j)
	var deadline time.Time
	if o.until != "" {
		t, err := units.ParseUntil(o.until, time.Now())
		if err != nil {
			s.release()
			return nil, nil, usagef("--until: %v", err)
		}
		deadline = t
	}
	if o.maxTime > 0 {
		if t := time.Now().Add(o.maxTime); deadline.IsZero() || t.Before(deadline) {
			deadline = t
		}
	}
	j.Log(chunk.Event{Event: chunk.EventRunStart, Message: strings.Join(redactArgs(os.Args[1:]), " ")})
	if !deadline.IsZero() {
		ctx, s.cancel = context.WithDeadlineCause(ctx, deadline, errDeadline)
		j.Log(chunk.Event{Event: chunk.EventDeadline, Message: deadline.Format(time.RFC3339)})
	}
	return ctx, s, nil
}

func (s *session) release() {
	if s.cancel != nil {
		s.cancel()
	}
	if s.journal != nil {
		s.journal.Close()
	}
	s.lock.Unlock()
}

// end writes the run's last journal line and releases the lock.
func (s *session) end(err error) error {
	s.rep.finish()
	code := exitCode(err)
	ev := chunk.Event{Event: "run_end", ExitCode: &code, Seconds: time.Since(s.start).Seconds(), Bytes: s.rep.pulledTotal()}
	if err != nil {
		ev.Message = oneLine(err.Error())
	}
	s.journal.Log(ev)
	s.release()
	return err
}

// step brackets one step of the job in the journal.
func (s *session) step(name string, f func() error) error {
	t := time.Now()
	s.journal.Log(chunk.Event{Event: "step_start", Step: name})
	before := s.rep.pulledTotal()
	err := f()
	ev := chunk.Event{Event: "step_end", Step: name, Seconds: time.Since(t).Seconds(), Bytes: s.rep.pulledTotal() - before}
	if err != nil {
		ev.Message = oneLine(err.Error())
		code := exitCode(err)
		ev.ExitCode = &code
	}
	s.journal.Log(ev)
	return err
}

func (s *session) fetch(ctx context.Context, fo fetch.Options) error {
	return s.step("fetch", func() error {
		fo.Progress = s.rep
		fo.SetCheck, fo.SetCheckLabel = setCheck, "decode"
		sum, err := fetch.Fetch(ctx, fo)
		if sum != nil {
			s.rep.logf("fetch: %d parts, %d verified, %d unverified, %d broken, %d missing; %s pulled",
				sum.Parts, sum.Verified, sum.Unverified, len(sum.Broken), len(sum.Missing), units.FormatBytes(sum.Pulled))
		}
		return wrapDeadline(ctx, err)
	})
}

func (s *session) verify(ctx context.Context, asJSON bool) error {
	return s.step("verify", func() error {
		rep, err := fetch.Verify(ctx, fetch.Options{Dest: s.dest, SetCheck: setCheck, SetCheckLabel: "decode"})
		if err != nil {
			return wrapDeadline(ctx, err)
		}
		if asJSON {
			if err := writeJSON(s.a.stdout, rep); err != nil {
				return err
			}
		} else {
			for _, p := range rep.Parts {
				line := fmt.Sprintf("%-10s %s", p.Status, p.Name)
				if len(p.VerifiedBy) > 0 {
					line += "  (" + strings.Join(p.VerifiedBy, ", ") + ")"
				}
				if p.Error != "" {
					line += "  " + p.Error
				}
				fmt.Fprintln(s.a.stdout, line)
			}
		}
		if !rep.OK {
			var bad []string
			for _, p := range rep.Parts {
				if p.Status != chunk.Verified && p.Status != chunk.Unverified {
					bad = append(bad, p.Name+" ("+p.Status+")")
					s.journal.Log(chunk.Event{Event: "part_broken", Part: p.Name, Message: p.Error})
				}
			}
			return fmt.Errorf("%s; run: haul repair %s (or haul repair --from ssh://HOST/DIR %s): %w", strings.Join(bad, ", "), s.dest, s.dest, fetch.ErrIncomplete)
		}
		return nil
	})
}

func (s *session) repair(ctx context.Context, fo fetch.Options, from string) error {
	return s.step("repair", func() error {
		fo.Progress = s.rep
		fo.SetCheck, fo.SetCheckLabel = setCheck, "decode"
		sum, err := fetch.Repair(ctx, fo, from)
		if sum != nil {
			s.rep.logf("repair: %d parts, %d broken, %d missing; %s pulled", sum.Parts, len(sum.Broken), len(sum.Missing), units.FormatBytes(sum.Pulled))
		}
		return wrapDeadline(ctx, err)
	})
}

func (s *session) restore(ctx context.Context, o *opts) error {
	return s.step("restore", func() error {
		s.journal.Log(chunk.Event{Event: "restore_start"})
		t := time.Now()
		unlock, err := o.chain.lockBases()
		if err != nil {
			return err
		}
		defer unlock()
		err = restore.RunChain(ctx, o.chain.dests(s.dest), restore.Options{Into: o.into, Assemble: o.assemble, PasswordFile: o.password,
			SameOwner: o.sameOwner, Incremental: o.chain.incremental, Progress: s.rep})
		ev := chunk.Event{Event: "restore_end", Seconds: time.Since(t).Seconds()}
		if err != nil {
			ev.Message = oneLine(err.Error())
		}
		s.journal.Log(ev)
		if err == nil {
			target := o.into
			if target == "" {
				target = o.assemble
			}
			s.rep.logf("restore: done into %s", target)
		}
		return wrapDeadline(ctx, err)
	})
}

// runAll is `haul run`: each step is skipped when already done, so the
// same line in cron every 15 minutes does the right thing.
func (s *session) runAll(ctx context.Context, fo fetch.Options, o *opts) error {
	if st, err := chunk.Load(s.dest); err == nil && allComplete(st) {
		if done, _ := restore.DoneChain(o.chain.dests(s.dest), o.into); done {
			s.rep.logf("run: every part verified and already restored into %s; nothing to do", o.into)
			return nil
		}
	}
	// fetch verifies each part as it lands and re-fetches broken ones from
	// the source up to --retries: the verify and repair steps are in it.
	if err := s.fetch(ctx, fo); err != nil {
		return err
	}
	return s.restore(ctx, o)
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
	if errors.Is(context.Cause(ctx), errDeadline) {
		return fmt.Errorf("stopped at the deadline (--until/--max-time); state saved: run the same command again to continue: %w", fetch.ErrInterrupted)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w by a signal; state saved: run the same command again to continue", fetch.ErrInterrupted)
	}
	return err
}

// setCheck decodes a set split at arbitrary bytes as the structural check
// no single part can carry.
func setCheck(ctx context.Context, paths, names []string) error {
	parts := make([]restore.Part, len(paths))
	for i := range paths {
		fi, err := os.Stat(paths[i])
		if err != nil {
			return err
		}
		parts[i] = restore.Part{Name: names[i], Path: paths[i], Size: fi.Size()}
	}
	err := restore.Test(ctx, parts, "")
	var fe *integrity.FormatError
	if err != nil && !errors.As(err, &fe) {
		return fmt.Errorf("%w: %v", fetch.ErrNoVerdict, err) // not a format we can decode: no verdict
	}
	var span *restore.SpanError
	if errors.As(err, &span) && len(span.Parts) > 1 {
		return &fetch.SuspectError{Parts: span.Parts, Err: err}
	}
	return err
}

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
