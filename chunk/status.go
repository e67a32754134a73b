package chunk

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/haul-dev/haul/internal/units"
)

// Set states in `haul status`.
const (
	SetDone       = "done"       // every part complete
	SetBroken     = "broken"     // some part broken or missing
	SetIncomplete = "incomplete" // still fetching
)

// PartStatus is one part in `haul status --json`.
type PartStatus struct {
	Name       string   `json:"name"`
	Size       int64    `json:"size"`
	BytesDone  int64    `json:"bytes_done"`
	Status     string   `json:"status"`
	VerifiedBy []string `json:"verified_by"`
	Error      string   `json:"error,omitempty"`
}

// StatusReport is `haul status`: what is done, left, broken, and when it
// will end at the recent rate.
type StatusReport struct {
	State      string       `json:"state"`
	BytesTotal int64        `json:"bytes_total"`
	BytesDone  int64        `json:"bytes_done"`
	ETASeconds *float64     `json:"eta_seconds"`
	Rate       float64      `json:"rate_bytes_per_second"`
	Deadline   *time.Time   `json:"deadline,omitempty"`
	Plan       string       `json:"plan,omitempty"`
	Parts      []PartStatus `json:"parts"`
	// DB is the Bitrix database step, when one was started (AddDB).
	DB *DBStatus `json:"db,omitempty"`
	// Cloud is the Bitrix cloud files step, when one was started
	// (AddCloud).
	Cloud *CloudStatus `json:"cloud,omitempty"`
	// Sources are the bytes each source delivered in the last run that
	// moved bytes, when it had mirrors (two sources or more); omitted
	// otherwise.
	Sources []SourceReport `json:"sources,omitempty"`
	// Dest is the directory, for the commands WriteText suggests.
	Dest string `json:"-"`
}

// BuildStatus summarises a state; the journal gives the recent rate (the
// last run that moved bytes) and the deadline the last run was given.
func BuildStatus(st *State, events []Event, now time.Time) StatusReport {
	r := StatusReport{State: SetDone, Parts: make([]PartStatus, 0, len(st.Parts))} // exactly: 100,000 parts are 9 MB here
	if len(st.Parts) == 0 {
		r.State = SetIncomplete // stopped before the set was known: nothing is done
	}
	for _, p := range st.Parts {
		done := p.BytesDone(st.PieceSize)
		r.BytesTotal += p.Size
		r.BytesDone += done
		ps := PartStatus{Name: p.Name, Size: p.Size, BytesDone: done, Status: p.Status, VerifiedBy: p.VerifiedBy, Error: p.Error}
		if ps.VerifiedBy == nil {
			ps.VerifiedBy = []string{}
		}
		r.Parts = append(r.Parts, ps)
		switch {
		case p.Status == Broken || p.Status == Missing:
			r.State = SetBroken
		case !p.Complete() && r.State == SetDone:
			r.State = SetIncomplete
		}
	}
	rep := BuildReport(events)
	for i := len(rep.Runs) - 1; i >= 0; i-- {
		if rep.Runs[i].Bytes > 0 && rep.Runs[i].BytesPerSecond > 0 {
			r.Rate = rep.Runs[i].BytesPerSecond
			break
		}
	}
	// The bytes per source come from the journal's source_bytes events,
	// which each fetch or repair step logs at its end, not from a record
	// written at every commit: they are accounting, not state, and the
	// commit path stays as fast as it is. A run killed mid-step has none
	// (its total is in its progress checkpoints); status then shows no
	// sources rather than an earlier run's.
	for i := len(rep.Runs) - 1; i >= 0; i-- {
		if rep.Runs[i].Bytes > 0 {
			if len(rep.Runs[i].Sources) > 1 {
				r.Sources = rep.Runs[i].Sources
			}
			break
		}
	}
	for i := len(events) - 1; i >= 0; i-- {
		if events[i].Event == EventDeadline {
			if t, err := time.Parse(time.RFC3339, events[i].Message); err == nil && t.After(now) {
				r.Deadline = &t
			}
			break
		}
	}
	left := r.BytesTotal - r.BytesDone
	if left == 0 {
		zero := 0.0
		r.ETASeconds = &zero
	} else if r.Rate > 0 {
		eta := float64(left) / r.Rate
		r.ETASeconds = &eta
		r.Plan = fmt.Sprintf("%s left at %s: about %s", units.FormatBytes(left), units.FormatRate(r.Rate), units.FormatDuration(time.Duration(eta*float64(time.Second))))
		if r.Deadline != nil {
			room := r.Deadline.Sub(now)
			verdict := "enough"
			if room.Seconds() < eta {
				verdict = "not enough"
			}
			r.Plan += fmt.Sprintf("; --until %s leaves %s — %s", r.Deadline.Local().Format("15:04"), units.FormatDuration(room), verdict)
		}
	}
	return r
}

