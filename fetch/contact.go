package fetch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/source/open"
	"github.com/haul-dev/haul/internal/atomicfile"
	"github.com/haul-dev/haul/internal/retry"
)

// The contact rule (exit codes cron can trust). A source this DEST has
// never reached that cannot be reached at all (retry.ReachOf: the name
// does not resolve, nothing listens, TLS fails, another protocol answers)
// is a wrong address far more often than a network that is down: after
// one or two quick tries the run ends with an *UnreachableError (exit 1).
// Once reached, such failures are the network down (exit 75, tried
// --retries times) — until the source has been failing at the network
// level, across runs, for longer than GiveUpAfter: then *GaveUpError
// (exit 1), so an unattended job alerts in the end. The record is
// DEST/.haul/contact.json, keyed by open.Target.ID (no secrets).

// ContactFile is the record of the sources a DEST has reached, in
// DEST/.haul.
const ContactFile = "contact.json"

// DefaultGiveUpAfter is Options.GiveUpAfter when it is zero.
const DefaultGiveUpAfter = 24 * time.Hour

var (
	// ErrUnreachable is the sentinel of *UnreachableError.
	ErrUnreachable = errors.New("the source cannot be reached")
	// ErrGaveUp is the sentinel of *GaveUpError.
	ErrGaveUp = errors.New("the source keeps failing: gave up")
)

// UnreachableError is a source that cannot be reached at all and was never
// reached from this DEST, or whose TLS or protocol is wrong: a person must
// fix the address (exit 1).
type UnreachableError struct{ Err *open.ReachError }

func (e *UnreachableError) Error() string           { return e.Err.Error() }
func (e *UnreachableError) Unwrap() []error         { return []error{ErrUnreachable, e.Err} }
func (e *UnreachableError) RetryClass() retry.Class { return retry.Permanent }

// GaveUpError is a run that failed at the network level when the source
// had been failing so since Since, longer than Options.GiveUpAfter.
type GaveUpError struct {
	Target open.Target
	Since  time.Time
	After  time.Duration
	Err    error // the run's own failure (wraps ErrNetworkDown)
}

func (e *GaveUpError) Error() string {
	cause := e.Err.Error()
	if re := (*open.ReachError)(nil); errors.As(e.Err, &re) {
		cause = re.Error() // the address, what failed and the fix, without the retry count
	} else {
		cause = e.Target.Kind + " " + e.Target.Addr + ": " + cause
	}
	return fmt.Sprintf("%s; failing since %s, longer than --give-up-after %s", cause, e.Since.Local().Format(time.RFC3339), shortDuration(e.After))
}

// shortDuration writes d as it is typed: 24h, 90m, 1h30m, 1ms.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func (e *GaveUpError) Unwrap() []error         { return []error{ErrGaveUp, e.Err} }
func (e *GaveUpError) RetryClass() retry.Class { return retry.Permanent }

// contactRecord is what a DEST knows of one source.
type contactRecord struct {
	// Reached is when the source was last opened.
	Reached *time.Time `json:"reached,omitempty"`
	// FailingSince is when runs began to end with the network down;
	// cleared by a run that moved bytes or did not fail so.
	FailingSince *time.Time `json:"failing_since,omitempty"`
}

type contactBook struct {
	Schema  int                      `json:"schema"`
	Sources map[string]contactRecord `json:"sources"`
}

// contact is the run's view of the record of its source.
type contact struct {
	path   string
	target open.Target
	rec    contactRecord
	opened bool // the source was opened in this run
}

// contactFor loads the record of opts' sources once per run; nil when
// there is nothing to record (no DEST, a local source, sources that do not
// parse: opening them says why).
func (o *Options) contactFor() *contact {
	if o.contact != nil || o.Dest == "" {
		return o.contact
	}
	t, err := open.TargetOf(o.Sources, o.Open)
	if err != nil || t.ID == "" {
		return nil
	}
	c := &contact{path: filepath.Join(o.Dest, chunk.StateDir, ContactFile), target: t}
	if b, err := c.load(); err == nil {
		c.rec = b.Sources[t.ID]
	}
	o.contact = c
	return c
}

