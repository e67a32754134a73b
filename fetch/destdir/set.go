// DEST's set identity: a DEST holds one set, named by the sources it
// came from.

package destdir

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/internal/atomicfile"
	"github.com/haul-dev/haul/internal/redact"
)

// setOf names the set some SOURCE arguments select, so that two runs can
// tell whether they fetch the same one: each argument with its secrets
// and what changes between equal links left out (a presigned URL's query
// string, user info), a local path made absolute.
func setOf(sources []string) []string {
	out := make([]string, 0, len(sources))
	for _, s := range sources {
		if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Host != "" {
			u.RawQuery, u.Fragment, u.User = "", "", nil
			s = u.String()
		} else if abs, err := filepath.Abs(strings.TrimPrefix(s, "file://")); err == nil {
			s = abs
		}
		out = append(out, strings.TrimSuffix(s, "/"))
	}
	return out
}

// SameSet checks that DEST holds no other set than the one sources name
// (a DEST holds one set): a different source is refused with
// *OtherSetError, naming both and the fixes, unless replace (--replace),
// which discards the old set's parts and state first and says so through
// warn. The same source given with fresh presigned links is the same set
// and keeps its progress, as is a list of links sharing one with the old
// list.
func SameSet(dest string, sources []string, replace bool, warn func(msg string)) error {
	st, err := chunk.Load(dest)
	if errors.Is(err, chunk.ErrNoState) || err == nil && len(st.Parts) == 0 || err == nil && len(st.Sources) == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	old, now := setOf(st.Sources), setOf(sources)
	for _, s := range now {
		if slices.Contains(old, s) {
			return nil
		}
	}
	if !replace {
		return source.Permanent(&OtherSetError{Dest: dest, Old: redactAll(st.Sources), New: redactAll(sources)})
	}
	d := Dir(dest)
	for _, p := range st.Parts {
		for _, path := range []string{d.FinalPath(p.Name), d.PartialPath(p.Name)} {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return source.Permanent(fmt.Errorf("--replace: %w", err))
			}
		}
	}
	if err := os.Remove(chunk.StatePath(dest)); err != nil {
		return source.Permanent(fmt.Errorf("--replace: %w", err))
	}
	warn(fmt.Sprintf("--replace: discarded the set from %s (%d parts) that %s held", strings.Join(redactAll(st.Sources), " "), len(st.Parts), dest))
	return atomicfile.SyncDir(dest)
}

func redactAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = redact.URL(s)
	}
	return out
}
