package bitrixdb

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/haul-dev/haul/internal/atomicfile"
)

// StateFile is the name of the import's resume state inside the state
// directory (DEST/.haul).
const StateFile = "bitrixdb.json"

// Phases of a database restore, in order.
const (
	phaseImport   = "import"   // statements are being run
	phaseImported = "imported" // the dump is in; the site is not rewritten yet
	phaseDone     = "done"     // credentials, fixes and cleanup done
)

// state is the durable record of a database restore. It never holds the
// password.
type state struct {
	Version    int           `json:"version"`
	Target     string        `json:"target"` // Target.String()
	Dump       string        `json:"dump"`
	Parts      []statePart   `json:"parts"`
	Phase      string        `json:"phase"`
	Offset     int64         `json:"offset"`     // every statement before it is in the database
	Statements int64         `json:"statements"` // statements run up to Offset
	Session    []string      `json:"session,omitempty"`
	FullText   string        `json:"fulltext,omitempty"` // "", "ok" or "dropped"
	Duplicates int64         `json:"duplicates,omitempty"`
	Definers   []string      `json:"definers_dropped,omitempty"`
	Started    time.Time     `json:"started"`
	Updated    time.Time     `json:"updated"`
	Elapsed    time.Duration `json:"elapsed_ns"` // import time over every run
	// Sites are the trees (absolute paths) pointed at the database and
	// cleaned up: the same backup restored into another --into needs its
	// own site files rewritten, not another import.
	Sites []string `json:"sites,omitempty"`
}

type statePart struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

const stateVersion = 1

func loadState(dir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bitrixdb: %w", err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil || s.Version != stateVersion {
		// A state haul cannot read is not trusted: the import starts over,
		// which is safe (every table is dropped and created again).
		return nil, nil
	}
	return &s, nil
}

func saveState(dir string, s *state) error {
	s.Version = stateVersion
	s.Updated = time.Now().UTC()
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return fmt.Errorf("bitrixdb: save state: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, StateFile), b, 0o600); err != nil {
		return fmt.Errorf("bitrixdb: save state: %w", err)
	}
	return nil
}

func partsOf(d *Dump) []statePart {
	out := make([]statePart, len(d.Parts))
	for i, p := range d.Parts {
		out[i] = statePart{Name: filepath.Base(p.Path), Size: p.Size}
	}
	return out
}

// sameDump reports whether the state was made from this dump (same
// names and sizes): only then may its offset be trusted.
func (s *state) sameDump(d *Dump) bool {
	return s.Dump == d.Name && slices.Equal(s.Parts, partsOf(d))
}
