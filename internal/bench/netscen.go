package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/haul-dev/haul/internal/units"
)

// Config is what the scenarios share.
type Config struct {
	Haul   string // haul binary
	Aria2  string // peer binaries; "" leaves the peer out
	Rclone string
	Curl   string
	Tar    string

	Work   string // scratch directory (sets, fetched copies)
	Rounds int    // runs of each tool; tables show medians
	Seed   uint64

	// Network scenarios.
	NetSize  int64 // bytes of the Bitrix set (about)
	NetParts int
	Piece    int64 // haul --chunk-size and the manifest's piece size
	Conns    int   // haul -j on the slow link
	Streams  int   // rclone --multi-thread-streams
	Link     Link  // the clean slow link
	Faults   Link  // what the faulty link adds (ResetProb, ResetAfter, Flips)
	JList    []int // -j values of the per-connection scenario
	JWindow  time.Duration

	// Local scenarios.
	BigSizes []int64 // set sizes of the memory scenario
	BigPart  int64   // part size of the big sets
	SiteSize int64   // size of the site restored against tar
	// RestoreInto is where (f) extracts ("" = under Work).
	RestoreInto string
	Soak        SoakConfig
	// ScaleRuns are the sets of the scale scenario (h), ScaleBig the size
	// of its one big part (0: left out).
	ScaleRuns []ScaleRun
	ScaleBig  int64
	// SettleBig is the pause before each run of the big part, for the
	// disk to finish writing what the run before left it.
	SettleBig time.Duration

	Trace string        // directory for per-run byte traces ("" = none)
	Limit time.Duration // longest any one child process may run
	Log   io.Writer     // progress lines
}

func (c *Config) logf(format string, a ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, "haulbench: "+format+"\n", a...)
	}
}

// peers returns the peer fetchers that are installed.
func (c *Config) peers() []Fetcher {
	var out []Fetcher
	if c.Aria2 != "" {
		out = append(out, Aria2(c.Aria2))
	}
	if c.Rclone != "" {
		out = append(out, Rclone(c.Rclone, c.Streams))
	}
	if c.Curl != "" {
		out = append(out, Curl(c.Curl))
	}
	return out
}

func (c *Config) netSet(ctx context.Context) (*Set, error) {
	c.logf("generating a Bitrix-style set of about %s in %d volumes", units.FormatBytes(c.NetSize), c.NetParts)
	return NetSet(ctx, c.Work, "net", c.NetSize, c.NetParts, c.Piece, int64(c.Seed))
}

// netSets makes the network set and a copy of it without the piece
// manifest (SHA256SUMS only).
func (c *Config) netSets(ctx context.Context) (s, sumsOnly *Set, err error) {
	if s, err = c.netSet(ctx); err != nil {
		return nil, nil, err
	}
	sumsOnly, err = s.WithoutManifest(filepath.Join(c.Work, "net-sums-only"))
	return s, sumsOnly, err
}

func (c *Config) haulNet() Fetcher {
	f := Haul(c.Haul, c.Conns, c.Piece)
	f.Name += " " + units.FormatBytes(c.Piece) + " pieces"
	return f
}

// rounds runs every fetcher c.Rounds times, interleaved, each on its link.
func (c *Config) rounds(ctx context.Context, scen string, s *Set, runs []netRun) ([]*stats, error) {
	st := make([]*stats, len(runs))
	for i, r := range runs {
		st[i] = &stats{tool: r.label, verifies: r.f.Verifies}
	}
	for round := 1; round <= c.Rounds; round++ {
		for i, r := range runs {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			trace := ""
			if c.Trace != "" {
				trace = filepath.Join(c.Trace, fmt.Sprintf("%s-%s-r%d.csv", scen, strings.NewReplacer(" ", "_", "/", "_").Replace(r.label), round))
			}
			res := FetchOnce(ctx, r.f, r.set(s), r.link, c.Work, c.Limit, trace)
			c.logf("round %d/%d %-34s %6.2fs pulled %s identical=%v%s", round, c.Rounds, r.label, res.Wall.Seconds(),
				units.FormatBytes(res.Pulled), res.Identical(), errSuffix(res))
			st[i].add(res)
		}
	}
	return st, nil
}

func errSuffix(r Result) string {
	switch {
	case r.Err != nil:
		return " (" + r.Err.Error() + ")"
	case r.Diff != "":
		return " (" + r.Diff + ")"
	}
	return ""
}

type netRun struct {
	label string
	f     Fetcher
	link  Link
	alt   *Set // a variant of the set (nil: the scenario's)
}

func (r netRun) set(s *Set) *Set {
	if r.alt != nil {
		return r.alt
	}
	return s
}

