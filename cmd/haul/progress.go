package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cheggaaa/pb/v3"
	"github.com/mattn/go-runewidth"
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
	parts   partTable
	total   int64
	base    int64 // bytes on disk when the plan came
	pulled  atomic.Int64
	started time.Time
	rates   rateWindow

	restoreTotal int64
	restoreIn    atomic.Int64
	restoreFiles atomic.Int64

	db    dbProgress    // the database import (--db)
	cloud cloudProgress // the Bitrix cloud files

	sources sourcesProgress // bytes per source, with mirrors

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

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// plainTerminal is whether the terminal asked for plain lines: TERM=dumb
// (no cursor movement) or NO_COLOR (no decoration).
func plainTerminal() bool {
	return os.Getenv("TERM") == "dumb" || os.Getenv("NO_COLOR") != ""
}

// progressMode resolves --progress: auto is bars on a terminal that can
// draw them, dated log lines otherwise, nothing with -q. Bars asked for on
// a dumb terminal are log lines too.
func progressMode(a *app, mode string) string {
	if a.quiet {
		return "none"
	}
	switch mode {
	case "", "auto":
		switch {
		case a.stdoutTTY && !plainTerminal():
			return "bars"
		}
		return "log"
	case "bars":
		if os.Getenv("TERM") == "dumb" {
			return "log"
		}
	}
	return mode
}

