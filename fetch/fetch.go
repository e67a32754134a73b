package fetch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/contact"
	"github.com/haul-dev/haul/fetch/destdir"
	"github.com/haul-dev/haul/fetch/multi"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/internal/bwlimit"
	"github.com/haul-dev/haul/internal/retry"
)

// Options configures Fetch, Verify and Repair.
type Options struct {
	Sources []string // SOURCE arguments
	Dest    string   // the workdir
	Open    source.OpenOptions
	Filter  source.Filter
	// Manifest is a --manifest PATH or URL naming a reference file.
	Manifest    string
	Connections int   // -j, default 8
	PieceSize   int64 // --chunk-size, default 8 MiB
	// AutoPieceSize lets a set of small parts use smaller pieces (no
	// --chunk-size given): see pieceplan.AutoSize.
	AutoPieceSize bool
	Retries       int              // attempts per piece, default 10
	Timeout       time.Duration    // stall timeout, default 60 s
	Limiter       *bwlimit.Limiter // --bwlimit; nil = unlimited
	Progress      Progress
	// Meter, if not nil, counts the bytes pulled, across the steps of a
	// job (Summary.Pulled counts one call's).
	Meter   *Meter
	Backoff retry.Backoff // nil = retry.DefaultBackoff
	// SetCheck decodes a whole set split at arbitrary bytes (parts in
	// order, at their final paths) and returns a *integrity.FormatError
	// naming the first bad part (or a *destdir.SuspectError naming the parts
	// it may be in), or an error wrapping destdir.ErrNoVerdict when it
	// cannot decode the set at all (an unknown format): nil means the set
	// decoded. It runs when a multi-part set has parts no reference could
	// prove. Label names it in verified_by.
	SetCheck      func(ctx context.Context, paths []string, names []string) error
	SetCheckLabel string
	// Replace lets a fetch into a DEST holding another set discard it
	// (--replace); without it that fetch stops (*destdir.OtherSetError).
	Replace bool
	// GiveUpAfter is how long a source may keep failing at the network
	// level, across runs, before a run ends with *GaveUpError (exit 1)
	// rather than ErrNetworkDown (exit 75): 0 means
	// contact.DefaultGiveUpAfter, below 0 never (see package contact).
	GiveUpAfter time.Duration
	// Source, when not nil, is the source to read from, opened by the
	// caller (a library's own kind of source, such as the CDN files of
	// restore/bitrixcloud); Sources are then not opened and only label
	// the set. Fetch closes it when it returns.
	Source source.Source

	// Mirrors are other copies of the set (--mirror, --mirror-list): they
	// supply bytes during the run, for speed and to heal parts that fail
	// proof; the primary SOURCE alone defines the set (package multi).
	Mirrors []multi.Mirror

	contact *contact.Contact // the record of the source reached (contact.go)
}

func (o *Options) defaults() {
	if o.Connections <= 0 {
		o.Connections = 8
	}
	if o.Open.SSH.Connections <= 0 {
		o.Open.SSH.Connections = o.Connections // the SFTP pool's size
	}
	if o.PieceSize <= 0 {
		o.PieceSize = 8 << 20
	}
	if o.Retries <= 0 {
		o.Retries = 10
	}
	if o.Timeout <= 0 {
		o.Timeout = source.DefaultTimeout
	}
	if o.Open.Timeout <= 0 {
		o.Open.Timeout = o.Timeout // every wait on the network, not only bodies
	}
	if o.Progress == nil {
		o.Progress = nopProgress{}
	}
	if o.Backoff == nil {
		o.Backoff = retry.DefaultBackoff
	}
}

// Summary is what a Fetch, Verify or Repair leaves behind.
type Summary struct {
	Parts      int
	Verified   int
	Unverified int
	Broken     []string
	Missing    []string
	BytesTotal int64
	Pulled     int64 // bytes received over the link in this run
	// Sources are the bytes each source delivered; they sum to Pulled.
	Sources []source.Account
	// Detail says why each broken or missing part is so.
	Detail map[string]string
}

