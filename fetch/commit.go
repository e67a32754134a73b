// Committing: written pieces become durable (fsync, then state.json) in
// group commits, and complete parts go to the verifier.

package fetch

import (
	"fmt"
	"maps"
	"time"

	"github.com/haul-dev/haul/fetch/source"
)

// committer makes written pieces durable as soon as they are written:
// fsync the files first, then record the pieces in state.json. Pieces
// written while a commit runs go into the next one (group commit). Parts
// whose pieces are all durable go to the verifier.
func (e *engine) committer(stop <-chan struct{}, verifyQ chan<- *partRun) error {
	t := time.NewTicker(time.Second) // a safety net; nudges do the work
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-e.nudge:
		case <-stop:
			return e.commit(verifyQ)
		}
		if err := e.commit(verifyQ); err != nil {
			return err
		}
	}
}

func (e *engine) commit(verifyQ chan<- *partRun) error {
	e.mu.Lock()
	e.commitsStarted++
	seq := e.commitsStarted
	// The pieces stay in r.written until Done holds them, so that no
	// worker takes them for missing in between.
	batch := map[*partRun]map[int]string{}
	for _, r := range e.runs {
		if len(r.written) > 0 {
			batch[r] = maps.Clone(r.written)
		}
	}
	e.mu.Unlock()
	done := func() {
		e.mu.Lock()
		e.commitsDone = seq
		e.signal()
		e.mu.Unlock()
	}
	if len(batch) == 0 {
		done()
		return nil
	}
	for r := range batch {
		if err := r.f.Sync(); err != nil {
			return source.Permanent(fmt.Errorf("fsync %s: %w", e.partialPath(r.p.Name), err))
		}
	}
	var ready []*partRun
	e.mu.Lock()
	for r, pcs := range batch {
		if len(r.p.Hashes) != r.n {
			r.p.Hashes = make([]string, r.n)
		}
		for i, sum := range pcs {
			r.p.Done.Set(i)
			r.p.Hashes[i] = sum
			delete(r.written, i)
		}
		if r.allDone() && !r.verifying && !r.settled() {
			r.verifying = true
			ready = append(ready, r)
		}
	}
	e.mu.Unlock()
	if err := e.save(); err != nil {
		return err
	}
	done()
	// Verified only once the state says every piece is on disk.
	for _, r := range ready {
		verifyQ <- r // room for every part: each is queued once at a time
	}
	return nil
}
