package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cheggaaa/pb/v3"
	"golang.org/x/term"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch"
	"github.com/haul-dev/haul/internal/testhook"
	"github.com/haul-dev/haul/internal/units"
)

// logInterval is how often the log reporter writes a line (cron, tee).
// Tests shorten it (internal/testhook).
var logInterval = testhook.LogInterval(10 * time.Second)

// reporter shows progress (bars on a terminal, plain log lines otherwise).
// It implements fetch.Progress and restore.Progress; the job writes the
// journal, not the reporter.
type reporter struct {
	a    *app
	mode string // bars, log, none

	mu      sync.Mutex
	parts   map[string]*partBar
	order   []string
	total   int64
	base    int64 // bytes on disk when the plan came
	pulled  atomic.Int64
	started time.Time
	rates   rateWindow

	restoreTotal int64
	restoreIn    atomic.Int64
	restoreFiles atomic.Int64

	// Bars: pb formats them; the reporter redraws the frame itself so that
	// event lines can be printed above the bars between redraws.
	bars     bool
	bar      *pb.ProgressBar
	slots    []*pb.ProgressBar
	shown    []bool // slot i is drawn
	above    []string
	lastRows int
	stop     chan struct{}
	done     chan struct{}
}

type partBar struct {
	size, done int64
	status     string
	last       time.Time
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

func newReporter(a *app, mode string) *reporter {
	switch mode {
	case "", "auto":
		mode = "log"
		if a.stdoutTTY {
			mode = "bars"
		}
	case "bars", "log", "none":
	default:
		mode = "log"
	}
	r := &reporter{a: a, mode: mode, parts: map[string]*partBar{}, started: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go r.loop()
	return r
}

// Plan implements fetch.Progress.
func (r *reporter) Plan(parts []fetch.PartProgress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.parts = map[string]*partBar{}
	r.order = r.order[:0]
	r.total, r.base = 0, 0
	for _, p := range parts {
		r.parts[p.Name] = &partBar{size: p.Size, done: p.Done, status: p.Status}
		r.order = append(r.order, p.Name)
		r.total += p.Size
		r.base += p.Done
	}
	r.base -= r.pulled.Load() // bytes pulled before a re-plan already count in done
	if r.mode == "bars" && !r.bars {
		r.startBars()
	}
}

// Pulled implements fetch.Progress.
func (r *reporter) Pulled(part string, n int64) {
	r.pulled.Add(n)
	r.mu.Lock()
	if p := r.parts[part]; p != nil {
		p.done = min(p.done+n, p.size)
		p.last = time.Now()
		if p.status == chunk.Pending {
			p.status = chunk.Partial
		}
	}
	r.mu.Unlock()
}

// Event implements fetch.Progress: the events that matter are shown.
func (r *reporter) Event(e fetch.Event) {
	r.mu.Lock()
	if p := r.parts[e.Part]; p != nil {
		switch e.Kind {
		case chunk.EventPartVerified, chunk.EventPartRepaired:
			p.status, p.done = chunk.Verified, p.size
		case chunk.EventPartUnverified:
			p.status, p.done = chunk.Unverified, p.size
		case chunk.EventPartBroken:
			p.status = chunk.Broken
		case chunk.EventPartChanged, chunk.EventRetry:
			p.status = chunk.Partial
		}
	}
	r.mu.Unlock()
	if e.Kind == chunk.EventRetry && r.mode == "bars" {
		return // the bars show it; the journal keeps it
	}
	r.logf("%s", e.Message)
}

// RestoreStart, RestoreBytes, RestoreFile and Warn implement restore.Progress.
func (r *reporter) RestoreStart(total int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.restoreTotal = total
	if r.mode == "bars" && !r.bars {
		r.startBars()
	}
}
func (r *reporter) RestoreBytes(n int64) { r.restoreIn.Add(n) }
func (r *reporter) RestoreFile(string)   { r.restoreFiles.Add(1) }
func (r *reporter) Warn(msg string) {
	r.logf("warning: %s", msg)
}

// logf prints one line that matters (errors go to stderr from main).
func (r *reporter) logf(format string, a ...any) {
	if r.mode == "none" {
		return
	}
	line := fmt.Sprintf(format, a...)
	if r.mode == "bars" {
		r.mu.Lock()
		if r.bars {
			r.above = append(r.above, line) // printed above the bars at the next redraw
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		fmt.Fprintln(r.a.stdout, line)
		return
	}
	fmt.Fprintf(r.a.stdout, "%s %s\n", time.Now().Format("15:04:05"), line)
}

// loop writes the periodic log line or refreshes the bars.
func (r *reporter) loop() {
	defer close(r.done)
	every := logInterval
	if r.mode == "bars" {
		every = 250 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.rates.add(time.Now(), r.pulled.Load())
			switch r.mode {
			case "log":
				if r.total > 0 || r.restoreIn.Load() > 0 {
					r.logf("%s", r.statusLine())
				}
			case "bars":
				r.updateBars()
			}
		}
	}
}

// statusLine is the cron log line: bytes, %, rate, ETA, parts.
func (r *reporter) statusLine() string {
	if in := r.restoreIn.Load(); in > 0 {
		return fmt.Sprintf("restore: %s read, %d files written", units.FormatBytes(in), r.restoreFiles.Load())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	done := r.base + r.pulled.Load()
	done = max(0, min(done, r.total))
	var ok, broken int
	for _, p := range r.parts {
		switch p.status {
		case chunk.Verified, chunk.Unverified:
			ok++
		case chunk.Broken, chunk.Missing:
			broken++
		}
	}
	rate := r.rates.rate()
	eta := "?"
	if rate > 0 {
		eta = units.FormatDuration(time.Duration(float64(r.total-done) / rate * float64(time.Second)))
	}
	pct := 100.0
	if r.total > 0 {
		pct = float64(done) * 100 / float64(r.total)
	}
	return fmt.Sprintf("%s / %s (%.1f%%), %s, ETA %s, parts %d/%d done, %d broken",
		units.FormatBytes(done), units.FormatBytes(r.total), pct, units.FormatRate(rate), eta, ok, len(r.parts), broken)
}

// startBars sets up the bars; callers hold r.mu.
func (r *reporter) startBars() {
	r.bar = pb.New64(r.total).Set(pb.Bytes, true).Set(pb.Static, true).Set("prefix", "total ")
	r.bar.SetTemplateString(`{{string . "prefix"}}{{counters . }} {{bar . }} {{percent . }} {{speed . }} {{rtime . "ETA %s"}}`)
	r.bar.SetCurrent(r.base)
	r.bar.Start()
	for i := 0; i < 4; i++ {
		s := pb.New64(1).Set(pb.Bytes, true).Set(pb.Static, true)
		s.SetTemplateString(`  {{string . "prefix"}} {{counters . }} {{bar . }} {{percent . }}`)
		s.Start()
		r.slots = append(r.slots, s)
		r.shown = append(r.shown, false)
	}
	r.bars = true
}

// updateBars redraws the frame: pending event lines, then the total bar
// and the parts that moved most recently. Callers must not hold r.mu.
func (r *reporter) updateBars() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.bars {
		return
	}
	cols := 100
	if w, _, err := term.GetSize(int(os.Stdout.Fd())); err == nil && w > 20 {
		cols = w
	}
	if r.restoreTotal > 0 {
		r.bar.Set("prefix", fmt.Sprintf("restore (%d files) ", r.restoreFiles.Load()))
		r.bar.SetTotal(r.restoreTotal)
		r.bar.SetCurrent(min(r.restoreIn.Load(), r.restoreTotal))
	} else {
		r.bar.SetTotal(r.total)
		r.bar.SetCurrent(max(0, min(r.base+r.pulled.Load(), r.total)))
	}
	var active []string
	for _, n := range r.order {
		p := r.parts[n]
		if p.status == chunk.Partial && time.Since(p.last) < 5*time.Second {
			active = append(active, n)
		}
	}
	sort.SliceStable(active, func(i, j int) bool { return r.parts[active[i]].last.After(r.parts[active[j]].last) })
	var b strings.Builder
	if r.lastRows > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", r.lastRows)
	}
	b.WriteString("\r\x1b[J")
	for _, l := range r.above {
		b.WriteString(l + "\n")
	}
	r.above = r.above[:0]
	rows := 0
	line := func(bar *pb.ProgressBar) {
		bar.SetWidth(cols - 1)
		b.WriteString(bar.String() + "\n")
		rows++
	}
	line(r.bar)
	for i, s := range r.slots {
		if i >= len(active) {
			continue
		}
		p := r.parts[active[i]]
		s.Set("prefix", shorten(active[i], 28))
		s.SetTotal(p.size)
		s.SetCurrent(p.done)
		line(s)
	}
	r.lastRows = rows
	io.WriteString(r.a.stdout, b.String())
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s + strings.Repeat(" ", n-len(s))
	}
	return "…" + s[len(s)-n+1:]
}

