package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/haul-dev/haul/fetch"
	"github.com/haul-dev/haul/fetch/destdir"
	"github.com/haul-dev/haul/internal/job"
	"github.com/haul-dev/haul/internal/units"
	"github.com/haul-dev/haul/restore"
)

// session is one command run as a job (internal/job: the lock, the
// journal, the deadline, the steps) with this process's progress output.
type session struct {
	a   *app
	job *job.Job
	rep *reporter
}

func (a *app) begin(ctx context.Context, cmd, dest string, o *opts) (context.Context, *session, error) {
	var deadline time.Time
	if o.until != "" {
		t, err := units.ParseUntil(o.until, time.Now())
		if err != nil {
			return nil, nil, usagef("--until: %v", err)
		}
		deadline = t
	}
	if o.maxTime > 0 {
		if t := time.Now().Add(o.maxTime); deadline.IsZero() || t.Before(deadline) {
			deadline = t
		}
	}
	rep := newReporter(a, o.progress)
	ctx, j, err := job.Begin(ctx, job.Options{Cmd: cmd, Dest: dest, Args: withMirrors(os.Args[1:], o.mirrors), Deadline: deadline, UI: rep, Logf: rep.logf})
	if err != nil {
		rep.finish()
		return nil, nil, err
	}
	return ctx, &session{a: a, job: j, rep: rep}, nil
}

// end stops the output, writes the run's last journal line and releases
// the lock.
func (s *session) end(err error) error {
	s.rep.finish()
	return s.job.End(err)
}

func (s *session) fetch(ctx context.Context, fo fetch.Options) error { return s.job.Fetch(ctx, fo) }

func (s *session) verify(ctx context.Context, asJSON bool) error {
	return s.job.Verify(ctx, func(rep *destdir.Report) error {
		if asJSON {
			return writeJSON(s.a.stdout, rep)
		}
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
		return nil
	})
}

func (s *session) repair(ctx context.Context, fo fetch.Options, from string) error {
	return s.job.Repair(ctx, fo, from)
}

func (s *session) restore(ctx context.Context, o *opts) error {
	if err := s.job.Restore(ctx, restoreOptions(o), o.chain.bases); err != nil {
		return err
	}
	return s.afterRestore(ctx, o)
}

// runAll is `haul run` (job.RunAll: each step skipped when done), then the
// cloud files (job.Cloud: nothing once they are all in place) and the
// database step with --db (job.DB: skipped when done too).
func (s *session) runAll(ctx context.Context, fo fetch.Options, o *opts) error {
	if err := s.job.RunAll(ctx, fo, restoreOptions(o), o.chain.bases); err != nil {
		return err
	}
	return s.afterRestore(ctx, o)
}

// db is the Bitrix database step with --db, into the restored tree.
func (s *session) db(ctx context.Context, o *opts) error {
	if o.db.url == "" {
		return nil
	}
	dbo, err := o.db.options(o.into)
	if err != nil {
		return err
	}
	return s.job.DB(ctx, dbo)
}

// withMirrors is the command line as the journal records it: mirrors
// that came from HAUL_MIRROR are added as --mirror URL (redacted there).
func withMirrors(args, mirrors []string) []string {
	line := strings.Join(args, " ")
	out := slices.Clone(args)
	for _, m := range mirrors {
		if !strings.Contains(line, m) {
			out = append(out, "--mirror", m)
		}
	}
	return out
}

func restoreOptions(o *opts) restore.Options {
	return restore.Options{Into: o.into, Assemble: o.assemble, PasswordFile: o.password, SameOwner: o.sameOwner, Incremental: o.chain.incremental}
}
