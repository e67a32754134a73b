package bitrixdb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Options configure Run.
type Options struct {
	// Root is the site's document root: the restored tree holding
	// bitrix/backup. Its absolute path is the DOC_ROOT the b_lang fix
	// compares with.
	Root string
	// StateDir holds the resume state (DEST/.haul). The caller holds
	// DEST's lock, so one import runs at a time.
	StateDir string
	// Target is the database to import into; Credentials say where its
	// user and password come from.
	Target      Target
	Credentials Credentials
	// Create creates the database when it does not exist.
	Create bool
	// Dump picks one dump when bitrix/backup holds several.
	Dump string
	// SiteHost is the site's host name (www.example.com), for the CDN
	// and host-restriction fixes; without it they are skipped.
	SiteHost string
	// SiteDBHost overrides the $DBHost written for the site
	// (Target.SiteHost by default).
	SiteDBHost string
	// KeepDump keeps the dump's files; by default they are removed (a
	// plain-text copy of the whole database does not belong in a web root).
	KeepDump bool
	// SaveEvery is how often the resume offset is written (1s when 0).
	SaveEvery time.Duration
	// Progress receives progress and warnings; nil for none.
	Progress Progress
}

// Result says what Run did.
type Result struct {
	Target      string // the URL, without a password
	Dump        string // the dump's name
	Bytes       int64  // size of the dump
	Statements  int64  // statements run over every run
	Duplicates  int64  // rows skipped as duplicate keys
	ResumedFrom int64  // offset this run continued from (0: from the start)
	// ResumedStatements is how many of Statements earlier runs ran.
	ResumedStatements int64
	Elapsed           time.Duration
	// AlreadyDone: a previous run finished this restore; nothing was done.
	AlreadyDone bool
	// SiteOnly: a previous run imported the dump into this database for
	// another tree; only this tree's site files were pointed at it and
	// cleaned up.
	SiteOnly bool
	// FullTextDropped: the server refused FULLTEXT indexes; tables were
	// created without them and the ~ft_ options reset.
	FullTextDropped bool
	// DefinersDropped lists views created without the dump's DEFINER.
	DefinersDropped []string
	// Settings is true when .settings.php was rewritten (false: absent or
	// without connections).
	Settings bool
	Fixes    []Fix // settings fixes applied
	Skipped  []Fix // settings fixes skipped (no SiteHost)
	Removed  []string
}

// Run restores the database of the Bitrix site at opts.Root: import the
// dump, rewrite the credentials, apply the settings fixes, clean up (see
// the package doc). It resumes where a previous run stopped. The
// password is never in a message, the state or the result.
func Run(ctx context.Context, opts Options) (*Result, error) {
	prog := progress{opts.Progress}
	if opts.SaveEvery <= 0 {
		opts.SaveEvery = time.Second
	}
	absRoot, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("bitrixdb: %w", err)
	}
	t := opts.Target
	password, err := opts.Credentials.resolve(&t)
	if err != nil {
		return nil, err
	}
	res := &Result{Target: t.String()}
	st, err := loadState(opts.StateDir)
	if err != nil {
		return nil, err
	}
	if st != nil && st.Target != t.String() {
		st = nil // another database: start over there
	}
	if st != nil && st.Phase == phaseDone {
		fill(res, st)
		if slices.Contains(st.Sites, absRoot) {
			res.AlreadyDone = true
			return res, nil
		}
		// The same dump in another tree: the database is restored (an
		// import again would undo what the site changed since), but this
		// tree still holds the backup's credentials and the dump.
		res.SiteOnly = true
		if err := pointSite(absRoot, t, password, opts, st, res); err != nil {
			return res, err
		}
		return res, saveState(opts.StateDir, st)
	}
	var dump *Dump
	if st == nil || st.Phase == phaseImport {
		if dump, err = FindDump(absRoot, opts.Dump); err != nil {
			return nil, err
		}
		if st != nil && !st.sameDump(dump) {
			prog.warn(fmt.Sprintf("the dump %s differs from the one the last run imported (%s); importing it from the start", dump.Name, st.Dump))
			st = nil
		}
		if st == nil {
			st = &state{Target: t.String(), Dump: dump.Name, Parts: partsOf(dump), Phase: phaseImport, Started: time.Now().UTC()}
		}
	}
	var after []string
	if dump != nil {
		if after, err = dump.AfterConnectStatements(t.Database); err != nil {
			return nil, err
		}
	}
	s, err := connect(ctx, t, password, opts.Create, append(after, st.Session...), prog.warn)
	if err != nil {
		return nil, err
	}
	defer s.close()
	res.ResumedFrom, res.ResumedStatements = st.Offset, st.Statements
	if st.Phase == phaseImport {
		if err := importDump(ctx, s, dump, st, opts); err != nil {
			fill(res, st)
			return res, err
		}
	}
	fill(res, st)

	if res.Fixes, res.Skipped, err = applyFixes(ctx, s, absRoot, opts.SiteHost); err != nil {
		return res, fmt.Errorf("bitrixdb: settings fixes: %w", err)
	}
	for _, f := range res.Skipped {
		prog.warn(fmt.Sprintf("settings fix skipped (%s when needed): pass the site's host name (--site-host) to check it", f))
	}
	if err := pointSite(absRoot, t, password, opts, st, res); err != nil {
		return res, err
	}
	st.Phase = phaseDone
	if err := saveState(opts.StateDir, st); err != nil {
		return res, err
	}
	return res, nil
}

