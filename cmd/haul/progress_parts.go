package main

import (
	"sort"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch"
)

// partTable is the reporter's view of the parts. At 100,000 parts a map of
// one struct per part cost some 12 MB; here every part is one 24-byte
// entry and one index slot, and only the parts moving now (a handful:
// the connections) have a live entry with their rate for the bars. With
// --progress none nothing is kept per part.
type partTable struct {
	idx    map[string]int32
	ents   []partEntry
	live   map[int32]*liveBar
	counts partCounts
}

type partEntry struct {
	size, done int64
	status     partState
}

// liveBar is a part in flight, for its bar: when it last moved, what this
// run pulled of it and its recent rate.
type liveBar struct {
	name   string
	last   time.Time
	pulled int64
	rate   rateWindow
}

// partState is a part's status (chunk.Pending …) in one byte.
type partState uint8

const (
	statePending partState = iota
	statePartial
	stateVerified
	stateUnverified
	stateBroken
	stateMissing
)

func stateOf(s string) partState {
	switch s {
	case chunk.Partial:
		return statePartial
	case chunk.Verified:
		return stateVerified
	case chunk.Unverified:
		return stateUnverified
	case chunk.Broken:
		return stateBroken
	case chunk.Missing:
		return stateMissing
	}
	return statePending
}

func (s partState) String() string {
	return [...]string{chunk.Pending, chunk.Partial, chunk.Verified, chunk.Unverified, chunk.Broken, chunk.Missing}[s]
}

// partCounts are the parts by state, for the log line and the bars.
type partCounts struct{ ok, verified, broken, inFlight int }

func (c *partCounts) add(s partState, d int) {
	switch s {
	case stateVerified:
		c.ok += d
		c.verified += d
	case stateUnverified:
		c.ok += d
	case stateBroken, stateMissing:
		c.broken += d
	case statePartial:
		c.inFlight += d
	}
}

// plan replaces the table with parts; keep false (nothing is shown) keeps
// no entry.
func (t *partTable) plan(parts []fetch.PartProgress, keep bool) {
	*t = partTable{}
	if !keep {
		return
	}
	t.idx = make(map[string]int32, len(parts))
	t.ents = make([]partEntry, 0, len(parts))
	for _, p := range parts {
		if _, dup := t.idx[p.Name]; dup {
			continue
		}
		t.idx[p.Name] = int32(len(t.ents))
		e := partEntry{size: p.Size, done: p.Done, status: stateOf(p.Status)}
		t.ents = append(t.ents, e)
		t.counts.add(e.status, 1)
	}
}

// len is how many parts the plan had.
func (t *partTable) len() int { return len(t.ents) }

func (t *partTable) setState(i int32, s partState) {
	e := &t.ents[i]
	t.counts.add(e.status, -1)
	t.counts.add(s, 1)
	e.status = s
	if s != statePartial {
		delete(t.live, i) // it no longer moves
	}
}

// pulled records n bytes of part moved at now; bars keeps a live entry
// for the part's bar.
func (t *partTable) pulled(part string, n int64, now time.Time, bars bool) {
	i, ok := t.idx[part]
	if !ok {
		return
	}
	e := &t.ents[i]
	e.done = min(e.done+n, e.size)
	if e.status == statePending {
		t.setState(i, statePartial)
	}
	if e.status != statePartial || !bars {
		return
	}
	if t.live == nil {
		t.live = map[int32]*liveBar{}
	}
	lb := t.live[i]
	if lb == nil {
		lb = &liveBar{name: part}
		t.live[i] = lb
	}
	lb.pulled += n
	lb.last = now
}

// event applies what an engine event says about its part.
func (t *partTable) event(e fetch.Event) {
	i, ok := t.idx[e.Part]
	if !ok {
		return
	}
	p := &t.ents[i]
	switch e.Kind {
	case chunk.EventPartVerified, chunk.EventPartRepaired:
		p.done = p.size
		t.setState(i, stateVerified)
	case chunk.EventPartUnverified:
		p.done = p.size
		t.setState(i, stateUnverified)
	case chunk.EventPartBroken:
		t.setState(i, stateBroken)
	case chunk.EventPartChanged, chunk.EventRetry:
		t.setState(i, statePartial)
	}
}

// activePart is a part that moved in the last seconds, for a bar.
type activePart struct {
	idx        int32
	name       string
	size, done int64
	status     partState
	bar        *liveBar
}

// active returns the parts in flight that moved within the last 5 s, the
// most recent first, and samples their rates; live entries idle longer
// are dropped (a part that moves again starts a new one).
func (t *partTable) active(now time.Time) []activePart {
	if len(t.live) == 0 {
		return nil
	}
	var out []activePart
	for i, lb := range t.live {
		if now.Sub(lb.last) >= 5*time.Second {
			delete(t.live, i)
			continue
		}
		lb.rate.add(now, lb.pulled)
		e := t.ents[i]
		out = append(out, activePart{idx: i, name: lb.name, size: e.size, done: e.done, status: e.status, bar: lb})
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].bar.last.Equal(out[b].bar.last) {
			return out[a].bar.last.After(out[b].bar.last)
		}
		return out[a].idx < out[b].idx
	})
	return out
}
