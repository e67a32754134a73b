// Package contact keeps a DEST's record of the sources it has reached and
// says what a failure to reach one means — the rule behind exit codes cron
// can trust:
//
//  1. A source this DEST never reached that cannot be reached at all
//     (retry.ReachOf: the name does not resolve, nothing listens, no
//     route, TLS fails, another protocol answers) is a wrong address far
//     more often than a network that is down: it is tried once more,
//     quickly, and then the run ends with an *UnreachableError (exit 1).
//  2. Once reached, the same failures are the network down (exit 75,
//     tried --retries times), except TLS and protocol failures, which stay
//     a person's problem.
//  3. A source that has been failing at the network level, across runs,
//     for longer than --give-up-after ends the run with a *GaveUpError
//     (exit 1), so an unattended job alerts in the end. The clock starts
//     at the first run that ends with the network down and stops at a run
//     that reaches the source and moves bytes or ends otherwise.
//
// The record is DEST/.haul/contact.json (0600, written atomically), keyed
// by open.Target.ID: scheme, host and port, no secrets.
package contact

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/source/open"
	"github.com/haul-dev/haul/internal/atomicfile"
	"github.com/haul-dev/haul/internal/retry"
)

// File is the record's name in DEST/.haul.
const File = "contact.json"

// DefaultGiveUpAfter is how long a source may fail before a run gives up
// when nothing else is said.
const DefaultGiveUpAfter = 24 * time.Hour

// FirstTries is how often a source never reached is tried when it cannot
// be reached at all: once more, quickly, for a server starting up.
const FirstTries = 2

var (
	// ErrUnreachable is the sentinel of *UnreachableError.
	ErrUnreachable = errors.New("the source cannot be reached")
	// ErrGaveUp is the sentinel of *GaveUpError.
	ErrGaveUp = errors.New("the source keeps failing: gave up")
)

// UnreachableError is a source that cannot be reached at all and was never
// reached from this DEST, or whose TLS or protocol is wrong: a person must
// fix the address (exit 1). Its message is the ReachError's: the address,
// the cause and the fix.
type UnreachableError struct{ Err *open.ReachError }

func (e *UnreachableError) Error() string   { return e.Err.Error() }
func (e *UnreachableError) Unwrap() []error { return []error{ErrUnreachable, e.Err} }

// RetryClass implements retry.Classed: trying again is pointless.
func (e *UnreachableError) RetryClass() retry.Class { return retry.Permanent }

// GaveUpError is a run that failed at the network level when its source
// had been failing so since Since, longer than After.
type GaveUpError struct {
	Target open.Target
	Since  time.Time
	After  time.Duration
	Err    error // the run's own failure
}

func (e *GaveUpError) Error() string {
	cause := e.Target.Kind + " " + e.Target.Addr + ": " + e.Err.Error()
	if re := (*open.ReachError)(nil); errors.As(e.Err, &re) {
		cause = re.Error() // the address, what failed and the fix, without the retry count
	}
	return fmt.Sprintf("%s; failing since %s, longer than --give-up-after %s", cause, e.Since.Local().Format(time.RFC3339), shortDuration(e.After))
}

func (e *GaveUpError) Unwrap() []error { return []error{ErrGaveUp, e.Err} }

// RetryClass implements retry.Classed: this run is over.
func (e *GaveUpError) RetryClass() retry.Class { return retry.Permanent }

// shortDuration writes d as it is typed: 24h, 1h30m, 1ms.
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

// Record is what a DEST knows of one source.
type Record struct {
	// Reached is when the source was last opened.
	Reached *time.Time `json:"reached,omitempty"`
	// FailingSince is when runs began to end with the network down.
	FailingSince *time.Time `json:"failing_since,omitempty"`
}

type book struct {
	Schema  int               `json:"schema"`
	Sources map[string]Record `json:"sources"`
}

// Contact is one run's view of the record of its source.
type Contact struct {
	path   string
	Target open.Target
	Rec    Record
	opened bool // reached in this run
}

// Load reads the record of target in DEST; a record that cannot be read is
// empty (it only ever shortens a wait).
func Load(dest string, target open.Target) *Contact {
	c := &Contact{path: filepath.Join(dest, ".haul", File), Target: target}
	if b, err := c.load(); err == nil {
		c.Rec = b.Sources[target.ID]
	}
	return c
}

func (c *Contact) load() (*book, error) {
	b := &book{Schema: 1, Sources: map[string]Record{}}
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
		b.Sources = map[string]Record{}
	}
	return b, nil
}

// Save writes the record back, keeping the other sources'.
func (c *Contact) Save() error {
	b, err := c.load()
	if err != nil {
		b = &book{Schema: 1, Sources: map[string]Record{}}
	}
	b.Sources[c.Target.ID] = c.Rec
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(c.path, append(data, '\n'), 0o600); err != nil {
		return source.Permanent(fmt.Errorf("DEST %s: the record of the sources reached: %w (fix DEST's permissions)", filepath.Dir(filepath.Dir(c.path)), err))
	}
	return nil
}

// First reports whether the source was never reached from DEST.
func (c *Contact) First() bool { return c != nil && c.Rec.Reached == nil }

// Worth says whether a failure to open the source is worth another try
// (attempt is 1-based): transient failures always, failures to reach
// a source once reached too, but a source never reached only FirstTries
// times in all.
func (c *Contact) Worth(err error, attempt int) bool {
	reach := retry.ReachOf(err)
	if c.First() && reach != retry.Reached {
		return attempt < FirstTries && retry.Classify(err) == retry.Transient
	}
	return retry.Classify(err) == retry.Transient || reach.Network()
}

// Opened records that the source was reached.
func (c *Contact) Opened() error {
	if c == nil {
		return nil
	}
	now := time.Now().UTC()
	c.Rec.Reached, c.opened = &now, true
	return c.Save()
}

// OpenFailed turns the final failure to open the source into what it
// means: an *UnreachableError for a source never reached (or a TLS or
// protocol failure), else err itself.
func (c *Contact) OpenFailed(err error) error {
	var re *open.ReachError
	if errors.As(err, &re) && (c.First() || !re.Reach.Network()) {
		return &UnreachableError{Err: re}
	}
	return err
}

// End updates the record with how the run ended: networkDown says it
// ended with the network down, pulled what it moved. It returns err, or a
// *GaveUpError when the source has been failing for longer than after
// (0: DefaultGiveUpAfter, below 0: never).
func (c *Contact) End(err error, networkDown bool, pulled int64, after time.Duration) error {
	if c == nil {
		return err
	}
	now := time.Now().UTC()
	switch {
	case networkDown:
		if c.Rec.FailingSince == nil || pulled > 0 {
			c.Rec.FailingSince = &now // a run that moved bytes was progress
		}
		if serr := c.Save(); serr != nil {
			return errors.Join(err, serr)
		}
		if after == 0 {
			after = DefaultGiveUpAfter
		}
		if since := *c.Rec.FailingSince; after > 0 && now.Sub(since) >= after {
			return &GaveUpError{Target: c.Target, Since: since, After: after, Err: err}
		}
	case c.opened && c.Rec.FailingSince != nil:
		c.Rec.FailingSince = nil
		if serr := c.Save(); serr != nil && err == nil {
			return serr
		}
	}
	return err
}