// finish stops the output and prints a clean summary line.
func (r *reporter) finish() {
	select {
	case <-r.stop:
		return
	default:
	}
	close(r.stop)
	<-r.done
	if r.bars {
		r.updateBars()
		r.mu.Lock()
		r.bars = false
		r.mu.Unlock()
	}
	if r.mode != "none" && r.pulled.Load() > 0 {
		el := time.Since(r.started)
		r.logf("pulled %s in %s (%s average)", units.FormatBytes(r.pulled.Load()), units.FormatDuration(el), units.FormatRate(float64(r.pulled.Load())/max(el.Seconds(), 0.001)))
	}
}

// rateWindow estimates the recent rate from samples of the last minute.
type rateWindow struct {
	mu      sync.Mutex
	samples []sample
}

type sample struct {
	t time.Time
	n int64
}

func (w *rateWindow) add(t time.Time, n int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples = append(w.samples, sample{t, n})
	for len(w.samples) > 2 && t.Sub(w.samples[0].t) > time.Minute {
		w.samples = w.samples[1:]
	}
}

func (w *rateWindow) rate() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.samples) < 2 {
		return 0
	}
	a, b := w.samples[0], w.samples[len(w.samples)-1]
	if d := b.t.Sub(a.t).Seconds(); d > 0 {
		return float64(b.n-a.n) / d
	}
	return 0
}

// passphrasePrompt asks for an SSH key passphrase on the terminal; nil
// when there is none (cron), so the SSH client says what to do instead.
func passphrasePrompt() func(string) ([]byte, error) {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil
	}
	return func(key string) ([]byte, error) {
		fmt.Fprintf(os.Stderr, "Enter passphrase for %s: ", key)
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(os.Stderr)
		return b, err
	}
}
