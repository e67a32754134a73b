package job

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/internal/testhook"
	"github.com/haul-dev/haul/internal/units"
	"github.com/haul-dev/haul/restore/bitrixdb"
)

// DB is the database step of a Bitrix restore (--db): after the files are
// in place, import the dump the tree carries, point the site at the
// database, apply the settings fixes and clean up (restore/bitrixdb). Its
// resume state is DEST/.haul/bitrixdb.json. It is skipped when a previous
// run finished it for the same database, so `haul run` twice does nothing
// to the database the second time. o.StateDir and o.Progress are the
// job's; a UI that implements bitrixdb.Progress gets the import's
// progress.
func (j *Job) DB(ctx context.Context, o bitrixdb.Options) error {
	o.StateDir = filepath.Join(j.o.Dest, chunk.StateDir)
	if bitrixdb.IsDone(o.StateDir, o.Target, o.Root) {
		msg := fmt.Sprintf("the database %s is already restored from this backup; nothing to do (remove %s to import it again)",
			o.Target, filepath.Join(o.StateDir, bitrixdb.StateFile))
		j.journal.Log(chunk.Event{Event: chunk.EventDBSkipped, Step: chunk.StepDB, From: o.Target.String(), Message: msg})
		j.o.Logf("db: %s", msg)
		return nil
	}
	return j.Step(chunk.StepDB, func() error {
		target := o.Target.String()
		start := chunk.Event{Event: chunk.EventDBStart, Step: chunk.StepDB, From: target}
		if st, _ := bitrixdb.ReadStatus(o.StateDir); st != nil && st.Target == target {
			start.Bytes, start.Message = st.Done, st.Dump
		}
		j.journal.Log(start)
		p := &dbProgress{j: j, delay: testhook.DBDelay()}
		p.ui, _ = j.o.UI.(bitrixdb.Progress)
		o.Progress = p
		t := time.Now()
		res, err := bitrixdb.Run(ctx, o)
		ev := chunk.Event{Event: chunk.EventDBEnd, Step: chunk.StepDB, From: target, Seconds: time.Since(t).Seconds(),
			Bytes: p.done - p.from, Statements: p.statements - p.fromStatements}
		if err != nil && ctx.Err() == nil && !p.started && !errors.Is(err, bitrixdb.ErrConnLost) {
			// Before the first statement nothing went wrong with a
			// connection that worked: the server refused or cannot be
			// reached, which a rerun alone does not fix (exit 1).
			err = &dbRefused{err}
		}
		err = wrapDeadline(ctx, err)
		switch {
		case err != nil:
			ev.Message = oneLine(err.Error())
		case res.AlreadyDone: // the user came from ~/.my.cnf, so IsDone could not tell
			ev.Message = "already restored; nothing to do"
			j.o.Logf("db: the database %s is already restored from this backup; nothing to do", res.Target)
		case res.SiteOnly:
			ev.Message = fmt.Sprintf("the database is already restored from this backup (not imported again); the site at %s points at it; %d files removed", o.Root, len(res.Removed))
			j.o.Logf("db: %s", strings.Replace(ev.Message, "the database", "the database "+res.Target, 1))
		default:
			ev.Bytes, ev.Statements = res.Bytes-res.ResumedFrom, res.Statements-res.ResumedStatements
			ev.Message = dbSite(res)
			j.o.Logf("db: %s; %s", dbImported(res, ev), ev.Message)
		}
		j.journal.Log(ev)
		return err
	})
}

// dbImported says what a finished import moved.
func dbImported(res *bitrixdb.Result, ev chunk.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "imported the dump %s into %s: %s, %d statements in %s", res.Dump, res.Target,
		units.FormatBytes(ev.Bytes), ev.Statements, units.FormatDuration(time.Duration(ev.Seconds*float64(time.Second))))
	if ev.Seconds > 0 {
		fmt.Fprintf(&b, " (%s)", units.FormatRate(float64(ev.Bytes)/ev.Seconds))
	}
	if res.ResumedFrom > 0 {
		fmt.Fprintf(&b, ", resumed at byte %d", res.ResumedFrom)
	}
	if res.Duplicates > 0 {
		fmt.Fprintf(&b, ", %d duplicate rows skipped", res.Duplicates)
	}
	return b.String()
}

