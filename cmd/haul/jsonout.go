package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"

	"github.com/haul-dev/haul/chunk"
)

// jsonSchema is the version of every JSON output (the "schema" field). It
// changes only when a field changes meaning or goes away; new fields may
// be added within a version.
const jsonSchema = 1

// writeJSON prints v, a JSON object, with "schema" as its first field.
func writeJSON(w io.Writer, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(body) < 2 || body[0] != '{' {
		return fmt.Errorf("json output: %T is not an object", v)
	}
	var out bytes.Buffer
	out.WriteString(fmt.Sprintf(`{"schema":%d`, jsonSchema))
	if len(body) > 2 {
		out.WriteByte(',')
	}
	out.Write(body[1:])
	var ind bytes.Buffer
	if err := json.Indent(&ind, out.Bytes(), "", "  "); err != nil {
		return err
	}
	ind.WriteByte('\n')
	_, err = w.Write(ind.Bytes())
	return err
}

// ms rounds seconds to milliseconds, so JSON shows 12.345, not float noise.
func ms(s float64) float64 { return math.Round(s*1000) / 1000 }

// statusOut is `haul status --json`: the status with counts per part state.
type statusOut struct {
	chunk.StatusReport
	// Counts is how many parts are in each state (every state is listed,
	// zero or not) and "total".
	Counts map[string]int `json:"counts"`
}

// roundRate rounds a rate to bytes and an ETA to milliseconds.
func roundRate(rate float64, eta *float64) (float64, *float64) {
	if eta != nil {
		e := ms(*eta)
		eta = &e
	}
	return math.Round(rate), eta
}

func statusJSON(r chunk.StatusReport) statusOut {
	r.Rate, r.ETASeconds = roundRate(r.Rate, r.ETASeconds)
	if r.DB != nil {
		db := *r.DB
		db.Rate, db.ETASeconds = roundRate(db.Rate, db.ETASeconds)
		r.DB = &db
	}
	if r.Cloud != nil {
		c := *r.Cloud
		c.Rate, c.ETASeconds = roundRate(c.Rate, c.ETASeconds)
		r.Cloud = &c
	}
	counts := map[string]int{"total": len(r.Parts)}
	for _, s := range []string{chunk.Pending, chunk.Partial, chunk.Verified, chunk.Unverified, chunk.Broken, chunk.Missing} {
		counts[s] = 0
	}
	for _, p := range r.Parts {
		counts[p.Status]++
	}
	return statusOut{StatusReport: r, Counts: counts}
}

// runOut is one run of `haul report --json`, with how it ended.
type runOut struct {
	chunk.RunReport
	// Ended is "exit" when the run recorded its end (exit_code says how),
	// "killed" when it did not: killed with -9, crashed, or the host went
	// down (exit_code is null).
	Ended string `json:"ended"`
}

type reportOut struct {
	Runs []runOut `json:"runs"`
}

func reportJSON(r chunk.Report) reportOut {
	out := reportOut{Runs: make([]runOut, 0, len(r.Runs))}
	for _, run := range r.Runs {
		run.Seconds = ms(run.Seconds)
		run.BytesPerSecond = math.Round(run.BytesPerSecond)
		if run.RestoreSeconds != nil {
			rs := ms(*run.RestoreSeconds)
			run.RestoreSeconds = &rs
		}
		steps := make([]chunk.StepReport, len(run.Steps))
		for i, s := range run.Steps {
			s.Seconds = ms(s.Seconds)
			steps[i] = s
		}
		run.Steps = steps
		events := make([]chunk.Event, len(run.Events))
		for i, e := range run.Events {
			e.Seconds = ms(e.Seconds)
			events[i] = e
		}
		run.Events = events
		if run.DB != nil {
			db := *run.DB
			db.Seconds, db.BytesPerSecond, db.StatementsPerSecond = ms(db.Seconds), math.Round(db.BytesPerSecond), math.Round(db.StatementsPerSecond)
			run.DB = &db
		}
		if run.Cloud != nil {
			c := *run.Cloud
			c.Seconds, c.BytesPerSecond = ms(c.Seconds), math.Round(c.BytesPerSecond)
			run.Cloud = &c
		}
		ended := "exit"
		if run.Interrupted {
			ended = "killed"
		}
		out.Runs = append(out.Runs, runOut{RunReport: run, Ended: ended})
	}
	return out
}
