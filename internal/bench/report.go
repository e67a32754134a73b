package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Table is one result table.
type Table struct {
	Title string
	Note  string
	Head  []string
	Rows  [][]string
}

// Check is one target of issue 7, judged on measurements of one run.
type Check struct {
	Target string
	Got    string
	Met    bool
}

// Report is what a scenario measured.
type Report struct {
	Name   string
	Tables []Table
	Checks []Check
	Notes  []string
}

// WriteText prints the report as aligned plain text.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "\n== %s\n", r.Name)
	for _, t := range r.Tables {
		fmt.Fprintf(w, "\n%s\n", t.Title)
		if t.Note != "" {
			fmt.Fprintf(w, "(%s)\n", t.Note)
		}
		width := make([]int, len(t.Head))
		for i, h := range t.Head {
			width[i] = len([]rune(h))
		}
		for _, row := range t.Rows {
			for i, c := range row {
				width[i] = max(width[i], len([]rune(c)))
			}
		}
		line := func(cells []string) {
			var b strings.Builder
			for i, c := range cells {
				pad := width[i] - len([]rune(c))
				if i == 0 {
					b.WriteString(c + strings.Repeat(" ", pad))
				} else {
					b.WriteString("  " + strings.Repeat(" ", pad) + c)
				}
			}
			fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		}
		line(t.Head)
		for _, row := range t.Rows {
			line(row)
		}
	}
	if len(r.Checks) > 0 {
		fmt.Fprintln(w)
		for _, c := range r.Checks {
			fmt.Fprintf(w, "%s  %s: %s\n", mark(c.Met), c.Target, c.Got)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// WriteMarkdown prints the report as Markdown tables for BENCHMARKS.md.
func (r *Report) WriteMarkdown(w io.Writer) {
	fmt.Fprintf(w, "\n### %s\n", r.Name)
	for _, t := range r.Tables {
		fmt.Fprintf(w, "\n%s", t.Title)
		if t.Note != "" {
			fmt.Fprintf(w, " (%s)", t.Note)
		}
		fmt.Fprint(w, "\n\n")
		fmt.Fprintf(w, "| %s |\n", strings.Join(t.Head, " | "))
		seps := make([]string, len(t.Head))
		for i := range seps {
			seps[i] = "---:"
		}
		seps[0] = "---"
		fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
		for _, row := range t.Rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
		}
	}
	if len(r.Checks) > 0 {
		fmt.Fprintln(w)
		for _, c := range r.Checks {
			fmt.Fprintf(w, "- %s %s: %s\n", mark(c.Met), c.Target, c.Got)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nNote: %s\n", n)
	}
}

func mark(ok bool) string {
	if ok {
		return "MET "
	}
	return "MISSED"
}

// Median returns the median of xs (the mean of the middle two for an even
// count), 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// stats summarises several runs of one tool.
type stats struct {
	tool      string
	verifies  bool
	runs      []Result
	identical int
}

func (s *stats) add(r Result) {
	s.runs = append(s.runs, r)
	if r.Identical() {
		s.identical++
	}
}

func (s *stats) med(f func(Result) float64) float64 {
	xs := make([]float64, 0, len(s.runs))
	for _, r := range s.runs {
		xs = append(xs, f(r))
	}
	return Median(xs)
}

func (s *stats) seconds() float64 { return s.med(func(r Result) float64 { return r.Wall.Seconds() }) }
func (s *stats) pulled() float64  { return s.med(func(r Result) float64 { return float64(r.Pulled) }) }
func (s *stats) rss() float64     { return s.med(func(r Result) float64 { return float64(r.MaxRSS) }) }
func (s *stats) cpu() float64     { return s.med(func(r Result) float64 { return r.CPU().Seconds() }) }
func (s *stats) first() float64 {
	return s.med(func(r Result) float64 { return r.FirstByte.Seconds() })
}

// finish is the median time from the last byte on the link to the exit.
func (s *stats) finish() float64 {
	return s.med(func(r Result) float64 { return (r.Wall - r.LastByte).Seconds() })
}

func (s *stats) resets() float64 {
	return s.med(func(r Result) float64 { return float64(r.Faults.Resets) })
}

// maxRSS is the largest max RSS over the runs.
func (s *stats) maxRSS() int64 {
	var m int64
	for _, r := range s.runs {
		m = max(m, r.MaxRSS)
	}
	return m
}

// failures describes the runs that were not identical, the same
// description once with its count.
func (s *stats) failures() string {
	var order []string
	count := map[string]int{}
	for _, r := range s.runs {
		var d string
		switch {
		case r.Err != nil && r.Diff != "":
			d = fmt.Sprintf("%v; %s", r.Err, r.Diff)
		case r.Err != nil:
			d = r.Err.Error()
		case r.Diff != "":
			d = "exit 0 but " + r.Diff
		default:
			continue
		}
		if count[d] == 0 {
			order = append(order, d)
		}
		count[d]++
	}
	out := make([]string, len(order))
	for i, d := range order {
		out[i] = fmt.Sprintf("%s (%d of %d runs)", d, count[d], len(s.runs))
	}
	return strings.Join(out, "; ")
}

func mib(n float64) string { return fmt.Sprintf("%.1f", n/(1<<20)) }

func secs(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }
