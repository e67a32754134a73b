// Package bwlimit paces reads to a bandwidth that follows a timetable
// (--bwlimit "08:00,512K 19:00,off"): Schedule is the parsed timetable,
// Limiter one token bucket shared by every connection of a run, whose
// rate is switched at the timetable's boundaries, and Reader wraps a body
// so that every byte read waits for its tokens.
package bwlimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/haul-dev/haul/internal/units"
)

// ErrBadBandwidth is wrapped by ParseBandwidth's errors (a usage error).
var ErrBadBandwidth = errors.New("bad --bwlimit")

const (
	minutesPerDay  = 24 * 60
	minutesPerWeek = 7 * minutesPerDay
	// maxReadChunk bounds one paced Read, so pacing stays smooth.
	maxReadChunk = 32 << 10
)

// everyDay marks a timetable entry without a weekday.
const everyDay = -1

// Slot is one entry of a bandwidth timetable: from Day at Hour:Minute local
// time, the total rate is Rate bytes per second (0 = unlimited) until the
// next entry.
type Slot struct {
	// Day is the weekday the entry applies to, or -1 for every day.
	Day    int
	Hour   int
	Minute int
	Rate   int64
}

// Schedule is a parsed --bwlimit: one rate at all times, or a timetable.
// The zero value and a nil *Schedule mean unlimited.
type Schedule struct {
	slots []Slot // as given, in order
	// week holds every entry expanded to minute-of-week, sorted.
	week []weekSlot
}

type weekSlot struct {
	at   int // minutes since Sunday 00:00
	rate int64
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

// ParseBandwidth parses the --bwlimit value, modelled on rclone's:
//
//	512K                      one rate at all times (bytes/s, K/M/G powers of 1024)
//	off                       unlimited (so is "" and 0)
//	"08:00,512K 19:00,off"    a timetable: from 08:00 512 KiB/s, from 19:00 unlimited
//	"Mon-08:00,512K Sat-00:00,off"  entries for one weekday
//
// Entries are separated by spaces or semicolons. The entry in force at a
// moment is the last one whose time is at or before it, wrapping around from
// the previous day (or week), so "08:00,512K 19:00,off" is unlimited at
// 03:00. An entry without a weekday applies to every day.
func ParseBandwidth(s string) (*Schedule, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == ';' })
	if len(fields) == 0 {
		return &Schedule{}, nil
	}
	if len(fields) == 1 && !strings.Contains(fields[0], ",") {
		if strings.Contains(fields[0], ":") {
			return nil, fmt.Errorf(`%w %q: want RATE, or a timetable of HH:MM,RATE entries, e.g. "08:00,512K 19:00,off"`, ErrBadBandwidth, s)
		}
		r, err := units.ParseRate(fields[0])
		if err != nil {
			return nil, fmt.Errorf("%w %q: %w", ErrBadBandwidth, s, err)
		}
		return newSchedule([]Slot{{Day: everyDay, Rate: r}})
	}
	slots := make([]Slot, 0, len(fields))
	for _, f := range fields {
		sl, err := parseSlot(f)
		if err != nil {
			return nil, fmt.Errorf("%w %q: entry %q: %w", ErrBadBandwidth, s, f, err)
		}
		slots = append(slots, sl)
	}
	sch, err := newSchedule(slots)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrBadBandwidth, s, err)
	}
	return sch, nil
}

// parseSlot parses "[Day-]HH:MM,RATE".
func parseSlot(f string) (Slot, error) {
	when, r, ok := strings.Cut(f, ",")
	if !ok {
		return Slot{}, errors.New(`want HH:MM,RATE or Mon-HH:MM,RATE in a timetable, e.g. "08:00,512K 19:00,off"`)
	}
	sl := Slot{Day: everyDay}
	if day, clock, ok := strings.Cut(when, "-"); ok {
		wd, known := weekdays[strings.ToLower(day)]
		if !known {
			return Slot{}, fmt.Errorf("weekday %q: want Mon, Tue, Wed, Thu, Fri, Sat or Sun", day)
		}
		sl.Day = int(wd)
		when = clock
	}
	h, m, err := units.ParseClock(when)
	if err != nil {
		return Slot{}, err
	}
	sl.Hour, sl.Minute = h, m
	if sl.Rate, err = units.ParseRate(r); err != nil {
		return Slot{}, err
	}
	return sl, nil
}