// Fetch downloads every part of the set into opts.Dest, resumably, and
// verifies each part as it completes; a part that fails is fetched again
// up to opts.Retries times. It returns *IncompleteError (exit 3) when parts
// stay broken or missing, an error wrapping ErrInterrupted (exit 75) when
// ctx ends first, and ErrNetworkDown (exit 75) when the link stays down.
func Fetch(ctx context.Context, opts Options) (sum *Summary, err error) {
	defer func() { err = opts.contactEnd(sum, settle(err)) }()
	opts.defaults()
	if err := destdir.Ensure(opts.Dest); err != nil {
		return nil, err
	}
	// An unreadable state is set aside, not a dead end: the parts on disk
	// are taken in again and proven (adoptFound).
	if note, err := chunk.Recover(opts.Dest); err != nil {
		return nil, err
	} else if note != "" {
		opts.Progress.Event(Event{Kind: chunk.EventWarning, Message: note})
	}
	warn := func(msg string) { opts.Progress.Event(Event{Kind: chunk.EventWarning, Message: msg}) }
	if err := destdir.SameSet(opts.Dest, opts.Sources, opts.Replace, warn); err != nil {
		return nil, err
	}
	if err := opts.Filter.Validate(); err != nil {
		return nil, source.Permanent(fmt.Errorf("%w: %v", source.ErrBadSource, err))
	}
	op, err := openSources(ctx, &opts)
	if err != nil {
		return nil, err
	}
	if op.Prefix != "" {
		opts.Filter.Prefix = op.Prefix
	}
	e := &engine{opts: &opts, src: op.Source}
	defer e.endSources()
	if err := e.recheckDest(ctx, true); err != nil {
		return nil, err
	}
	for {
		err := e.prepareRun(ctx)
		if err == nil {
			// A failed set decode sends a part back for another fetch;
			// that loop is bounded by the parts' attempts (--retries).
			err = e.setCheck(ctx)
			if errors.Is(err, errRelist) {
				continue
			}
		}
		if e.st == nil {
			return nil, err
		}
		if err == nil && e.dir().LastVolumes(e.st) {
			err = e.save()
		}
		s := e.summary()
		s.Sources = e.accounts()
		if err == nil {
			err = s.Err(opts.Dest)
		}
		return s, err
	}
}

// prepareRun prepares the engine and runs it. A part that changes at the
// source mid-run sends it back to listing with the source opened again
// (an HTTP source learns versions only when it is opened), at most
// maxChanges times, so a source that changes all the time still ends.
func (e *engine) prepareRun(ctx context.Context) error {
	for changes := 1; ; changes++ {
		if err := retryTransient(ctx, e.opts, func() error { return e.prepare(ctx) }); err != nil {
			return err
		}
		err := e.run(ctx)
		if !errors.Is(err, errRelist) {
			return err
		}
		if changes > maxChanges {
			return fmt.Errorf("%w: parts changed at the source %d times during this run; run again when the copy at the source is complete", ErrInterrupted, changes)
		}
		e.closeSource()
		op, err := openSources(ctx, e.opts)
		if err != nil {
			return err
		}
		e.src = op.Source
	}
}

// maxChanges bounds how often one run starts over because a part changed
// at the source.
const maxChanges = 5

// IncompleteError lists parts that stay broken or missing (exit 3).
type IncompleteError struct {
	Dest    string
	Broken  []string
	Missing []string
	Detail  map[string]string // part → why
}

func (e *IncompleteError) Error() string {
	// Parts broken for one reason (the suspects of a set that does not
	// decode) are named together, the reason once; past maxNamed entries
	// the parts are counted, so that 100,000 broken parts make one line.
	same := map[string][]string{}
	for _, n := range e.Broken {
		if d := e.Detail[n]; d != "" {
			same[d] = append(same[d], n)
		}
	}
	var said []string
	more := 0
	for i, n := range slices.Concat(e.Broken, e.Missing) {
		d, group, missing := e.Detail[n], same[e.Detail[n]], i >= len(e.Broken)
		switch {
		case !missing && d != "" && len(group) > 1 && group[0] != n: // named with the first
		case len(said) >= maxNamed:
			more += max(1, len(group))
		case missing:
			said = append(said, fmt.Sprintf("part %s is missing at the source", n))
		case d != "" && len(group) > 1:
			said = append(said, fmt.Sprintf("parts %s are broken (%s)", strings.Join(group, ", "), d))
		default:
			said = append(said, strings.TrimSuffix(fmt.Sprintf("part %s is broken (%s)", n, d), " ()"))
		}
	}
	if more > 0 {
		said = append(said, fmt.Sprintf("and %d more parts broken or missing (haul status %s lists them)", more, e.Dest))
	}
	return fmt.Sprintf("%s; run: haul repair --from ssh://HOST/DIR %s (a host with a good copy), or haul repair %s to retry the source", strings.Join(said, "; "), e.Dest, e.Dest)
}

// maxNamed is how many broken or missing parts an error names one by one.
const maxNamed = 10

func (e *IncompleteError) Unwrap() error { return ErrIncomplete }

// Err turns a summary into the error the run ends with, nil when every
// part is on disk and proven (or unverifiable).
func (s *Summary) Err(dest string) error {
	if len(s.Broken) == 0 && len(s.Missing) == 0 {
		return nil
	}
	return &IncompleteError{Dest: dest, Broken: s.Broken, Missing: s.Missing, Detail: s.Detail}
}
