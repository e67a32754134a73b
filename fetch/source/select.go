package source

import (
	"fmt"
	"path"
	"slices"
	"strconv"
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

// Promised returns the names a set must have that its listing lacks, each
// with the fact that promises it, whatever the source: a gap in numbered
// names (x.000 and x.002 without x.001; x.tar.gz.1 and .3 without .2) and
// what an Expecter knows. The volumes a Bitrix first volume's LN field
// names are checked on the first volume once it is on disk
// (LastVolumes), so that no source is read twice for them.
func Promised(src Source, set Set) map[string]string {
	out := map[string]string{}
	names := make([]string, len(set.Parts))
	for i, o := range set.Parts {
		names[i] = o.Name
	}
	for _, n := range Gaps(names) {
		out[n] = "a gap in the numbered names of the set"
	}
	if ex, ok := src.(Expecter); ok {
		for _, n := range ex.Expected() {
			out[n] = "named by the first volume's LN field"
		}
	}
	return out
}

// LastVolumes returns the volumes the LN field in head, the first bytes
// of the set's first part called first, names (first.1 … first.LN) that
// names lacks; nil when head is no Bitrix first volume.
func LastVolumes(first string, head []byte, names []string) []string {
	h, ok := integrity.ParseBitrixVolumeHeader(head)
	if !ok {
		return nil
	}
	var out []string
	for v := 1; v <= h.LastVolume; v++ {
		if n := fmt.Sprintf("%s.%d", first, v); !slices.Contains(names, n) {
			out = append(out, n)
		}
	}
	return out
}

// Gaps returns the names missing between numbered siblings: for each
// stem, every number between the smallest and the largest present (the
// stem alone counts as 0 when it has unpadded siblings, as a Bitrix set
// or x.tar.gz, x.tar.gz.1, … does), in the width the siblings use.
func Gaps(names []string) []string {
	type group struct {
		nums  map[int]bool
		width int // 0: unpadded
	}
	groups := map[string]*group{}
	has := map[string]bool{}
	for _, n := range names {
		has[n] = true
	}
	for _, n := range names {
		i := strings.LastIndexByte(n, '.')
		if i < 0 || i == len(n)-1 || len(n)-i-1 > 6 {
			continue
		}
		num := n[i+1:]
		v, err := strconv.Atoi(num)
		if err != nil || strings.Trim(num, "0123456789") != "" {
			continue
		}
		stem := n[:i]
		g := groups[stem]
		if g == nil {
			g = &group{nums: map[int]bool{}}
			groups[stem] = g
		}
		if len(num) > 1 && num[0] == '0' {
			g.width = len(num)
		}
		g.nums[v] = true
	}
	var out []string
	for stem, g := range groups {
		if g.width == 0 && has[stem] {
			g.nums[0] = true
		}
		lo, hi := -1, -1
		for v := range g.nums {
			if lo < 0 || v < lo {
				lo = v
			}
			hi = max(hi, v)
		}
		for v := lo + 1; v < hi; v++ {
			if !g.nums[v] {
				out = append(out, fmt.Sprintf("%s.%0*d", stem, g.width, v))
			}
		}
	}
	slices.SortFunc(out, NaturalCompare)
	return out
}