func newSchedule(slots []Slot) (*Schedule, error) {
	s := &Schedule{slots: slots}
	seen := make(map[int]bool)
	for _, sl := range slots {
		for d := 0; d < 7; d++ {
			if sl.Day != everyDay && sl.Day != d {
				continue
			}
			at := d*minutesPerDay + sl.Hour*60 + sl.Minute
			if seen[at] {
				return nil, fmt.Errorf("two entries for %s %02d:%02d", time.Weekday(d), sl.Hour, sl.Minute)
			}
			seen[at] = true
			s.week = append(s.week, weekSlot{at: at, rate: sl.Rate})
		}
	}
	sort.Slice(s.week, func(i, j int) bool { return s.week[i].at < s.week[j].at })
	return s, nil
}

// Slots returns the entries as given. A single rate is one every-day entry
// at 00:00.
func (s *Schedule) Slots() []Slot {
	if s == nil {
		return nil
	}
	return append([]Slot(nil), s.slots...)
}

// RateAt returns the rate in force at t (in t's location), in bytes per
// second; 0 means unlimited.
func (s *Schedule) RateAt(t time.Time) int64 {
	if s == nil || len(s.week) == 0 {
		return 0
	}
	now := int(t.Weekday())*minutesPerDay + t.Hour()*60 + t.Minute()
	// The last entry at or before now; before the first, the week's last.
	i := sort.Search(len(s.week), func(i int) bool { return s.week[i].at > now })
	if i == 0 {
		i = len(s.week)
	}
	return s.week[i-1].rate
}

// Unlimited reports whether the schedule never limits anything.
func (s *Schedule) Unlimited() bool {
	if s == nil {
		return true
	}
	for _, w := range s.week {
		if w.rate > 0 {
			return false
		}
	}
	return true
}

// String renders the schedule for messages: "unlimited", "512 KiB/s",
// "08:00 512 KiB/s, 19:00 off".
func (s *Schedule) String() string {
	if s.Unlimited() {
		return "unlimited"
	}
	if len(s.slots) == 1 && s.slots[0].Day == everyDay && s.slots[0].Hour == 0 && s.slots[0].Minute == 0 {
		return rateString(s.slots[0].Rate)
	}
	parts := make([]string, len(s.slots))
	for i, sl := range s.slots {
		day := ""
		if sl.Day != everyDay {
			day = time.Weekday(sl.Day).String()[:3] + "-"
		}
		parts[i] = fmt.Sprintf("%s%02d:%02d %s", day, sl.Hour, sl.Minute, rateString(sl.Rate))
	}
	return strings.Join(parts, ", ")
}

func rateString(r int64) string {
	if r <= 0 {
		return "off"
	}
	return units.FormatRate(float64(r))
}

// Limiter caps the total rate of every connection that shares it, following
// a Schedule. It is safe for concurrent use. A nil *Limiter is unlimited.
//
// The schedule is consulted on every wait, so a timetable change takes
// effect within one paced chunk (at most 1/8 s of data at the old rate).
// Pacing itself runs on real time; the clock only picks the timetable entry.
type Limiter struct {
	sched *Schedule
	clock func() time.Time

	mu  sync.Mutex
	cur int64 // rate the bucket is set to; 0 = unlimited (bucket bypassed)
	lim *rate.Limiter
}

// NewLimiter returns a limiter following s (nil = unlimited). clock gives the
// time of day the timetable is read at; nil means time.Now.
func NewLimiter(s *Schedule, clock func() time.Time) *Limiter {
	if clock == nil {
		clock = time.Now
	}
	return &Limiter{sched: s, clock: clock, lim: rate.NewLimiter(rate.Inf, 0)}
}

