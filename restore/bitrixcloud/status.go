package bitrixcloud

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/haul-dev/haul/internal/atomicfile"
)

// StatusFile is where a run keeps its status in Work, for `haul status`.
const StatusFile = "status.json"

// Status is what the last run in a Work directory knows: it is written
// once the list is read, after each batch and at the end, so after a
// kill it is at most one batch behind.
type Status struct {
	Site string `json:"site"` // the restored site (Options.Root)
	List string `json:"list"` // the list's path
	// Listed is every line; Skipped the caches and temporary files
	// restore.php passes over; Files and Bytes the rest, which are to be
	// in upload/.
	Listed  int   `json:"listed"`
	Skipped int   `json:"skipped"`
	Files   int   `json:"files"`
	Bytes   int64 `json:"bytes"`
	// FilesDone and BytesDone are in upload/ with their listed size.
	FilesDone int   `json:"files_done"`
	BytesDone int64 `json:"bytes_done"`
	// Missing is the files no host served as listed, Refused those whose
	// place under upload/ is unsafe; MissLog lists both once written.
	Missing int    `json:"missing"`
	Refused int    `json:"refused,omitempty"`
	MissLog string `json:"miss_log,omitempty"`
	// Pulled is what the last run pulled over the link in Seconds.
	Pulled  int64   `json:"pulled"`
	Seconds float64 `json:"seconds"`
	// Finished: the last run ended; with nothing Missing or Refused every
	// file is in place and the list was removed.
	Finished bool      `json:"finished"`
	Updated  time.Time `json:"updated"`
}

// ReadStatus reads the status in work; nil when no run wrote one.
func ReadStatus(work string) (*Status, error) {
	data, err := os.ReadFile(filepath.Join(work, StatusFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(work, StatusFile), err)
	}
	return &s, nil
}

// saveStatus writes the run's status; it is a report, so a failure to
// write it does not stop the downloads.
func (r *run) saveStatus(finished bool) {
	r.st.Pulled = r.pulled.Load()
	r.st.Seconds = time.Since(r.began).Seconds()
	r.st.Finished = finished
	r.st.Updated = time.Now().UTC()
	data, err := json.Marshal(&r.st)
	if err == nil {
		_ = atomicfile.WriteFile(filepath.Join(r.o.Work, StatusFile), data, 0o600)
	}
}