// pointSite rewrites the credentials of the site at absRoot for target t
// and removes the dump's files and the caches there, then records the
// tree as done in st (saved by the caller).
func pointSite(absRoot string, t Target, password string, opts Options, st *state, res *Result) error {
	root, err := os.OpenRoot(absRoot)
	if err != nil {
		return fmt.Errorf("bitrixdb: %w", err)
	}
	defer root.Close()
	creds := siteCreds{Host: t.SiteHost(), Database: t.Database, Login: t.User, Password: password}
	if opts.SiteDBHost != "" {
		creds.Host = opts.SiteDBHost
	}
	if err := rewriteDBConn(root, creds); err != nil {
		return err
	}
	if res.Settings, err = rewriteSettings(root, creds); err != nil {
		return err
	}
	var files []string
	for _, p := range st.Parts {
		files = append(files, p.Name)
	}
	files = append(files, st.Dump+"_after_connect.sql")
	if res.Removed, err = cleanup(root, files, opts.KeepDump); err != nil {
		return fmt.Errorf("bitrixdb: clean up: %w", err)
	}
	if !slices.Contains(st.Sites, absRoot) {
		st.Sites = append(st.Sites, absRoot)
	}
	return nil
}

// importDump runs the import phase: the privilege check, the packet
// check, the statements, then FOREIGN_KEY_CHECKS=1 and the ~ft_ reset.
func importDump(ctx context.Context, s *session, dump *Dump, st *state, opts Options) error {
	if err := s.checkPrivileges(ctx); err != nil {
		return err
	}
	size, at, err := prescan(ctx, dump, st.Offset)
	if err != nil {
		return fmt.Errorf("bitrixdb: scan the dump: %w", err)
	}
	im := &importer{s: s, dump: dump, st: st, stateDir: opts.StateDir, every: opts.SaveEvery, prog: progress{opts.Progress}}
	if !im.fits(size) {
		return im.packetError(at, "", size)
	}
	if err := im.run(ctx); err != nil {
		return err
	}
	if err := s.exec(ctx, "SET FOREIGN_KEY_CHECKS = 1"); err != nil {
		_ = im.save()
		return fmt.Errorf("bitrixdb: %w", err)
	}
	if st.FullText == "dropped" {
		if err := resetFullTextOptions(ctx, s); err != nil {
			_ = im.save()
			return fmt.Errorf("bitrixdb: reset the ~ft_ options: %w", err)
		}
	}
	st.Phase = phaseImported
	return im.save()
}

func fill(res *Result, st *state) {
	res.Dump = st.Dump
	for _, p := range st.Parts {
		res.Bytes += p.Size
	}
	res.Statements = st.Statements
	res.Duplicates = st.Duplicates
	res.Elapsed = st.Elapsed
	res.FullTextDropped = st.FullText == "dropped"
	res.DefinersDropped = st.Definers
}

// Status is what the resume state says of a database restore, for
// `haul status`. It never holds the password.
type Status struct {
	Target     string // the URL, without a password
	Dump       string
	Bytes      int64 // size of the dump
	Done       int64 // bytes of the dump in the database
	Statements int64 // statements run up to Done
	Duplicates int64
	// Imported: every statement ran; Finished: the site is rewritten and
	// cleaned up too, and a rerun does nothing.
	Imported, Finished bool
	Elapsed            time.Duration // import time over every run
	Updated            time.Time     // when the state was last written
}

// ReadStatus reads the resume state in stateDir; nil when there is none
// (no database restore was started there).
func ReadStatus(stateDir string) (*Status, error) {
	st, err := loadState(stateDir)
	if err != nil || st == nil {
		return nil, err
	}
	s := &Status{Target: st.Target, Dump: st.Dump, Done: st.Offset, Statements: st.Statements, Duplicates: st.Duplicates,
		Imported: st.Phase != phaseImport, Finished: st.Phase == phaseDone, Elapsed: st.Elapsed, Updated: st.Updated}
	for _, p := range st.Parts {
		s.Bytes += p.Size
	}
	if s.Imported {
		s.Done = s.Bytes
	}
	return s, nil
}

// IsDone reports whether the state in stateDir says the database restore
// into target finished for the site at root (for skipping the step): the
// same dump restored into another tree still needs that tree's site
// files pointed at the database.
func IsDone(stateDir string, target Target, root string) bool {
	st, err := loadState(stateDir)
	if err != nil || st == nil || st.Phase != phaseDone || st.Target != target.String() {
		return false
	}
	abs, err := filepath.Abs(root)
	return err == nil && slices.Contains(st.Sites, abs)
}
