package main

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/pflag"

	"github.com/haul-dev/haul/fetch/multi"
	"github.com/haul-dev/haul/internal/bwlimit"
	"github.com/haul-dev/haul/internal/redact"
	"github.com/haul-dev/haul/internal/units"
)

// usageError is a command line that cannot run (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// Every flag value is checked in its Set, so a bad value stops the command
// line before anything runs, with exit 2 and one line naming the flag (pflag
// adds the flag's name and the value to the error). Each Type is the
// placeholder the help shows.

// intValue is an int within [min, max].
type intValue struct {
	p        *int
	min, max int
}

func (v intValue) String() string { return strconv.Itoa(*v.p) }
func (v intValue) Type() string   { return "N" }
func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not a whole number")
	}
	if n < v.min || n > v.max {
		return fmt.Errorf("want %d to %d", v.min, v.max)
	}
	*v.p = n
	return nil
}

// sizeValue is a size with K/M/G suffixes within [min, max].
type sizeValue struct {
	p        *int64
	min, max int64
	set      *bool // set when the flag is given (nil: not tracked)
}

func (v sizeValue) String() string { return compactSize(*v.p) }
func (v sizeValue) Type() string   { return "SIZE" }
func (v sizeValue) Set(s string) error {
	n, err := units.ParseSize(s)
	if err != nil {
		return err
	}
	if n < v.min || n > v.max {
		return fmt.Errorf("want %s to %s", compactSize(v.min), compactSize(v.max))
	}
	*v.p = n
	if v.set != nil {
		*v.set = true
	}
	return nil
}

// compactSize writes a size the way it is typed: 8MiB, 256KiB, 1000.
func compactSize(n int64) string {
	for _, u := range []struct {
		s string
		n int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.n && n%u.n == 0 {
			return fmt.Sprintf("%d%s", n/u.n, u.s)
		}
	}
	return strconv.FormatInt(n, 10)
}

// durationValue is a duration > 0; zero (the default) means "not set".
type durationValue struct{ p *time.Duration }

func (v durationValue) String() string {
	if *v.p == 0 {
		return ""
	}
	return shortDuration(*v.p)
}
func (v durationValue) Type() string { return "DURATION" }
func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration (like 90s, 45m, 6h)")
	}
	if d <= 0 {
		return fmt.Errorf("want a duration above zero")
	}
	*v.p = d
	return nil
}

// enumValue is one of a fixed set of words.
type enumValue struct {
	p     *string
	words []string
}

func (v enumValue) String() string { return *v.p }
func (v enumValue) Type() string   { return strings.Join(v.words, "|") }
func (v enumValue) Set(s string) error {
	for _, w := range v.words {
		if s == w {
			*v.p = s
			return nil
		}
	}
	return fmt.Errorf("want one of %s", strings.Join(v.words, ", "))
}

// checkedString is a string checked by a parser when set; Type is the
// placeholder.
type checkedString struct {
	p     *string
	typ   string
	check func(string) error
}

func (v checkedString) String() string { return *v.p }
func (v checkedString) Type() string   { return v.typ }
func (v checkedString) Set(s string) error {
	if err := v.check(s); err != nil {
		return err
	}
	*v.p = s
	return nil
}

// globList is a repeatable --include/--exclude GLOB.
type globList struct{ p *[]string }

func (v globList) String() string { return strings.Join(*v.p, ",") }
func (v globList) Type() string   { return "GLOB" }
func (v globList) Set(s string) error {
	if _, err := path.Match(s, ""); err != nil {
		return fmt.Errorf("bad glob: %v", err)
	}
	*v.p = append(*v.p, s)
	return nil
}

// mirrorList is the repeatable --mirror URL; one value (HAUL_MIRROR) may
// hold several, separated by commas or spaces.
type mirrorList struct{ p *[]string }

func (v mirrorList) String() string { return strings.Join(redactAll(*v.p), ",") }
func (v mirrorList) Type() string   { return "URL" }
func (v mirrorList) Set(s string) error {
	urls := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	if len(urls) == 0 {
		return errors.New("no URL given")
	}
	for _, u := range urls {
		if _, err := multi.ParseMirror(u); err != nil {
			return err
		}
		*v.p = append(*v.p, u)
	}
	return nil
}

// secretFlag is whether a usage error must not quote f's value as typed:
// a --db URL may hold a password, a --mirror URL a presigned query (the
// value's own error names it redacted).
func secretFlag(f *pflag.Flag) bool {
	if _, ok := f.Value.(mirrorList); ok {
		return true
	}
	return secretFlags[f.Name]
}

func redactAll(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = redact.URL(u)
	}
	return out
}

// pathList is a repeatable flag of paths (--base DIR).
type pathList struct{ p *[]string }

func (v pathList) String() string     { return strings.Join(*v.p, ",") }
func (v pathList) Type() string       { return "DIR" }
func (v pathList) Set(s string) error { *v.p = append(*v.p, s); return nil }

func checkBandwidth(s string) error { _, err := bwlimit.ParseBandwidth(s); return err }
func checkUntil(s string) error     { _, err := units.ParseUntil(s, time.Now()); return err }

// envPrefix starts the environment name of every flag: --bwlimit is also
// HAUL_BWLIMIT. Names HAUL_TEST_* and HAUL_MINIO belong to the tests; no
// flag starts with "test-" or is named "minio", so they never collide.
const envPrefix = "HAUL_"

// envName is the environment variable that may give flag name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// noEnv are flags that are never read from the environment: they ask for
// output rather than configure a job.
var noEnv = map[string]bool{"help": true, "version": true}

// applyEnv sets every flag not given on the command line from its
// HAUL_<FLAG> variable, so that a systemd unit can use EnvironmentFile=. A
// flag on the command line wins. A bad value is a usage error naming the
// variable.
func applyEnv(fs *pflag.FlagSet, getenv func(string) (string, bool)) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || noEnv[f.Name] {
			return
		}
		v, ok := getenv(envName(f.Name))
		if !ok || v == "" {
			return
		}
		if isList(f) {
			for _, item := range strings.Fields(v) {
				if serr := f.Value.Set(item); serr != nil {
					err = usagef("%s=%s: %v", envName(f.Name), v, serr)
					if secretFlag(f) {
						err = usagef("%s: %v", envName(f.Name), serr)
					}
					return
				}
			}
			f.Changed = true
			return
		}
		if secretFlag(f) {
			// Not through fs.Set, whose error quotes the value as given.
			if serr := f.Value.Set(v); serr != nil {
				err = usagef("%s: %v", envName(f.Name), serr)
			}
			f.Changed = true
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = usagef("%s=%s: %v", envName(f.Name), v, serr)
		}
	})
	return err
}

// isList is whether a flag is repeatable: its variable takes several
// values separated by spaces.
func isList(f *pflag.Flag) bool {
	switch f.Value.(type) {
	case globList, pathList, mirrorList:
		return true
	}
	return false
}

// lookupEnv reads the environment; tests of applyEnv pass their own.
var lookupEnv = os.LookupEnv
