package chunk

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// StateDir is haul's own directory inside DEST.
const StateDir = ".haul"

// ErrNoState means DEST has no state.json: nothing was fetched there.
var ErrNoState = errors.New("no haul state")

// StatePath returns DEST/.haul/state.json.
func StatePath(dest string) string { return filepath.Join(dest, StateDir, "state.json") }

// Load reads DEST/.haul/state.json. A missing file gives ErrNoState.
func Load(dest string) (*State, error) {
	var data []byte
	sd, err := OpenStateDir(dest, false)
	if err == nil {
		data, err = sd.ReadFile("state.json")
		sd.Close()
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (run haul fetch first)", dest, ErrNoState)
	}
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("load state %s: %w", StatePath(dest), err)
	}
	if s.Version != StateVersion {
		return nil, fmt.Errorf("load state %s: version %d, this haul reads %d", StatePath(dest), s.Version, StateVersion)
	}
	return &s, nil
}

// Save writes s to DEST/.haul/state.json so that a crash at any instant
// leaves either the old or the new file: temp file, fsync, rename, fsync
// of the directory.
func Save(dest string, s *State) error {
	s.Version = StateVersion
	s.Updated = time.Now().UTC()
	data, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	sd, err := OpenStateDir(dest, true)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	defer sd.Close()
	return sd.WriteFile("state.json", data, 0o600)
}