// burstFor is the token bucket size for rate r: about 1/8 s of data, so
// concurrent readers stay smooth, but at least 32 KiB (or 1/4 s at very low
// rates) so each wait moves a useful amount. Over 5 s the bucket can add at
// most 5% to the cap.
func burstFor(r int64) int {
	b := r / 8
	if low := min(int64(maxReadChunk), r/4); b < low {
		b = low
	}
	return int(max(b, 1))
}

// Current returns the rate in force now in bytes per second; 0 = unlimited.
func (l *Limiter) Current() int64 {
	if l == nil {
		return 0
	}
	return l.sched.RateAt(l.clock())
}

// refresh brings the bucket in line with the schedule and returns the rate
// and burst in force. It is called with l.mu held.
func (l *Limiter) refresh(now time.Time) (int64, int) {
	r := l.sched.RateAt(l.clock())
	if r != l.cur {
		if r > 0 {
			// Keep the bucket's accounting across a change: no free
			// burst at the switch beyond one bucket.
			l.lim.SetLimitAt(now, rate.Limit(r))
			l.lim.SetBurstAt(now, burstFor(r))
		}
		l.cur = r
	}
	if r == 0 {
		return 0, 0
	}
	return r, l.lim.Burst()
}

// chunk returns how many bytes one paced Read should ask for now.
func (l *Limiter) chunk() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r, b := l.refresh(time.Now())
	if r == 0 {
		return 0
	}
	return min(b, maxReadChunk)
}

// WaitN blocks until n bytes may pass under the rate in force, or ctx is
// done (then it returns ctx's error, wrapped). n may exceed the bucket: it is
// split. A nil Limiter or an unlimited rate returns at once.
func (l *Limiter) WaitN(ctx context.Context, n int) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bwlimit: %w", err)
	}
	if l == nil {
		return nil
	}
	for n > 0 {
		l.mu.Lock()
		now := time.Now()
		r, b := l.refresh(now)
		if r == 0 {
			l.mu.Unlock()
			return nil
		}
		take := min(n, b)
		res := l.lim.ReserveN(now, take)
		l.mu.Unlock()
		if !res.OK() {
			// Cannot happen: take <= burst, both read under l.mu.
			return fmt.Errorf("bwlimit: cannot reserve %d bytes (burst %d)", take, b)
		}
		if d := res.DelayFrom(now); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				res.Cancel()
				return fmt.Errorf("bwlimit: %w", ctx.Err())
			}
		}
		n -= take
	}
	return nil
}

// Reader wraps r so that every Read is paced by l. While a limit is in
// force, bytes are paid for before they are read: a reader buys a chunk of
// credit (32 KiB, or the bucket size if smaller) and each read is cut to the
// credit left. So the bytes all readers deliver never run
// ahead of the cap, even at the first read of many connections at once; a
// reader abandoned mid-chunk wastes at most one chunk of the cap. When ctx is
// done, Read returns ctx's error, wrapped. A nil Limiter returns r.
func (l *Limiter) Reader(ctx context.Context, r io.Reader) io.Reader {
	if l == nil {
		return r
	}
	return &pacedReader{ctx: ctx, l: l, r: r}
}

type pacedReader struct {
	ctx    context.Context
	l      *Limiter
	r      io.Reader
	credit int // bytes paid for and not yet read
}

func (p *pacedReader) Read(b []byte) (int, error) {
	c := p.l.chunk()
	if c == 0 { // unlimited now
		p.credit = 0
		return p.r.Read(b)
	}
	if len(b) == 0 {
		return p.r.Read(b)
	}
	if p.credit <= 0 {
		if err := p.l.WaitN(p.ctx, c); err != nil {
			return 0, err
		}
		p.credit = c
	}
	// Never read more than is paid for.
	n, err := p.r.Read(b[:min(len(b), p.credit)])
	p.credit -= n
	return n, err
}