func (c *contact) load() (*contactBook, error) {
	b := &contactBook{Schema: 1, Sources: map[string]contactRecord{}}
	data, err := os.ReadFile(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, b); err != nil {
		return nil, err
	}
	if b.Sources == nil {
		b.Sources = map[string]contactRecord{}
	}
	return b, nil
}

// save writes the record back, keeping the other sources'. A record that
// cannot be read is replaced: it only ever shortens a wait.
func (c *contact) save() error {
	b, err := c.load()
	if err != nil {
		b = &contactBook{Schema: 1, Sources: map[string]contactRecord{}}
	}
	b.Sources[c.target.ID] = c.rec
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(c.path, append(data, '\n'), 0o600); err != nil {
		return source.Permanent(fmt.Errorf("DEST %s: record of the sources reached: %v: %w", filepath.Dir(filepath.Dir(c.path)), err, ErrDest))
	}
	return nil
}

// firstContact reports whether the source was never reached from DEST.
func (c *contact) firstContact() bool { return c != nil && c.rec.Reached == nil }

// reachedNow records that the source was opened.
func (c *contact) reachedNow() error {
	if c == nil {
		return nil
	}
	now := time.Now().UTC()
	c.rec.Reached, c.opened = &now, true
	return c.save()
}

// firstContactTries is how often a source never reached is tried when it
// cannot be reached at all: once more, quickly, for a server starting up.
const firstContactTries = 2

// openSources opens the SOURCE arguments, trying again while the link or
// the server is down: --retries times for a source reached before, once
// more at most for one never reached (see the contact rule above).
func openSources(ctx context.Context, opts *Options) (*source.Opened, error) {
	c := opts.contactFor()
	first := c.firstContact()
	worth := func(err error, attempt int) bool {
		reach := retry.ReachOf(err)
		if first && reach != retry.Reached {
			return attempt < firstContactTries && retry.Classify(err) == retry.Transient
		}
		return retry.Classify(err) == retry.Transient || reach.Network()
	}
	p := opts.policy("", worth, func(err error, attempt int) string {
		return fmt.Sprintf("%v; retrying (%d/%d)", err, attempt, opts.Retries)
	})
	var op *source.Opened
	err := retry.Do(ctx, p, func(int) error {
		var err error
		op, err = open.OpenSources(ctx, opts.Sources, opts.Open)
		return err
	})
	if err == nil {
		return op, c.reachedNow()
	}
	var re *open.ReachError
	if ctx.Err() == nil && errors.As(err, &re) && (first || !re.Reach.Network()) {
		return nil, &UnreachableError{Err: re}
	}
	if ex := (*retry.ExhaustedError)(nil); errors.As(err, &ex) {
		return nil, fmt.Errorf("%w: %d attempts: %v", ErrNetworkDown, ex.Attempts, ex.Err)
	}
	return nil, err
}

// contactEnd updates the record with how the run ended and gives up when
// the source has been failing for longer than opts.GiveUpAfter. pulled is
// what the run moved: a run that moved bytes is progress, not a source
// that stays down.
func (o *Options) contactEnd(pulled int64, err error) error {
	c := o.contact
	if c == nil {
		return err
	}
	now := time.Now().UTC()
	switch {
	case errors.Is(err, ErrNetworkDown):
		if c.rec.FailingSince == nil || pulled > 0 {
			c.rec.FailingSince = &now
		}
		if serr := c.save(); serr != nil {
			return errors.Join(err, serr)
		}
		after := o.GiveUpAfter
		if after == 0 {
			after = DefaultGiveUpAfter
		}
		if since := *c.rec.FailingSince; after > 0 && now.Sub(since) >= after {
			return &GaveUpError{Target: c.target, Since: since, After: after, Err: err}
		}
	case c.opened && c.rec.FailingSince != nil:
		c.rec.FailingSince = nil
		if serr := c.save(); serr != nil && err == nil {
			return serr
		}
	}
	return err
}

// pulled is s.Pulled, 0 for no summary.
func (s *Summary) pulled() int64 {
	if s == nil {
		return 0
	}
	return s.Pulled
}
