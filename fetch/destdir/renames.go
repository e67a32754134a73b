package destdir

import (
	"os"
	"sync"
	"sync/atomic"

	"github.com/haul-dev/haul/internal/safefs"
)

// Renames makes the renames of proven parts durable in batches: one fsync
// of DEST for all the parts promoted since the last, run just before a
// state record that may call them verified becomes durable
// (chunk.Store.Barrier). A fsync of DEST per part cost as much as the
// part's data at 100,000 small parts; the state never says verified of a
// part whose final name a power loss could still undo.
type Renames struct {
	// mu is held across the fsync: a Sync that finds nothing pending
	// knows every earlier rename is durable, not merely being made so.
	mu      sync.Mutex
	pending atomic.Bool
}

// Promote is Dir.Promote, the rename left for the next Sync to make
// durable.
func (r *Renames) Promote(d Dir, name string, f *os.File) error {
	if err := d.Promote(name, f); err != nil {
		return err
	}
	r.pending.Store(true)
	return nil
}

// Sync fsyncs DEST when a part was promoted since the last Sync.
func (r *Renames) Sync(d Dir) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.pending.Swap(false) {
		return nil
	}
	dir, err := safefs.Open(string(d))
	if err == nil {
		err = dir.Sync()
		dir.Close()
	}
	if err != nil {
		r.pending.Store(true)
	}
	return err
}