// fetchTable shows each tool's medians. With a total cap, it also shows
// the link time left unused at the start and the end of the runs.
func fetchTable(title, note string, s *Set, l Link, st []*stats) Table {
	t := Table{Title: title, Note: note,
		Head: []string{"tool", "seconds", "first byte s", "last byte→exit s", "MiB pulled", "pulled/set", "resets", "identical", "max RSS MiB", "CPU s"}}
	if l.TotalRate > 0 {
		t.Head = append(t.Head, "cap unused: first 2 s", "last 3 s")
	}
	for _, x := range st {
		name := x.tool
		if x.verifies {
			name += " (verified)"
		}
		t.Rows = append(t.Rows, []string{name, fmt.Sprintf("%.1f", x.seconds()), fmt.Sprintf("%.2f", x.first()), fmt.Sprintf("%.2f", x.finish()),
			mib(x.pulled()), fmt.Sprintf("%.3f", x.pulled()/float64(s.Size)), fmt.Sprintf("%.0f", x.resets()),
			fmt.Sprintf("%d/%d", x.identical, len(x.runs)),
			mib(float64(x.maxRSS())), fmt.Sprintf("%.2f", x.cpu())})
		if l.TotalRate > 0 {
			row := &t.Rows[len(t.Rows)-1]
			*row = append(*row, fmt.Sprintf("%.2f", x.med(func(r Result) float64 { a, _ := r.capLoss(l.TotalRate); return a })),
				fmt.Sprintf("%.2f", x.med(func(r Result) float64 { _, b := r.capLoss(l.TotalRate); return b })))
		}
	}
	return t
}

func setNote(s *Set, l Link, rounds int) string {
	return fmt.Sprintf("%d parts, %s; link: %s; medians of %d runs", len(s.Parts), units.FormatBytes(s.Size), l, rounds)
}

// CleanLink is scenario (a): the set over the clean slow link with haul
// and every peer; haul's time to a verified set against the best peer's
// time to an unverified one, and the share of the total cap haul used.
func (c *Config) CleanLink(ctx context.Context) (*Report, error) {
	s, sumsOnly, err := c.netSets(ctx)
	if err != nil {
		return nil, err
	}
	runs := []netRun{{label: c.haulNet().Name, f: c.haulNet(), link: c.Link}}
	npeers := len(c.peers())
	for _, p := range c.peers() {
		runs = append(runs, netRun{label: p.Name, f: p, link: c.Link})
	}
	// What a user gets without tuning: no -j, no --chunk-size, SHA256SUMS
	// beside the parts but no haul manifest.
	runs = append(runs, netRun{label: "haul with its defaults, SHA256SUMS only", f: Haul(c.Haul, 0, 0), link: c.Link, alt: sumsOnly})
	st, err := c.rounds(ctx, "a", s, runs)
	if err != nil {
		return nil, err
	}
	rep := &Report{Name: "(a) clean slow link"}
	rep.Tables = append(rep.Tables, fetchTable("Time to the whole set", setNote(s, c.Link, c.Rounds), s, c.Link, st))
	haul := st[0]
	var best *stats
	for _, x := range st[1 : 1+npeers] {
		if x.identical == len(x.runs) && (best == nil || x.seconds() < best.seconds()) {
			best = x
		}
	}
	if best != nil {
		ratio := haul.seconds() / best.seconds()
		rep.Checks = append(rep.Checks, Check{
			Target: "haul's time to a verified set ≤ the best peer's time to an unverified one",
			Got:    fmt.Sprintf("haul %.1fs, best peer %s %.1fs: ratio %.3f", haul.seconds(), best.tool, best.seconds(), ratio),
			Met:    ratio <= 1,
		})
	}
	if c.Link.TotalRate > 0 {
		use := float64(s.Size) / haul.seconds() / float64(c.Link.TotalRate)
		rep.Checks = append(rep.Checks, Check{
			Target: "≥ 95% of the total cap used",
			Got:    fmt.Sprintf("%s in %.1fs = %s of %s/s: %.1f%%", units.FormatBytes(s.Size), haul.seconds(), units.FormatRate(float64(s.Size)/haul.seconds()), units.FormatBytes(c.Link.TotalRate), use*100),
			Met:    use >= 0.95,
		})
	}
	return rep, nil
}

