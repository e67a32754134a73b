package main

import (
	"strings"
	"testing"
)

// TestDemo runs the README's first command, smaller: it must exit 0 and
// show every step of the night.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	r := runHaul(t, nil, "demo", dir, "--size", "4M", "--progress", "log")
	wantCode(t, r, 0)
	for _, want := range []string{"exit 75", "verified by", "broken", "every restored file is identical", "haul repair"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}
