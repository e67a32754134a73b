package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
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

// opts is every flag of every command; registerFor picks a command's own.
type opts struct {
	common
	from      string
	into      string
	assemble  string
	sameOwner bool
	out       string
	pieceSize int64
	size      int64
	chain     chainOpts
}

func registerFor(name string, fs *flag.FlagSet) *opts {
	o := &opts{}
	switch name {
	case "fetch", "repair", "run":
		o.common.register(fs)
	case "restore":
		fs.StringVar(&o.progress, "progress", "auto", "auto|bars|log|none")
		fs.StringVar(&o.password, "password-file", "", "file holding the password of an encrypted archive")
		fs.StringVar(&o.until, "until", "", "stop cleanly at this local time HH:MM (exit 75)")
		fs.DurationVar(&o.maxTime, "max-time", 0, "stop cleanly after this long (exit 75)")
	case "verify", "status", "report":
		fs.BoolVar(&o.json, "json", false, "print JSON")
	}
	switch name {
	case "repair":
		fs.StringVar(&o.from, "from", "", "fetch the replacements from this source (e.g. ssh://user@host/dir/)")
	case "run", "restore":
		fs.StringVar(&o.into, "into", "", "restore the tree into DIR (built beside it, moved into place when complete)")
		fs.BoolVar(&o.sameOwner, "same-owner", false, "keep the archive's owners (root only)")
		o.chain.register(fs, name)
	}
	if name == "restore" {
		fs.StringVar(&o.assemble, "assemble", "", "write the joined archive to FILE instead of unpacking")
	}
	if name == "manifest" {
		o.pieceSize = 8 << 20
		fs.Var(sizeFlag{&o.pieceSize}, "piece-size", "piece size (default 8MiB)")
		fs.StringVar(&o.out, "o", "", "write to FILE (default stdout)")
		fs.StringVar(&o.endpoint, "endpoint", "", "S3 endpoint URL")
		fs.StringVar(&o.region, "region", "", "S3 region")
		fs.BoolVar(&o.anonymous, "anonymous", false, "S3 without credentials")
		fs.StringVar(&o.identity, "identity", "", "SSH private key file")
		fs.StringVar(&o.knownHosts, "known-hosts", "", "known_hosts file")
		fs.BoolVar(&o.acceptNew, "accept-new-host-key", false, "trust and record an unknown SSH host key")
	}
	if name == "demo" {
		o.size = 24 << 20
		fs.Var(sizeFlag{&o.size}, "size", "size of the generated site (default 24MiB)")
		fs.StringVar(&o.progress, "progress", "auto", "auto|bars|log|none")
	}
	return o
}

// parse parses a command's flags and checks the positional count.
func parse(name string, args []string, min, max int) (*opts, []string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	o := registerFor(name, fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, nil, err
	}
	fs.Visit(func(f *flag.Flag) { o.chunkSizeSet = o.chunkSizeSet || f.Name == "chunk-size" })
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		return nil, nil, usagef("wrong number of arguments")
	}
	return o, pos, nil
}

// sources adds the URLs of a --list file to the SOURCE arguments.
func (o *opts) sources(pos []string) ([]string, error) {
	if o.list == "" {
		return pos, nil
	}
	f, err := os.Open(o.list)
	if err != nil {
		return nil, fmt.Errorf("--list: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			pos = append(pos, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--list %s: %w", o.list, err)
	}
	return pos, nil
}

func cmdFetch(ctx context.Context, a *app, args []string) error {
	o, pos, err := parse("fetch", args, 1, -1)
	if err != nil {
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
	ctx, s, err := a.begin(ctx, "fetch", dest, o)
	if err != nil {
		return err
	}
	return s.end(s.fetch(ctx, fo))
}

func cmdVerify(ctx context.Context, a *app, args []string) error {
	o, pos, err := parse("verify", args, 1, 1)
	if err != nil {
		return err
	}
	ctx, s, err := a.begin(ctx, "verify", pos[0], o)
	if err != nil {
		return err
	}
	return s.end(s.verify(ctx, o.json))
}

func cmdRepair(ctx context.Context, a *app, args []string) error {
	o, pos, err := parse("repair", args, 1, 1)
	if err != nil {
		return err
	}
	fo, err := o.fetchOptions(nil, pos[0])
	if err != nil {
		return err
	}
	ctx, s, err := a.begin(ctx, "repair", pos[0], o)
	if err != nil {
		return err
	}
	return s.end(s.repair(ctx, fo, o.from))
}

func cmdRestore(ctx context.Context, a *app, args []string) error {
	o, pos, err := parse("restore", args, 1, -1)
	if err != nil {
		return err
	}
	if (o.into == "") == (o.assemble == "") {
		return usagef("give exactly one of --into DIR or --assemble FILE")
	}
	o.chain.bases = pos[:len(pos)-1]
	if err := o.chain.check(o.assemble); err != nil {
		return err
	}
	ctx, s, err := a.begin(ctx, "restore", pos[len(pos)-1], o)
	if err != nil {
		return err
	}
	return s.end(s.restore(ctx, o))
}

func cmdRun(ctx context.Context, a *app, args []string) error {
	o, pos, err := parse("run", args, 2, -1)
	if err != nil {
		return err
	}
	if o.into == "" {
		return usagef("haul run needs --into DIR")
	}
	if err := o.chain.check(""); err != nil {
		return err
	}
	dest := pos[len(pos)-1]
	srcs, err := o.sources(pos[:len(pos)-1])
	if err != nil {
		return err
	}
	fo, err := o.fetchOptions(srcs, dest)
	if err != nil {
		return err
	}
	ctx, s, err := a.begin(ctx, "run", dest, o)
	if err != nil {
		return err
	}
	return s.end(s.runAll(ctx, fo, o))
}

func cmdStatus(ctx context.Context, a *app, args []string) error {
	o, pos, err := parse("status", args, 1, 1)
	if err != nil {
		return err
	}
	st, err := chunk.Load(pos[0])
	if err != nil {
		return err
	}
	events, _ := chunk.ReadJournal(pos[0])
	rep := chunk.BuildStatus(st, events, time.Now())
	if o.json {
		return writeJSON(a.stdout, rep)
	}
	return rep.WriteText(a.stdout)
}

func cmdReport(ctx context.Context, a *app, args []string) error {
	o, pos, err := parse("report", args, 1, 1)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(pos[0], chunk.StateDir)); err != nil {
		return fmt.Errorf("%s: no haul state here (run haul fetch first)", pos[0])
	}
	events, err := chunk.ReadJournal(pos[0])
	if err != nil {
		return err
	}
	rep := chunk.BuildReport(events)
	if o.json {
		return writeJSON(a.stdout, rep)
	}
	return rep.WriteText(a.stdout)
}

func cmdManifest(ctx context.Context, a *app, args []string) error {
	o, pos, err := parse("manifest", args, 1, 1)
	if err != nil {
		return err
	}
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
	fmt.Fprintf(a.stderr, "haul: wrote %s\n", o.out)
	return nil
}

func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// exitCode maps an error to the SPEC's exit codes: a usage error is 2,
// everything else is the job's outcome (job.ExitCode, which the journal
// records too).
func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return job.ExitCode(err)
}
