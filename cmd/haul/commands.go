package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/internal/atomicfile"
	"github.com/haul-dev/haul/internal/job"
)

// sources adds the URLs of a --list file to the SOURCE arguments.
func (o *opts) sources(pos []string) ([]string, error) {
	if o.list == "" {
		return pos, checkDuplicates(pos)
	}
	urls, err := readURLList(o.list)
	if err != nil {
		return nil, fmt.Errorf("--list: %w", err)
	}
	pos = append(pos, urls...)
	return pos, checkDuplicates(pos)
}

// readURLList reads a file of one URL a line (# starts a comment): --list
// and --mirror-list.
func readURLList(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

func cmdFetch(ctx context.Context, a *app, o *opts, pos []string) error {
	dest := pos[len(pos)-1]
	srcs, err := o.sources(pos[:len(pos)-1])
	if err != nil {
		return err
	}
	if len(srcs) == 0 {
		return usagef("no SOURCE given")
	}
	fo, err := o.fetchOptions(srcs, dest)
	if err != nil {
		return err
	}
	a.announce("fetch", srcs, dest)
	ctx, s, err := a.begin(ctx, "fetch", dest, o)
	if err != nil {
		return err
	}
	return s.end(s.fetch(ctx, fo))
}

func cmdVerify(ctx context.Context, a *app, o *opts, pos []string) error {
	ctx, s, err := a.begin(ctx, "verify", pos[0], o)
	if err != nil {
		return err
	}
	return s.end(s.verify(ctx, o.json))
}

func cmdRepair(ctx context.Context, a *app, o *opts, pos []string) error {
	fo, err := o.fetchOptions(nil, pos[0])
	if err != nil {
		return err
	}
	var from []string
	if o.from != "" {
		from = []string{o.from}
	}
	a.announce("repair", from, pos[0])
	ctx, s, err := a.begin(ctx, "repair", pos[0], o)
	if err != nil {
		return err
	}
	return s.end(s.repair(ctx, fo, o.from))
}

func cmdRestore(ctx context.Context, a *app, o *opts, pos []string) error {
	if (o.into == "") == (o.assemble == "") {
		return usagef("give exactly one of --into DIR or --assemble FILE")
	}
	o.chain.bases = pos[:len(pos)-1]
	if err := o.chain.check(o.assemble); err != nil {
		return err
	}
	if err := o.db.check(o.assemble); err != nil {
		return err
	}
	dest := pos[len(pos)-1]
	a.announce("restore", nil, dest)
	ctx, s, err := a.begin(ctx, "restore", dest, o)
	if err != nil {
		return err
	}
	return s.end(s.restore(ctx, o))
}

func cmdRun(ctx context.Context, a *app, o *opts, pos []string) error {
	if o.into == "" {
		return usagef("haul run needs --into DIR")
	}
	if err := o.chain.check(""); err != nil {
		return err
	}
	if err := o.db.check(""); err != nil {
		return err
	}
	dest := pos[len(pos)-1]
	srcs, err := o.sources(pos[:len(pos)-1])
	if err != nil {
		return err
	}
	if len(srcs) == 0 {
		return usagef("no SOURCE given")
	}
	fo, err := o.fetchOptions(srcs, dest)
	if err != nil {
		return err
	}
	a.announce("run", srcs, dest)
	ctx, s, err := a.begin(ctx, "run", dest, o)
	if err != nil {
		return err
	}
	return s.end(s.runAll(ctx, fo, o))
}

// cmdStatus prints the state of DEST and exits as cron needs it: 0 done,
// 3 broken or missing parts, 75 still incomplete (also with --json). Every
// verdict is re-checked on disk first (a stat per part).
func cmdStatus(ctx context.Context, a *app, o *opts, pos []string) error {
	st, _, err := fetch.LoadChecked(ctx, pos[0])
	if err != nil {
		return err
	}
	events, _ := chunk.StatusEvents(pos[0])
	rep := chunk.BuildStatus(st, events, time.Now())
	rep.Dest = pos[0]
	if c := job.CloudStatus(pos[0]); c != nil {
		rep.AddCloud(*c)
	}
	if db := job.DBStatus(pos[0]); db != nil {
		rep.AddDB(*db)
	}
	if o.json {
		err = writeJSON(a.stdout, statusJSON(rep))
	} else {
		err = rep.WriteText(a.stdout)
	}
	if err != nil {
		return err
	}
	switch rep.State {
	case chunk.SetBroken:
		return &quietExit{3}
	case chunk.SetIncomplete:
		return &quietExit{75}
	}
	return nil
}

func cmdReport(ctx context.Context, a *app, o *opts, pos []string) error {
	if _, err := os.Stat(filepath.Join(pos[0], chunk.StateDir)); err != nil {
		return fmt.Errorf("%s: no haul state here (run haul fetch first)", pos[0])
	}
	events, err := chunk.ReadJournal(pos[0])
	if err != nil {
		return err
	}
	rep := chunk.BuildReport(events)
	if o.json {
		return writeJSON(a.stdout, reportJSON(rep))
	}
	return rep.WriteText(a.stdout)
}

func cmdManifest(ctx context.Context, a *app, o *opts, pos []string) error {
	oo := source.OpenOptions{
		S3:  source.S3Options{Endpoint: o.endpoint, Region: o.region, Anonymous: o.anonymous},
		SSH: source.SSHOptions{Identity: o.identity, KnownHosts: o.knownHosts, AcceptNewHostKey: o.acceptNew, Passphrase: passphrasePrompt()},
	}
	if o.out == "" {
		return fetch.WriteManifest(ctx, pos[0], oo, o.pieceSize, a.stdout)
	}
	var b strings.Builder
	if err := fetch.WriteManifest(ctx, pos[0], oo, o.pieceSize, &b); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(o.out, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", o.out, err)
	}
	if !a.quiet {
		fmt.Fprintf(a.stderr, "haul: wrote %s\n", o.out)
	}
	return nil
}

// exitCode maps an error to the SPEC's exit codes: a usage error is 2, a
// quiet exit its own code, everything else the job's outcome
// (job.ExitCode, which the journal records too).
func exitCode(err error) int {
	var ue *usageError
	var qe *quietExit
	switch {
	case errors.As(err, &qe):
		return qe.code
	case errors.As(err, &ue):
		return 2
	}
	return job.ExitCode(err)
}
