package main

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/haul-dev/haul/internal/testenv"
)

// TestMirrorProgressPerSource: with a mirror, the periodic progress (the
// log line and the bars) shows bytes and a rate per source, each named by
// its host:port alone; `haul status` (text and --json) shows the bytes
// each source delivered in the run, and they sum to the bytes it pulled.
// The mirror is presigned-style (--mirror-list): its signature shows in
// no output, status, report or journal.
func TestMirrorProgressPerSource(t *testing.T) {
	_, parts := mirrorSet(t, 1200<<10)
	// Slow enough for several log lines at the test's interval, and both
	// copies busy: each connection of each copy runs at the same rate.
	primary := mirrorPrimary(t, parts, false, testenv.ConnRate(96<<10))
	mirror := e2eServe(t, parts, testenv.ConnRate(96<<10))
	const secret = "SIGSECRET7171"
	var list strings.Builder
	for _, p := range parts {
		list.WriteString(mirror.URL(p.name) + "?X-Amz-Expires=3600&X-Amz-Signature=" + secret + "\n")
	}
	file := filepath.Join(t.TempDir(), "mirror.urls")
	if err := os.WriteFile(file, []byte(list.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	hostOf := func(u string) string {
		t.Helper()
		p, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		return p.Host
	}
	pHost, mHost := hostOf(primary.URL(parts[0].name)), hostOf(mirror.URL(parts[0].name))
	env := []string{"HAUL_TEST_LOG_INTERVAL=150ms"}

	for _, mode := range []string{"log", "bars"} {
		t.Run(mode, func(t *testing.T) {
			dest := t.TempDir()
			args := append([]string{"fetch", "--progress", mode, "--chunk-size", "64K", "-j", "2"}, e2eURLs(primary, parts)...)
			r := runHaul(t, env, append(args, dest, "--mirror-list", file)...)
			wantCode(t, r, 0)
			e2eIdentical(t, dest, parts)

			// A line names both sources, each with its bytes and, once
			// the rate is measured, its rate.
			item := func(host string) string { return regexp.QuoteMeta(host) + ` [0-9.]+ (B|KiB|MiB) ` }
			rated := regexp.MustCompile(`sources: ` + item(pHost) + `[0-9.]+ (B|KiB|MiB)/s, ` + item(mHost) + `[0-9.]+ (B|KiB|MiB)/s`)
			var shown string
			for _, l := range strings.Split(r.stdout, "\n") {
				if i := strings.Index(l, "sources: "); i >= 0 && strings.Contains(l, pHost+" ") && strings.Contains(l, mHost+" ") {
					shown = l[i:]
				}
			}
			if shown == "" {
				t.Fatalf("no progress line names both sources (%s, %s) with their bytes:\n%s", pHost, mHost, r.stdout)
			}
			if !rated.MatchString(r.stdout) {
				t.Errorf("no progress line shows each source's bytes and rate:\n%s", r.stdout)
			}
			for _, bad := range []string{"http://", "?", "(+"} {
				if strings.Contains(shown, bad) {
					t.Errorf("the per-source progress %q has %q; want host:port labels only", shown, bad)
				}
			}

			run := e2eLastRun(t, dest)
			st := runHaul(t, nil, "status", "--json", dest)
			wantCode(t, st, 0)
			var status struct {
				Sources []struct {
					Source string  `json:"source"`
					Bytes  int64   `json:"bytes"`
					Rate   float64 `json:"bytes_per_second"`
				} `json:"sources"`
			}
			if err := json.Unmarshal([]byte(st.stdout), &status); err != nil {
				t.Fatalf("status --json: %v\n%s", err, st.stdout)
			}
			if len(status.Sources) != 2 {
				t.Fatalf("status --json lists %d sources, want the primary and the mirror:\n%s", len(status.Sources), st.stdout)
			}
			var sum int64
			for _, s := range status.Sources {
				sum += s.Bytes
				if s.Bytes > 0 && s.Rate <= 0 {
					t.Errorf("status --json: source %s delivered %d bytes at rate %v", s.Source, s.Bytes, s.Rate)
				}
			}
			if run.Bytes < e2eTotal(parts) || sum != run.Bytes {
				t.Errorf("status --json: the sources sum to %d bytes; the run pulled %d (the set is %d)", sum, run.Bytes, e2eTotal(parts))
			}
			if !strings.Contains(status.Sources[0].Source, pHost) || !strings.Contains(status.Sources[1].Source, mHost) {
				t.Errorf("status --json names %q and %q; want the primary (%s) then the mirror (%s)", status.Sources[0].Source, status.Sources[1].Source, pHost, mHost)
			}
			text := runHaul(t, nil, "status", dest)
			wantCode(t, text, 0)
			if !strings.Contains(text.stdout, "sources (last run): ") || !strings.Contains(text.stdout, mHost) {
				t.Errorf("status does not show the bytes per source:\n%s", text.stdout)
			}
			noSecretIn(t, secret, dest, r, st, text)
		})
	}
}
