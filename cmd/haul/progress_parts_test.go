package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch"
)

func TestPartTableCounts(t *testing.T) {
	var tb partTable
	tb.plan([]fetch.PartProgress{
		{Name: "a", Size: 10, Status: chunk.Pending},
		{Name: "b", Size: 10, Done: 10, Status: chunk.Verified},
		{Name: "c", Size: 10, Status: chunk.Missing},
		{Name: "d", Size: 10, Done: 4, Status: chunk.Partial},
	}, true)
	if got, want := tb.counts, (partCounts{ok: 1, verified: 1, broken: 1, inFlight: 1}); got != want {
		t.Fatalf("after the plan: counts %+v, want %+v", got, want)
	}
	now := time.Now()
	tb.pulled("a", 4, now, true)
	tb.pulled("nope", 4, now, true) // not in the plan: ignored
	if got, want := tb.counts, (partCounts{ok: 1, verified: 1, broken: 1, inFlight: 2}); got != want {
		t.Fatalf("after a moved: counts %+v, want %+v", got, want)
	}
	tb.event(fetch.Event{Kind: chunk.EventPartVerified, Part: "a"})
	tb.event(fetch.Event{Kind: chunk.EventPartUnverified, Part: "d"})
	tb.event(fetch.Event{Kind: chunk.EventPartRepaired, Part: "c"})
	if got, want := tb.counts, (partCounts{ok: 4, verified: 3}); got != want {
		t.Fatalf("at the end: counts %+v, want %+v", got, want)
	}
	if tb.ents[tb.idx["a"]].done != 10 || tb.ents[tb.idx["d"]].done != 10 {
		t.Fatalf("complete parts not shown full: %+v", tb.ents)
	}
	if len(tb.live) != 0 {
		t.Fatalf("%d live entries for parts that no longer move", len(tb.live))
	}
}

func TestPartTableActive(t *testing.T) {
	var tb partTable
	var plan []fetch.PartProgress
	for i := 0; i < 100; i++ {
		plan = append(plan, fetch.PartProgress{Name: fmt.Sprintf("p%03d", i), Size: 100, Status: chunk.Pending})
	}
	tb.plan(plan, true)
	t0 := time.Now()
	tb.pulled("p050", 10, t0, true)
	tb.pulled("p010", 10, t0.Add(time.Second), true)
	tb.pulled("p020", 10, t0.Add(2*time.Second), true)
	tb.pulled("p030", 10, t0.Add(2*time.Second), false) // no bar asked for: no live entry
	act := tb.active(t0.Add(5500 * time.Millisecond))   // p050 has been idle 5.5 s
	var names []string
	for _, a := range act {
		names = append(names, fmt.Sprintf("%s:%d/%d %s", a.name, a.done, a.size, a.status))
	}
	if got, want := fmt.Sprint(names), "[p020:10/100 partial p010:10/100 partial]"; got != want {
		t.Fatalf("active parts %s, want %s", got, want)
	}
	if len(tb.live) != 2 {
		t.Fatalf("%d live entries after the idle one was dropped, want 2", len(tb.live))
	}
}

func TestPartTableNone(t *testing.T) {
	var tb partTable
	tb.plan([]fetch.PartProgress{{Name: "a", Size: 1, Status: chunk.Pending}}, false)
	tb.pulled("a", 1, time.Now(), true)
	tb.event(fetch.Event{Kind: chunk.EventPartVerified, Part: "a"})
	if tb.len() != 0 || tb.idx != nil || tb.live != nil || tb.counts != (partCounts{}) {
		t.Fatalf("a table that shows nothing keeps %d entries", tb.len())
	}
}
