package main

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/haul-dev/haul/fetch"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/internal/redact"
	"github.com/haul-dev/haul/internal/units"
)

var _ fetch.SourceWatcher = (*reporter)(nil)

// sourcesProgress is the bytes and rate of each source of a run with
// mirrors. The bytes are the sources' own counts (source.Accounter),
// polled at each tick of the reporter: nothing here counts bytes.
type sourcesProgress struct {
	mu sync.Mutex
	// accs are every source with mirrors the run opened: a relist opens
	// the SOURCE again and each step of `run` opens its own, and each
	// counts from zero, so the run's bytes per source are their sum.
	accs  []source.Accounter
	rates map[string]*rateWindow
}

// WatchSources implements fetch.SourceWatcher.
func (r *reporter) WatchSources(a source.Accounter) {
	r.sources.mu.Lock()
	defer r.sources.mu.Unlock()
	r.sources.accs = append(r.sources.accs, a)
	r.sources.sampleLocked(time.Now()) // the rates start here, not at the next tick
}

// totalsLocked sums the accounts by source, in the order first seen
// (the primary first).
func (s *sourcesProgress) totalsLocked() []source.Account {
	var out []source.Account
	at := map[string]int{}
	for _, a := range s.accs {
		for _, x := range a.Accounts() {
			i, ok := at[x.Source]
			if !ok {
				i = len(out)
				at[x.Source] = i
				out = append(out, source.Account{Source: x.Source})
			}
			out[i].Bytes += x.Bytes
		}
	}
	return out
}

// sample records each source's bytes at t for its rate.
func (s *sourcesProgress) sample(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sampleLocked(t)
}

func (s *sourcesProgress) sampleLocked(t time.Time) {
	if len(s.accs) == 0 {
		return
	}
	if s.rates == nil {
		s.rates = map[string]*rateWindow{}
	}
	for _, a := range s.totalsLocked() {
		w := s.rates[a.Source]
		if w == nil {
			w = &rateWindow{}
			s.rates[a.Source] = w
		}
		w.add(t, a.Bytes)
	}
}

// line is "sources: LABEL BYTES RATE, …" with two sources or more, ""
// otherwise (a run without mirrors shows what it always showed).
func (s *sourcesProgress) line() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	tot := s.totalsLocked()
	if len(tot) < 2 {
		return ""
	}
	names := make([]string, len(tot))
	for i, a := range tot {
		names[i] = a.Source
	}
	labels := sourceLabels(names)
	items := make([]string, len(tot))
	for i, a := range tot {
		rate := "measuring"
		if w := s.rates[a.Source]; w != nil {
			if v, ok := w.rate(); ok {
				rate = units.FormatRate(v)
			}
		}
		items[i] = fmt.Sprintf("%s %s %s", labels[i], units.FormatBytes(a.Bytes), rate)
	}
	return "sources: " + strings.Join(items, ", ")
}

// sourceLabels are short names for the sources: host[:port] of a URL
// (no user, password, path or query), the redacted name of a path or of
// sources that share a host, so that no two labels are the same.
func sourceLabels(names []string) []string {
	out := make([]string, len(names))
	seen := map[string]int{}
	for i, n := range names {
		out[i] = redact.URL(n)
		head, _, _ := strings.Cut(out[i], " ") // "URL (+N URLs)" of a --mirror-list
		if u, err := url.Parse(head); err == nil && u.Host != "" {
			out[i] = u.Host
		}
		seen[out[i]]++
	}
	for i, n := range names {
		if seen[out[i]] > 1 {
			out[i] = redact.URL(n)
		}
	}
	return out
}