func (r StatusReport) partsBroken() bool {
	for _, p := range r.Parts {
		if p.Status == Broken || p.Status == Missing {
			return true
		}
	}
	return false
}

// WriteText prints the status for a person.
func (r StatusReport) WriteText(w io.Writer) error {
	// Line by line through a buffer: the text of 100,000 parts is not
	// held in memory at once.
	bw := bufio.NewWriter(w)
	b := &errWriter{w: bw}
	pct := 100.0
	if r.BytesTotal > 0 {
		pct = float64(r.BytesDone) * 100 / float64(r.BytesTotal)
	}
	b.printf("state: %s — %s of %s (%.1f%%)\n", r.State, units.FormatBytes(r.BytesDone), units.FormatBytes(r.BytesTotal), pct)
	if r.Plan != "" {
		b.printf("plan: %s\n", r.Plan)
	}
	if len(r.Sources) > 0 {
		by := make([]string, len(r.Sources))
		for i, s := range r.Sources {
			by[i] = fmt.Sprintf("%s %s (%s)", s.Source, units.FormatBytes(s.Bytes), units.FormatRate(s.BytesPerSecond))
		}
		b.printf("sources (last run): %s\n", strings.Join(by, ", "))
	}
	for _, p := range r.Parts {
		line := fmt.Sprintf("  %-10s %-40s %10s / %s", p.Status, p.Name, units.FormatBytes(p.BytesDone), units.FormatBytes(p.Size))
		if len(p.VerifiedBy) > 0 {
			line += "  " + strings.Join(p.VerifiedBy, ", ")
		}
		if p.Error != "" {
			line += "  " + p.Error
		}
		b.printf("%s\n", strings.TrimRight(line, " "))
	}
	if r.Cloud != nil {
		b.printf("%s\n", r.Cloud.line())
	}
	if r.DB != nil {
		b.printf("%s\n", r.DB.line())
	}
	if r.Cloud != nil && r.Cloud.next() != "" {
		b.printf("next: %s\n", r.Cloud.next())
	}
	if r.State == SetBroken && r.partsBroken() {
		dest := r.Dest
		if dest == "" {
			dest = "DEST"
		}
		b.printf("next: haul repair %s (or haul repair --from ssh://HOST/DIR %s)\n", dest, dest)
	}
	if b.err != nil {
		return b.err
	}
	return bw.Flush()
}

// StatusEvents reads the journal for BuildStatus: every event about a run
// or a step as written, and each stretch of a run's events about single
// parts folded into one part_fetched event that carries their bytes at
// the last one's time. BuildReport finds the same bytes, durations and
// rates in them, from memory bounded by the runs rather than by the parts
// (a journal of 100,000 parts holds over 200,000 part events).
func StatusEvents(dest string) ([]Event, error) {
	var out []Event
	folding := map[string]int{} // run → index in out of its open fold
	err := ScanJournal(dest, func(e Event) {
		if e.Part == "" {
			delete(folding, e.Run)
			out = append(out, e)
			return
		}
		i, ok := folding[e.Run]
		if !ok {
			i = len(out)
			folding[e.Run] = i
			out = append(out, Event{Run: e.Run, Cmd: e.Cmd, Event: EventPartFetched})
		}
		out[i].Time = e.Time
		if e.Event == EventPartFetched || e.Event == EventPartRepaired {
			out[i].Bytes += e.Bytes
		}
	})
	return out, err
}