func newReporter(a *app, mode string) *reporter {
	mode = progressMode(a, mode)
	r := &reporter{a: a, mode: mode, started: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	if a.startLine != "" && (mode == "log" || (mode == "bars" && a.verbose)) {
		r.logf("%s", a.startLine)
	}
	a.startLine = ""
	r.rates.add(r.started, 0)
	go r.loop()
	return r
}

// Plan implements fetch.Progress.
func (r *reporter) Plan(parts []fetch.PartProgress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.parts.plan(parts, r.mode != "none")
	r.total, r.base = 0, 0
	for _, p := range parts {
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
	if r.mode == "none" {
		return
	}
	r.mu.Lock()
	r.parts.pulled(part, n, time.Now(), r.mode == "bars")
	r.mu.Unlock()
}

// Event implements fetch.Progress: the events that matter are shown.
func (r *reporter) Event(e fetch.Event) {
	r.mu.Lock()
	r.parts.event(e)
	r.mu.Unlock()
	if e.Kind == chunk.EventSourceBytes {
		return // the step's summary line says it
	}
	if e.Kind == chunk.EventRetry && r.mode == "bars" && !r.a.verbose {
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
	fmt.Fprintf(r.a.stdout, "%s %s\n", stamp(time.Now()), line)
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
			r.db.sample()
			r.cloud.sample()
			r.sources.sample(time.Now())
			switch r.mode {
			case "log":
				if r.total > 0 || r.restoreIn.Load() > 0 || r.db.active() || r.cloud.active() {
					r.logf("%s", r.statusLine())
				}
			case "bars":
				r.updateBars()
			}
		}
	}
}

// statusLine is the cron log line: bytes, %, rate, ETA, parts. Until two
// samples a log interval apart exist the rate is "measuring", never 0 B/s.
func (r *reporter) statusLine() string {
	if r.db.active() {
		return r.db.line()
	}
	if r.cloud.active() {
		return r.cloud.line()
	}
	if in := r.restoreIn.Load(); in > 0 {
		return fmt.Sprintf("restore: %s read, %d files written", units.FormatBytes(in), r.restoreFiles.Load())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	done := max(0, min(r.base+r.pulled.Load(), r.total))
	c := r.parts.counts
	rate, ok := r.rates.rate()
	speed, eta := "measuring the rate", "ETA soon known"
	switch {
	case ok && rate > 0:
		speed = units.FormatRate(rate)
		eta = "ETA " + units.FormatDuration(time.Duration(float64(r.total-done)/rate*float64(time.Second)))
	case ok:
		speed, eta = "no bytes in the last minute", "ETA unknown"
	}
	pct := 100.0
	if r.total > 0 {
		pct = float64(done) * 100 / float64(r.total)
	}
	line := fmt.Sprintf("%s / %s (%.1f%%), %s, %s, parts %d/%d done, %d broken",
		units.FormatBytes(done), units.FormatBytes(r.total), pct, speed, eta, c.ok, r.parts.len(), c.broken)
	if by := r.sources.line(); by != "" {
		line += "; " + by
	}
	return line
}

// startBars sets up the bars; callers hold r.mu.
func (r *reporter) startBars() {
	r.bar = pb.New64(r.total).Set(pb.Bytes, true).Set(pb.Static, true).Set("prefix", "total ")
	r.bar.SetTemplateString(`{{string . "prefix"}}{{counters . }} {{bar . }} {{percent . }} {{speed . "%s/s" "measuring"}} {{rtime . "ETA %s"}}`)
	r.bar.SetCurrent(r.base)
	r.bar.Start()
	for i := 0; i < 4; i++ {
		s := pb.New64(1).Set(pb.Bytes, true).Set(pb.Static, true)
		s.SetTemplateString(`  {{string . "prefix"}} {{counters . }} {{bar . }} {{percent . }} {{string . "rate"}}`)
		s.Start()
		r.slots = append(r.slots, s)
		r.shown = append(r.shown, false)
	}
	r.bars = true
}

// updateBars redraws the frame: pending event lines, then the total bar,
// the parts count and the parts that moved most recently, each with its
// rate and state. Callers must not hold r.mu.
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
	now := time.Now()
	if r.db.active() {
		r.db.bar(r.bar)
	} else if r.cloud.active() {
		r.cloud.bar(r.bar)
	} else if r.restoreTotal > 0 {
		r.bar.Set("prefix", fmt.Sprintf("restore (%d files) ", r.restoreFiles.Load()))
		r.bar.SetTotal(r.restoreTotal)
		r.bar.SetCurrent(min(r.restoreIn.Load(), r.restoreTotal))
	} else {
		r.bar.SetTotal(r.total)
		r.bar.SetCurrent(max(0, min(r.base+r.pulled.Load(), r.total)))
	}
	active := r.parts.active(now)
	var b strings.Builder
	b.WriteString(r.eraseLocked())
	for _, l := range r.above {
		b.WriteString(l + "\n")
	}
	r.above = r.above[:0]
	rows := 0
	line := func(s string) {
		b.WriteString(s + "\n")
		rows++
	}
	r.bar.SetWidth(cols - 1)
	line(r.bar.String())
	c := r.parts.counts
	if r.parts.len() > 0 {
		line(fitWidth(fmt.Sprintf("parts %d/%d verified, %d unverified, %d broken, %d in flight", c.verified, r.parts.len(), c.ok-c.verified, c.broken, c.inFlight), cols-1))
	}
	if by := r.sources.line(); by != "" {
		line(fitWidth(by, cols-1))
	}
	for i, s := range r.slots {
		if i >= len(active) {
			continue
		}
		p := active[i]
		rate := "measuring"
		if v, ok := p.bar.rate.rate(); ok {
			rate = units.FormatRate(v)
		}
		s.Set("prefix", shorten(p.name, 28))
		s.Set("rate", rate+" "+p.status.String())
		s.SetTotal(p.size)
		s.SetCurrent(p.done)
		s.SetWidth(cols - 1)
		line(s.String())
	}
	r.lastRows = rows
	io.WriteString(r.a.stdout, b.String())
}

// eraseLocked returns the codes that move up over the last frame and clear
// it, so nothing of it stays on the screen.
func (r *reporter) eraseLocked() string {
	s := "\r\x1b[J"
	if r.lastRows > 0 {
		s = fmt.Sprintf("\x1b[%dA", r.lastRows) + s
	}
	r.lastRows = 0
	return s
}

// shorten fits a name into n terminal cells, cutting from the left (the
// end of a part name says which part it is), padded to exactly n cells.
func shorten(s string, n int) string {
	if runewidth.StringWidth(s) > n {
		s = runewidth.TruncatePrefix(s, n, "…")
	}
	return runewidth.FillRight(s, n)
}

// fitWidth cuts a line to n terminal cells.
func fitWidth(s string, n int) string { return runewidth.Truncate(s, n, "…") }

// finish stops the output and prints a clean summary line. The bars are
// erased first, so no stale frame stays above or below the summary.
func (r *reporter) finish() {
	select {
	case <-r.stop:
		return
	default:
	}
	close(r.stop)
	<-r.done
	r.mu.Lock()
	if r.bars {
		var b strings.Builder
		b.WriteString(r.eraseLocked())
		for _, l := range r.above {
			b.WriteString(l + "\n")
		}
		r.above = r.above[:0]
		r.bars = false
		io.WriteString(r.a.stdout, b.String())
	}
	r.mu.Unlock()
	// The cloud files come through their own engine runs: their bytes
	// are pulled too.
	if pulled := r.pulled.Load() + r.cloud.pulled.Load(); r.mode != "none" && pulled > 0 {
		el := time.Since(r.started)
		r.logf("pulled %s in %s (%s average)", units.FormatBytes(pulled), units.FormatDuration(el), units.FormatRate(float64(pulled)/max(el.Seconds(), 0.001)))
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

// rate is the bytes per second over the window; ok is false until the
// window spans a second, when there is nothing to say yet.
func (w *rateWindow) rate() (rate float64, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.samples) < 2 {
		return 0, false
	}
	a, b := w.samples[0], w.samples[len(w.samples)-1]
	d := b.t.Sub(a.t).Seconds()
	if d < 1 {
		return 0, false
	}
	return float64(b.n-a.n) / d, true
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
