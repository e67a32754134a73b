package main

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/haul-dev/haul/fetch"
	"github.com/haul-dev/haul/fetch/contact"
	"github.com/haul-dev/haul/fetch/multi"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/internal/bwlimit"
	"github.com/haul-dev/haul/internal/retry"
	"github.com/haul-dev/haul/internal/testhook"
)

// opts is every flag of every command; each command registers the groups
// it takes. A group is one function, so a new flag (or a new group, for
// the AWS profile or --give-up-after) is added in one place and shows up in
// the help, the completions, the man pages and HAUL_<FLAG> at once.
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
	db        dbOpts
	cloud     cloudOpts
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
	include     []string
	exclude     []string
	manifest    string
	list        string
	probe       bool
	json        bool
	replace     bool
	giveUpAfter time.Duration
	mirrors     []string // --mirror URL[#j=N], as given
	mirrorList  string   // --mirror-list FILE
	// chunkSizeSet is whether --chunk-size was given.
	chunkSizeSet bool
}

// text is a plain string flag whose help shows typ as its placeholder.
func text(fs *pflag.FlagSet, p *string, name, short, typ, usage string) {
	fs.VarP(checkedString{p, typ, func(string) error { return nil }}, name, short, usage)
}

// addTransfer: how pieces move (fetch, repair, run).
func (o *opts) addTransfer(fs *pflag.FlagSet) {
	o.connections, o.chunkSize, o.retries, o.timeout = 8, 8<<20, 10, 60*time.Second
	fs.VarP(intValue{&o.connections, 1, 256}, "connections", "j", "concurrent transfers in total")
	fs.Var(sizeValue{&o.chunkSize, 64 << 10, 1 << 30, &o.chunkSizeSet}, "chunk-size", "piece size for transfers; when not given, a set too small to give every connection four pieces gets smaller ones, down to 256KiB")
	fs.Var(checkedString{&o.bwlimit, "RATE", checkBandwidth}, "bwlimit", `cap the total rate: RATE (512K, 2M, off) or a timetable "HH:MM,RATE HH:MM,RATE …"`)
	fs.Var(intValue{&o.retries, 1, 1000}, "retries", "attempts per piece before a part is declared broken")
	fs.Var(timeoutValue{&o.timeout}, "timeout", "retry a transfer that moves no byte for this long")
	fs.Var(globList{&o.include}, "include", "select parts matching GLOB (repeatable)")
	fs.Var(globList{&o.exclude}, "exclude", "skip parts matching GLOB (repeatable)")
	text(fs, &o.manifest, "manifest", "", "PATH|URL", "reference file: a sum file or a haul manifest")
	text(fs, &o.list, "list", "", "FILE", "file with one SOURCE URL per line (# starts a comment)")
	fs.BoolVar(&o.probe, "probe-parts", false, "derive NAME.1, NAME.2 … from one URL by trying until 404")
	fs.Var(mirrorList{&o.mirrors}, "mirror", "another copy of the set (any SOURCE; an http(s) URL ending in / serves each part at URL+NAME): supplies pieces for speed and heals parts that fail proof; #j=N sets its connections, #j=0 heals only (repeatable)")
	text(fs, &o.mirrorList, "mirror-list", "", "FILE", "a mirror given as one URL per part, one a line (presigned URLs)")
}

// addReplace: a DEST holds one set (fetch, run).
func (o *opts) addReplace(fs *pflag.FlagSet) {
	fs.BoolVar(&o.replace, "replace", false, "discard the set DEST holds when it is another one")
}

// addMover: every flag of the commands that move data (fetch, repair,
// run), in the order the help lists them.
func (o *opts) addMover(fs *pflag.FlagSet) {
	o.addTransfer(fs)
	o.addDeadline(fs)
	o.addProgress(fs)
	o.addS3(fs)
	o.addSSH(fs)
}

// addDeadline: a clean stop with the state saved (exit 75), and when a
// source that stays down stops being "run again later".
func (o *opts) addDeadline(fs *pflag.FlagSet) {
	fs.Var(checkedString{&o.until, "HH:MM", checkUntil}, "until", "stop cleanly at this local time (exit 75)")
	fs.Var(durationValue{&o.maxTime}, "max-time", "stop cleanly after this long (exit 75)")
	o.giveUpAfter = contact.DefaultGiveUpAfter
	fs.Var(giveUpValue{&o.giveUpAfter}, "give-up-after", "exit 1, not 75, once the source has failed this long across runs (off: never)")
}

// giveUpValue is --give-up-after: a duration above zero, or off (never;
// stored as -1, fetch.Options' "never").
type giveUpValue struct{ p *time.Duration }

func (v giveUpValue) String() string {
	if *v.p < 0 {
		return "off"
	}
	return shortDuration(*v.p)
}
func (v giveUpValue) Type() string { return "DURATION" }
func (v giveUpValue) Set(s string) error {
	if d, err := time.ParseDuration(s); s == "off" || (err == nil && d == 0) {
		*v.p = -1
		return nil
	}
	return durationValue(v).Set(s)
}

