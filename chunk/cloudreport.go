package chunk

import (
	"fmt"
	"strings"
	"time"

	"github.com/haul-dev/haul/internal/units"
)

// Cloud files states in `haul status` (CloudStatus.State).
const (
	CloudFetching = "fetching" // the last run did not end: files are still to come
	CloudMissing  = "missing"  // it ended with files no host served (see MissLog)
	CloudDone     = "done"     // every listed file is in upload/; the list was removed
)

// CloudStatus is the Bitrix cloud files step in `haul status` (the
// "cloud" object of --json). The caller fills it from the step's status
// in DEST/.haul/cloud.
type CloudStatus struct {
	State string `json:"state"`
	List  string `json:"list"`
	// Files and Bytes are the listed files to be in upload/ (caches and
	// temporary files left out, as restore.php does); FilesDone and
	// BytesDone are there with their listed size.
	Files     int   `json:"files"`
	FilesDone int   `json:"files_done"`
	Bytes     int64 `json:"bytes"`
	BytesDone int64 `json:"bytes_done"`
	Skipped   int   `json:"skipped"`
	// Missing are the files no host served as listed (Refused: their
	// place in upload/ is unsafe); MissLog lists them.
	Missing int    `json:"missing"`
	Refused int    `json:"refused"`
	MissLog string `json:"miss_log,omitempty"`
	// Rate is the last run's (bytes pulled per second); ETASeconds what
	// is left at that rate (null: unknown).
	Rate       float64   `json:"rate_bytes_per_second"`
	ETASeconds *float64  `json:"eta_seconds"`
	Updated    time.Time `json:"updated"`
}

// AddCloud puts the cloud files step into the status: a set whose parts
// are all done is still incomplete while files are to come, and broken
// while files are missing at every host (as haul run's exit 3).
func (r *StatusReport) AddCloud(c CloudStatus) {
	switch {
	case r.State == SetBroken:
	case c.State == CloudMissing:
		r.State = SetBroken
	case c.State == CloudFetching:
		r.State = SetIncomplete
	}
	r.Cloud = &c
}

// line is the status line of the cloud files step.
func (c *CloudStatus) line() string {
	pct := 100.0
	if c.Bytes > 0 {
		pct = float64(c.BytesDone) * 100 / float64(c.Bytes)
	}
	s := fmt.Sprintf("cloud files: %s %s — %d/%d files, %s of %s (%.1f%%)", c.State, c.List, c.FilesDone, c.Files,
		units.FormatBytes(c.BytesDone), units.FormatBytes(c.Bytes), pct)
	if c.Rate > 0 && c.State == CloudFetching {
		s += ", " + units.FormatRate(c.Rate)
	}
	if c.ETASeconds != nil && c.State == CloudFetching {
		s += ", ETA " + units.FormatDuration(dur(*c.ETASeconds))
	}
	if c.Missing > 0 {
		s += fmt.Sprintf(", %d missing", c.Missing)
	}
	if c.Refused > 0 {
		s += fmt.Sprintf(", %d refused (unsafe place)", c.Refused)
	}
	if c.MissLog != "" {
		s += " (listed in " + c.MissLog + ")"
	}
	return s
}

// next is what to do about files the step could not place.
func (c *CloudStatus) next() string {
	if c.State != CloudMissing {
		return ""
	}
	return "haul run again to retry the missing cloud files, give another host with --bitrix-cdn, or skip them with --no-cloud"
}

// CloudReport is the cloud files step of one run in `haul report` (the
// "cloud" object of a run in --json).
type CloudReport struct {
	List string `json:"list"`
	// Files are the counts of the list (null: the run was interrupted
	// before the step ended).
	Files          *FileCounts `json:"files"`
	Bytes          int64       `json:"bytes"` // pulled over the link by this run
	Seconds        float64     `json:"seconds"`
	BytesPerSecond float64     `json:"bytes_per_second"`
	// Interrupted: no cloud_end (killed during the step).
	Interrupted bool   `json:"interrupted"`
	Message     string `json:"message,omitempty"`
}

// buildCloud sums up a run's cloud events; nil when it has none.
func buildCloud(evs []Event) *CloudReport {
	var c *CloudReport
	var start time.Time
	for _, e := range evs {
		switch e.Event {
		case EventCloudStart:
			c = &CloudReport{List: e.Message, Interrupted: true}
			start = e.Time
		case EventCloudEnd:
			if c == nil {
				c = &CloudReport{}
			}
			c.Interrupted = false
			c.Files, c.Bytes, c.Seconds, c.Message = e.Files, e.Bytes, e.Seconds, e.Message
		}
		if c != nil && c.Interrupted && !start.IsZero() {
			c.Seconds = e.Time.Sub(start).Seconds()
		}
	}
	if c != nil && c.Seconds > 0 {
		c.BytesPerSecond = float64(c.Bytes) / c.Seconds
	}
	return c
}

// text is the report's timeline entry for the cloud files step.
func (c *CloudReport) text() string {
	s := fmt.Sprintf("cloud    %s", units.FormatDuration(dur(c.Seconds)))
	if !c.Interrupted { // a killed step recorded no bytes
		s += "  " + units.FormatBytes(c.Bytes)
		if c.Seconds > 0 {
			s += " at " + units.FormatRate(c.BytesPerSecond)
		}
	}
	if f := c.Files; f != nil {
		s += fmt.Sprintf("; %d files listed: %d fetched, %d already there, %d skipped, %d missing", f.Listed, f.Fetched, f.Present, f.Skipped, f.Missing)
	}
	if c.List != "" {
		s += " from " + c.List
	}
	switch {
	case c.Interrupted:
		s += "  (interrupted)"
	case c.Message != "":
		s += ": " + strings.TrimSpace(c.Message)
	}
	return s
}
