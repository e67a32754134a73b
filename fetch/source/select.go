package source

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/haul-dev/haul/integrity"
)

// Set is the selection of a source's objects that make one backup.
type Set struct {
	// Parts in archive order (natural sort of names).
	Parts []Object
	// RefFiles are sum files and haul manifests found beside the parts.
	RefFiles []Object
}

// Filter selects parts by name: Prefix (from a SOURCE that names the first
// part), then Include and Exclude globs (path.Match syntax).
type Filter struct {
	Prefix  string
	Include []string
	Exclude []string
}

// Match reports whether a part called name belongs to the set.
func (f Filter) Match(name string) bool {
	if !f.matchPrefix(name) {
		return false
	}
	if len(f.Include) > 0 && !slices.ContainsFunc(f.Include, func(g string) bool { ok, _ := path.Match(g, name); return ok }) {
		return false
	}
	return !slices.ContainsFunc(f.Exclude, func(g string) bool { ok, _ := path.Match(g, name); return ok })
}

// matchPrefix applies the name prefix. Pointing at the first part of a
// numbered split (x.tar.zst.000, x.00) selects its siblings too: the same
// stem and a number of the same width.
func (f Filter) matchPrefix(name string) bool {
	if strings.HasPrefix(name, f.Prefix) {
		return true
	}
	i := strings.LastIndexByte(f.Prefix, '.')
	if i < 0 {
		return false
	}
	num := f.Prefix[i+1:]
	if num == "" || strings.Trim(num, "0") != "" {
		return false
	}
	rest, ok := strings.CutPrefix(name, f.Prefix[:i+1])
	if !ok || len(rest) != len(num) {
		return false
	}
	for j := 0; j < len(rest); j++ {
		if !isDigit(rest[j]) {
			return false
		}
	}
	return true
}

// Validate checks the globs.
func (f Filter) Validate() error {
	for _, g := range append(slices.Clone(f.Include), f.Exclude...) {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("bad glob %q: %w", g, err)
		}
	}
	return nil
}

// SelectSet splits a listing into parts and reference files. Reference
// files are never parts; with a name prefix, only sum files that are shared
// by the directory (SHA256SUMS, manifests) or that start with the prefix are
// taken.
func SelectSet(objs []Object, f Filter) Set {
	var s Set
	for _, o := range objs {
		if integrity.IsReferenceFile(o.Name) {
			if f.Prefix == "" || strings.HasPrefix(o.Name, f.Prefix) || sharedRefFile(o.Name) {
				s.RefFiles = append(s.RefFiles, o)
			}
			continue
		}
		if strings.HasSuffix(o.Name, ".partial") || !f.Match(o.Name) {
			continue
		}
		s.Parts = append(s.Parts, o)
	}
	slices.SortFunc(s.Parts, func(a, b Object) int { return NaturalCompare(a.Name, b.Name) })
	slices.SortFunc(s.RefFiles, func(a, b Object) int { return NaturalCompare(a.Name, b.Name) })
	return s
}

// NaturalCompare orders names so that runs of digits compare as numbers:
// x.tar.gz < x.tar.gz.1 < x.tar.gz.2 < x.tar.gz.10, and x.000 < x.001.
func NaturalCompare(a, b string) int {
	for a != "" && b != "" {
		ad, bd := isDigit(a[0]), isDigit(b[0])
		if ad && bd {
			na, ra := digitRun(a)
			nb, rb := digitRun(b)
			ta, tb := strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
			if c := len(ta) - len(tb); c != 0 {
				return c
			}
			if c := strings.Compare(ta, tb); c != 0 {
				return c
			}
			if c := len(na) - len(nb); c != 0 {
				return c
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

// sharedRefFile reports whether a reference file speaks for a whole
// directory (SHA256SUMS, a manifest) rather than one NAME.sha256.
func sharedRefFile(name string) bool {
	return strings.HasSuffix(name, ".haul.json") || strings.HasSuffix(name, "SUMS")
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digitRun(s string) (run, rest string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i], s[i:]
}