// checkEndpoint wants a URL with its scheme: without one, whether the
// server speaks TLS would be a guess, and a wrong guess reads as a
// network failure.
func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if !strings.Contains(s, "://") || err != nil {
		return fmt.Errorf("needs a scheme: http://%s or https://%s", s, s)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want http://HOST[:PORT] or https://HOST[:PORT]")
	}
	return nil
}

// progressModes are the values of --progress.
var progressModes = []string{"auto", "bars", "log", "none"}

func (o *opts) addProgress(fs *pflag.FlagSet) {
	o.progress = "auto"
	fs.Var(enumValue{&o.progress, progressModes}, "progress", "auto: bars on a terminal, a dated log line every 10s otherwise")
}

// addS3 and addSSH: how sources are reached.
func (o *opts) addS3(fs *pflag.FlagSet) {
	fs.Var(checkedString{&o.endpoint, "URL", checkEndpoint}, "endpoint", "S3 endpoint http(s)://HOST[:PORT] (else AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, ~/.aws/config)")
	text(fs, &o.region, "region", "", "REGION", "S3 region (else AWS_REGION, ~/.aws/config)")
	fs.BoolVar(&o.anonymous, "anonymous", false, "S3 without credentials (public buckets)")
}

func (o *opts) addSSH(fs *pflag.FlagSet) {
	text(fs, &o.identity, "identity", "i", "FILE", "SSH private key")
	text(fs, &o.knownHosts, "known-hosts", "", "FILE", "known_hosts file (else ~/.ssh/known_hosts)")
	fs.BoolVar(&o.acceptNew, "accept-new-host-key", false, "trust and record an unknown SSH host key (a changed key is always refused)")
}

// addRestore: where and how the set is unpacked (restore, run).
func (o *opts) addRestore(fs *pflag.FlagSet) {
	text(fs, &o.into, "into", "", "DIR", "restore the tree into DIR (built beside it, moved into place when complete)")
	fs.BoolVar(&o.sameOwner, "same-owner", false, "keep the archive's owners (root only)")
	text(fs, &o.password, "password-file", "", "FILE", "file holding the password of an encrypted archive")
}

// addDB: the Bitrix database step after the files are in place (restore,
// run). The password never comes from the command line.
func (o *opts) addDB(fs *pflag.FlagSet) {
	d := &o.db
	fs.Var(checkedString{&d.url, "URL", checkDBURL}, "db", "import the site's Bitrix database dump into URL: mysql://USER@HOST[:PORT]/DBNAME or mysql://USER@unix(/run/mysqld/mysqld.sock)/DBNAME (no password in it)")
	fs.Var(checkedString{&d.passwordFile, "FILE", checkPasswordFile}, "db-password-file", "file holding the database password (first line); else MYSQL_PWD, else ~/.my.cnf [client]")
	fs.BoolVar(&d.create, "db-create", false, "create the database when it does not exist")
	fs.Var(checkedString{&d.dump, "NAME", checkDumpName}, "db-dump", "the dump to import when bitrix/backup holds several (NAME of NAME.sql)")
	fs.Var(checkedString{&d.siteHost, "HOST", checkSiteHost}, "site-host", "the site's host name, for the Bitrix CDN and host-restriction fixes (skipped without it)")
	fs.BoolVar(&d.keepDump, "keep-dump", false, "keep the dump files in the site after the import (removed by default)")
}

func (o *opts) addJSON(fs *pflag.FlagSet) {
	fs.BoolVar(&o.json, "json", false, "print JSON (fields in the README)")
}

// timeoutValue is --timeout: a duration above zero, default 60s.
type timeoutValue struct{ p *time.Duration }

func (v timeoutValue) String() string     { return shortDuration(*v.p) }
func (v timeoutValue) Type() string       { return "DURATION" }
func (v timeoutValue) Set(s string) error { return durationValue(v).Set(s) }

// fetchOptions turns the flags into engine options. Every value was
// checked when it was parsed.
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
		GiveUpAfter:   c.giveUpAfter,
		Manifest:      c.manifest,
		Replace:       c.replace,
		Filter:        source.Filter{Include: c.include, Exclude: c.exclude},
		Open: source.OpenOptions{
			S3:         source.S3Options{Endpoint: c.endpoint, Region: c.region, Anonymous: c.anonymous},
			SSH:        source.SSHOptions{Identity: c.identity, KnownHosts: c.knownHosts, AcceptNewHostKey: c.acceptNew, Passphrase: passphrasePrompt(), Connections: c.connections},
			ProbeParts: c.probe,
		},
	}
	for _, s := range c.mirrors {
		m, err := multi.ParseMirror(s)
		if err != nil {
			return o, usagef("--mirror: %v", err)
		}
		o.Mirrors = append(o.Mirrors, m)
	}
	if c.mirrorList != "" {
		urls, err := readURLList(c.mirrorList)
		if err != nil {
			return o, usagef("--mirror-list: %v", err)
		}
		if len(urls) == 0 {
			return o, usagef("--mirror-list %s: no URL in it", c.mirrorList)
		}
		o.Mirrors = append(o.Mirrors, multi.Mirror{URLs: urls, Conns: -1})
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

// shortDuration writes a duration as it is typed: 60s, 90m, 24h.
func shortDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0 && d < 10*time.Hour:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0 && d < 10*time.Minute:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}
