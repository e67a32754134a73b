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
	data, err := os.ReadFile(StatePath(dest))
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
	return WriteFileAtomic(StatePath(dest), data, 0o600)
}

// WriteFileAtomic replaces path with data durably: temp file in the same
// directory, fsync, rename, fsync of the directory.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so a rename inside it is durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return serr
	}
	return cerr
}
