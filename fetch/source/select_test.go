package source

import (
	"fmt"
	"slices"
	"testing"
)

func TestNaturalCompare(t *testing.T) {
	names := []string{"x.tar.gz.10", "x.tar.gz.2", "x.tar.gz", "x.tar.gz.1", "x.tar.gz.9"}
	set := SelectSet(objects(names...), Filter{})
	var got []string
	for _, o := range set.Parts {
		got = append(got, o.Name)
	}
	want := []string{"x.tar.gz", "x.tar.gz.1", "x.tar.gz.2", "x.tar.gz.9", "x.tar.gz.10"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}

func objects(names ...string) []Object {
	var o []Object
	for _, n := range names {
		o = append(o, Object{Name: n})
	}
	return o
}

func TestPrefixSelectsNumberedSplit(t *testing.T) {
	names := []string{"db.tar.zst.000", "db.tar.zst.001", "db.tar.zst.002", "db.tar.zst.sha256", "db.tar.zst.000.bak", "db.tar.zst.0001", "other.000"}
	set := SelectSet(objects(names...), Filter{Prefix: "db.tar.zst.000"})
	var got []string
	for _, o := range set.Parts {
		got = append(got, o.Name)
	}
	// "0001" and "000.bak" start with the prefix: SPEC's plain name-prefix rule takes them.
	want := []string{"db.tar.zst.000", "db.tar.zst.000.bak", "db.tar.zst.001", "db.tar.zst.0001", "db.tar.zst.002"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("parts %v, want %v", got, want)
	}
}

// TestAddAccounts: bytes of one source are summed, a new source is added
// after the others, and nothing is lost (the sum is what was pulled).
func TestAddAccounts(t *testing.T) {
	got := AddAccounts([]Account{{"a", 1}, {"b", 2}}, Account{"b", 3}, Account{"c", 4}, Account{"a", 5})
	want := []Account{{"a", 6}, {"b", 5}, {"c", 4}}
	if !slices.Equal(got, want) {
		t.Fatalf("AddAccounts = %v, want %v", got, want)
	}
	if h := HealerOf(nil); h.Copies("x") != 1 || h.Explain("x") != "" {
		t.Fatalf("a source with one copy: %d copies, explain %q", h.Copies("x"), h.Explain("x"))
	}
}