// FaultyLink is scenario (c): the same set over the slow link with resets
// and bit flips. haul runs on the clean link too in the same rounds (for
// the 1.15× target) and once more with SHA256SUMS only (no piece manifest).
func (c *Config) FaultyLink(ctx context.Context) (*Report, error) {
	s, sumsOnly, err := c.netSets(ctx)
	if err != nil {
		return nil, err
	}
	faulty := c.Link
	faulty.ResetProb, faulty.ResetAfter, faulty.Flips = c.Faults.ResetProb, c.Faults.ResetAfter, c.Faults.Flips
	h := c.haulNet()
	runs := []netRun{
		{label: h.Name + " clean link", f: h, link: c.Link},
		{label: h.Name, f: h, link: faulty},
		{label: h.Name + " SHA256SUMS only", f: h, link: faulty, alt: sumsOnly},
	}
	for _, p := range c.peers() {
		runs = append(runs, netRun{label: p.Name, f: p, link: faulty})
	}
	st, err := c.rounds(ctx, "c", s, runs)
	if err != nil {
		return nil, err
	}
	rep := &Report{Name: "(c) faulty link"}
	rep.Tables = append(rep.Tables, fetchTable("Time to the whole set, resets and bit flips", setNote(s, faulty, c.Rounds)+"; the first row is the clean link", s, faulty, st))
	clean, haul, sums := st[0], st[1], st[2]
	rep.Checks = append(rep.Checks, Check{
		Target: "haul's result is identical on the faulty link",
		Got:    fmt.Sprintf("%d/%d runs identical (with SHA256SUMS only: %d/%d)", haul.identical, len(haul.runs), sums.identical, len(sums.runs)),
		Met:    haul.identical == len(haul.runs) && sums.identical == len(sums.runs),
	})
	ratio := haul.seconds() / clean.seconds()
	rep.Checks = append(rep.Checks, Check{
		Target: "haul's time ≤ 1.15 × its clean-link time",
		Got:    fmt.Sprintf("%.1fs faulty / %.1fs clean = %.3f", haul.seconds(), clean.seconds(), ratio),
		Met:    ratio <= 1.15,
	})
	pr := haul.pulled() / float64(s.Size)
	rep.Checks = append(rep.Checks, Check{
		Target: "bytes pulled ≤ 1.05 × set size with a piece manifest",
		Got:    fmt.Sprintf("%s of %s = %.3f (SHA256SUMS only: %.3f)", units.FormatBytes(int64(haul.pulled())), units.FormatBytes(s.Size), pr, sums.pulled()/float64(s.Size)),
		Met:    pr <= 1.05,
	})
	var bad []string
	for _, x := range st[3:] {
		if x.identical < len(x.runs) {
			bad = append(bad, fmt.Sprintf("%s: %d/%d identical (%s)", x.tool, x.identical, len(x.runs), x.failures()))
		} else {
			bad = append(bad, fmt.Sprintf("%s: %d/%d identical", x.tool, x.identical, len(x.runs)))
		}
	}
	for _, b := range bad {
		rep.Notes = append(rep.Notes, "peer on the faulty link: "+b)
	}
	fl := st[1].runs[0].Faults
	rep.Notes = append(rep.Notes, fmt.Sprintf("faults seen by haul's first faulty run: %d resets, %d flipped bytes", fl.Resets, fl.Flips))
	return rep, nil
}

// PerConnection is scenario (b): the link caps each connection and the
// total; haul's steady throughput at each -j of c.JList, measured on the
// server between 1.5 s and the end of a c.JWindow run (haul stops itself
// with --max-time), against what the caps allow.
func (c *Config) PerConnection(ctx context.Context) (*Report, error) {
	s, err := c.netSet(ctx)
	if err != nil {
		return nil, err
	}
	rates := make([][]float64, len(c.JList))
	for round := 1; round <= c.Rounds; round++ {
		for i, j := range c.JList {
			f := Haul(c.Haul, j, c.Piece, "--max-time", c.JWindow.String())
			res := FetchOnce(ctx, f, s, c.Link, c.Work, c.Limit, "")
			if res.Exit != 75 && res.Exit != 0 {
				return nil, fmt.Errorf("haul -j%d: %v", j, res.Err)
			}
			r := res.rateBetween(1500*time.Millisecond, min(res.LastByte, c.JWindow)-200*time.Millisecond)
			c.logf("round %d/%d haul -j%-2d %s", round, c.Rounds, j, units.FormatRate(r))
			rates[i] = append(rates[i], r)
		}
	}
	rep := &Report{Name: "(b) per-connection-limited link"}
	t := Table{Title: "haul's throughput by -j", Note: fmt.Sprintf("link: %s; steady rate over a %s run; medians of %d runs", c.Link, c.JWindow, c.Rounds),
		Head: []string{"-j", "KiB/s", "caps allow KiB/s", "share"}}
	grows, capped := true, true
	prev := 0.0
	var got []string
	for i, j := range c.JList {
		m := Median(rates[i])
		allow := c.Link.allows(j)
		t.Rows = append(t.Rows, []string{fmt.Sprint(j), fmt.Sprintf("%.0f", m/1024), fmt.Sprintf("%.0f", allow/1024), fmt.Sprintf("%.1f%%", 100*m/allow)})
		got = append(got, fmt.Sprintf("-j%d %.0f", j, m/1024))
		if m < 0.95*allow {
			capped = false
		}
		if i > 0 && allow > c.Link.allows(c.JList[i-1]) && m <= prev*1.05 {
			grows = false
		}
		prev = m
	}
	rep.Tables = append(rep.Tables, t)
	rep.Checks = append(rep.Checks, Check{Target: "throughput grows with -j until the total cap", Got: strings.Join(got, ", ") + " KiB/s", Met: grows},
		Check{Target: "every -j within 5% of what the caps allow", Got: "see the share column", Met: capped})
	return rep, nil
}

// allows is the rate the link's caps allow j busy connections, bytes/s
// (0: no cap at all).
func (l Link) allows(j int) float64 {
	allow := float64(l.TotalRate)
	if l.ConnRate > 0 && (allow == 0 || float64(int64(j)*l.ConnRate) < allow) {
		allow = float64(int64(j) * l.ConnRate)
	}
	return allow
}