// dbSite says what was done to the site after the import (db_end's
// message; the bytes and statements are fields of their own).
func dbSite(res *bitrixdb.Result) string {
	var b strings.Builder
	b.WriteString("the site's dbconn.php")
	if res.Settings {
		b.WriteString(" and .settings.php")
	}
	b.WriteString(" point at the database")
	if len(res.Fixes) > 0 {
		fmt.Fprintf(&b, "; settings fixed: %s", joinFixes(res.Fixes))
	}
	if len(res.Skipped) > 0 {
		fmt.Fprintf(&b, "; skipped without --site-host: %s", joinFixes(res.Skipped))
	}
	if len(res.DefinersDropped) > 0 {
		fmt.Fprintf(&b, "; views created without their DEFINER: %s", strings.Join(res.DefinersDropped, ", "))
	}
	if res.FullTextDropped {
		b.WriteString("; FULLTEXT indexes dropped (the server refused them)")
	}
	fmt.Fprintf(&b, "; %d files removed", len(res.Removed))
	return b.String()
}

func joinFixes(fs []bitrixdb.Fix) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}

// dbRefused is a database error before the import began: exit 1.
type dbRefused struct{ err error }

func (e *dbRefused) Error() string { return e.err.Error() }
func (e *dbRefused) Unwrap() error { return e.err }

// dbExitCode maps the database step's errors to exit codes; ok is false
// for an error that is not the database's.
func dbExitCode(err error) (code int, ok bool) {
	var refused *dbRefused
	switch {
	case errors.Is(err, bitrixdb.ErrSeveralDumps), errors.Is(err, bitrixdb.ErrURL):
		return 2, true
	case errors.As(err, &refused):
		return 1, true
	case errors.Is(err, bitrixdb.ErrConnLost):
		return 75, true
	case errors.Is(err, bitrixdb.ErrAccess), errors.Is(err, bitrixdb.ErrPacket), errors.Is(err, bitrixdb.ErrStatement),
		errors.Is(err, bitrixdb.ErrNoDump), errors.Is(err, bitrixdb.ErrDumpFormat), errors.Is(err, bitrixdb.ErrSite):
		return 1, true
	}
	return 0, false
}

// dbProgress journals the import's start and passes its progress and
// warnings on to the UI.
type dbProgress struct {
	j                          *Job
	ui                         bitrixdb.Progress
	delay                      time.Duration
	started                    bool
	from, done                 int64
	fromStatements, statements int64
}

func (p *dbProgress) ImportStart(total, done int64) {
	p.started, p.from, p.done = true, done, done
	if st, err := bitrixdb.ReadStatus(filepath.Join(p.j.o.Dest, chunk.StateDir)); err == nil && st != nil && done > 0 {
		p.fromStatements = st.Statements
	}
	p.statements = p.fromStatements
	if p.ui != nil {
		p.ui.ImportStart(total, done)
	}
}

func (p *dbProgress) ImportProgress(done, statements int64) {
	p.done, p.statements = done, statements
	if p.ui != nil {
		p.ui.ImportProgress(done, statements)
	}
	if p.delay > 0 {
		time.Sleep(p.delay) // tests: an import slow enough to cut (testhook.DBDelay)
	}
}

// Warn goes through the job's journal decorator: journal, then UI.
func (p *dbProgress) Warn(msg string) { p.j.ui.Warn(msg) }

// DBStatus is the database step for `haul status`: what the import's
// resume state in DEST says, with the ETA at its average rate; nil when
// no database restore was started in dest.
func DBStatus(dest string) *chunk.DBStatus {
	st, err := bitrixdb.ReadStatus(filepath.Join(dest, chunk.StateDir))
	if err != nil || st == nil {
		return nil
	}
	d := &chunk.DBStatus{State: chunk.DBImporting, Target: st.Target, Dump: st.Dump, BytesTotal: st.Bytes, BytesDone: st.Done,
		Statements: st.Statements, Duplicates: st.Duplicates, Updated: st.Updated}
	switch {
	case st.Finished:
		d.State = chunk.DBDone
	case st.Imported:
		d.State = chunk.DBImported
	}
	if st.Elapsed > 0 && st.Done > 0 {
		d.Rate = float64(st.Done) / st.Elapsed.Seconds()
	}
	d.ETASeconds = etaAt(d.BytesTotal-d.BytesDone, d.Rate)
	return d
}

// etaAt is the seconds left bytes take at rate; nil when unknown.
func etaAt(left int64, rate float64) *float64 {
	var eta float64
	switch {
	case left <= 0:
	case rate > 0:
		eta = float64(left) / rate
	default:
		return nil
	}
	return &eta
}
