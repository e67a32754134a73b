package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/haul-dev/haul/fetch"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/internal/bwlimit"
	"github.com/haul-dev/haul/internal/retry"
	"github.com/haul-dev/haul/internal/testhook"
	"github.com/haul-dev/haul/internal/units"
)

// usageError is a command line that cannot run (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// sizeFlag parses sizes with K/M/G suffixes.
type sizeFlag struct{ n *int64 }

func (s sizeFlag) String() string {
	if s.n == nil {
		return ""
	}
	return units.FormatBytes(*s.n)
}
func (s sizeFlag) Set(v string) error {
	n, err := units.ParseSize(v)
	if err != nil {
		return err
	}
	*s.n = n
	return nil
}

// common holds the flags shared by the commands that move data.
type common struct {
	connections int
	chunkSize   int64
	bwlimit     string
	until       string
	maxTime     time.Duration
	retries     int
	timeout     time.Duration
	progress    string
	endpoint    string
	region      string
	anonymous   bool
	identity    string
	knownHosts  string
	acceptNew   bool
	password    string
	include     listFlag
	exclude     listFlag
	manifest    string
	list        string
	probe       bool
	json        bool
	// chunkSizeSet is whether --chunk-size was given.
	chunkSizeSet bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.IntVar(&c.connections, "connections", 8, "concurrent transfers in total")
	fs.IntVar(&c.connections, "j", 8, "short for --connections")
	c.chunkSize = 8 << 20
	fs.Var(sizeFlag{&c.chunkSize}, "chunk-size", "piece size for transfers (default 8MiB; smaller, down to 256KiB, for a set too small to give every connection four pieces)")
	fs.StringVar(&c.bwlimit, "bwlimit", "", `cap the total rate: RATE or "HH:MM,RATE HH:MM,RATE …" (off = unlimited)`)
	fs.StringVar(&c.until, "until", "", "stop cleanly at this local time HH:MM (exit 75)")
	fs.DurationVar(&c.maxTime, "max-time", 0, "stop cleanly after this long (exit 75)")
	fs.IntVar(&c.retries, "retries", 10, "attempts per piece before a part is declared broken")
	fs.DurationVar(&c.timeout, "timeout", 60*time.Second, "retry a transfer that moves no byte for this long")
	fs.StringVar(&c.progress, "progress", "auto", "auto|bars|log|none")
	fs.StringVar(&c.endpoint, "endpoint", "", "S3 endpoint URL (or AWS_ENDPOINT_URL)")
	fs.StringVar(&c.region, "region", "", "S3 region (or AWS_REGION)")
	fs.BoolVar(&c.anonymous, "anonymous", false, "S3 without credentials (public buckets)")
	fs.StringVar(&c.identity, "identity", "", "SSH private key file")
	fs.StringVar(&c.identity, "i", "", "short for --identity")
	fs.StringVar(&c.knownHosts, "known-hosts", "", "known_hosts file (default ~/.ssh/known_hosts)")
	fs.BoolVar(&c.acceptNew, "accept-new-host-key", false, "trust and record an unknown SSH host key (a changed key is always refused)")
	fs.StringVar(&c.password, "password-file", "", "file holding the password of an encrypted archive")
	fs.Var(&c.include, "include", "select parts matching GLOB (repeatable)")
	fs.Var(&c.exclude, "exclude", "skip parts matching GLOB (repeatable)")
	fs.StringVar(&c.manifest, "manifest", "", "reference file (sum file or haul manifest), PATH or URL")
	fs.StringVar(&c.list, "list", "", "file with one URL per line")
	fs.BoolVar(&c.probe, "probe-parts", false, "derive NAME.1, NAME.2 … from one URL by trying until 404")
}

// fetchOptions turns the flags into engine options.
func (c *common) fetchOptions(sources []string, dest string) (fetch.Options, error) {
	o := fetch.Options{
		Sources:     sources,
		Dest:        dest,
		Connections: c.connections,
		PieceSize:   c.chunkSize,
		Retries:     c.retries,
		// Without --chunk-size, a set of small parts gets smaller pieces.
		AutoPieceSize: !c.chunkSizeSet,
		Timeout:       c.timeout,
		Manifest:      c.manifest,
		Filter:        source.Filter{Include: c.include, Exclude: c.exclude},
		Open: source.OpenOptions{
			S3:         source.S3Options{Endpoint: c.endpoint, Region: c.region, Anonymous: c.anonymous},
			SSH:        source.SSHOptions{Identity: c.identity, KnownHosts: c.knownHosts, AcceptNewHostKey: c.acceptNew, Passphrase: passphrasePrompt(), Connections: c.connections},
			ProbeParts: c.probe,
		},
	}
	if c.connections < 1 || c.connections > 256 {
		return o, usagef("--connections %d: want 1 to 256", c.connections)
	}
	if c.chunkSize < 64<<10 || c.chunkSize > 1<<30 {
		return o, usagef("--chunk-size %s: want 64KiB to 1GiB", units.FormatBytes(c.chunkSize))
	}
	if c.bwlimit != "" {
		sched, err := bwlimit.ParseBandwidth(c.bwlimit)
		if err != nil {
			return o, usagef("--bwlimit: %v", err)
		}
		o.Limiter = bwlimit.NewLimiter(sched, nil)
	}
	if testhook.FastRetry() {
		// Fault tests finish in seconds; never set in production.
		o.Backoff = retry.FastBackoff
	}
	return o, nil
}

// parseArgs parses GNU style: flags may stand before or after positional
// arguments, "--flag value" and "--flag=value", and "--" ends flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		if k := strings.IndexByte(name, '='); k >= 0 {
			flags = append(flags, a)
			name = name[:k]
			if fs.Lookup(name) == nil {
				return nil, usagef("unknown flag %s", a[:strings.IndexByte(a, '=')])
			}
			continue
		}
		if name == "h" || name == "help" {
			return nil, flag.ErrHelp
		}
		f := fs.Lookup(name)
		if f == nil {
			return nil, usagef("unknown flag %s", a)
		}
		flags = append(flags, a)
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			continue
		}
		if i+1 >= len(args) {
			return nil, usagef("flag %s needs a value", a)
		}
		flags = append(flags, args[i+1])
		i++
	}
	if err := fs.Parse(flags); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usagef("%v", err)
	}
	return pos, nil
}
