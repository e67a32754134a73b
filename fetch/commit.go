// Committing: written pieces, the progress inside pieces in flight and
// changed part records become durable together — fsync of the part files
// first, then one append to the state log with one fsync — and parts
// whose pieces are all durable go to the verifiers. (The renames of
// proven parts are made durable by one fsync of DEST just before the
// records that say so: Store.Barrier, destdir.Renames.)

package fetch

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/source"
)

// committer commits every commitInterval, at once when the backlog of
// written pieces is full, and a last time when the workers have stopped:
// what they left in flight is then kept.
func (e *engine) committer(stop <-chan struct{}, verifyQ chan<- *partRun) error {
	t := time.NewTicker(commitInterval)
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

// pending is what one commit makes durable of one part.
type pending struct {
	r        *partRun
	f        *os.File
	pieces   map[int][]byte
	progress []chunk.Progress
}

func (e *engine) commit(verifyQ chan<- *partRun) error {
	e.mu.Lock()
	var batch []pending
	for r := range e.touched {
		pd := pending{r: r, f: r.f}
		if len(r.written) > 0 {
			// The pieces stay in r.written until Done holds them, so
			// that no worker takes them for missing in between.
			pd.pieces = maps.Clone(r.written)
		}
		for i, fl := range r.flights {
			if pr, ok := e.headProgress(r, i, fl); ok && pr.Bytes > fl.saved {
				pd.progress = append(pd.progress, pr)
			}
		}
		for _, pr := range r.stopped {
			pd.progress = append(pd.progress, pr)
		}
		clear(r.stopped)
		batch = append(batch, pd)
	}
	e.mu.Unlock()

	// Data first: the log must never name bytes that are not on disk.
	for _, pd := range batch {
		if pd.f != nil && (len(pd.pieces) > 0 || len(pd.progress) > 0) {
			if err := pd.f.Sync(); err != nil {
				return source.Permanent(fmt.Errorf("fsync %s: %w", e.partialPath(pd.r.p.Name), err))
			}
		}
	}

	var recs []chunk.Record
	var ready []*partRun
	e.mu.Lock()
	for _, pd := range batch {
		r, p := pd.r, pd.r.p
		for i, sum := range pd.pieces {
			if !p.Done.Has(i) {
				r.doneN++
			}
			p.SetPiece(i, r.n, sum)
			delete(r.written, i)
			e.backlog--
			recs = append(recs, chunk.PieceRecord(p.Name, i, sum))
		}
		for _, pr := range pd.progress {
			old, _ := p.ProgressOf(pr.Piece)
			if p.Done.Has(pr.Piece) || (old.Bytes == pr.Bytes && bytes.Equal(old.Sum, pr.Sum)) {
				continue
			}
			p.SetProgress(pr)
			if fl := r.flights[pr.Piece]; fl != nil {
				fl.saved = pr.Bytes
			}
			recs = append(recs, chunk.ProgressRecord(p.Name, pr))
		}
		if len(pd.pieces) > 0 {
			e.follow(r)
		}
		if r.dirty {
			r.dirty = false
			recs = append(recs, chunk.PartRecord(p.Clone()))
		}
		if len(r.written) == 0 && len(r.flights) == 0 && len(r.stopped) == 0 && !r.dirty {
			delete(e.touched, r)
			r.written, r.stopped = nil, nil
		}
		if r.allDone() && !r.verifying && !r.settled() {
			r.verifying = true
			ready = append(ready, r)
			if r.f != nil {
				// Every byte is synced; the proof reads the file by its
				// name. Closed now, no file stays open while parts
				// wait for a verifier.
				if err := r.f.Close(); err != nil {
					e.mu.Unlock()
					return source.Permanent(fmt.Errorf("close %s: %w", e.partialPath(p.Name), err))
				}
				r.f = nil
			}
		}
	}
	e.mu.Unlock()
	if len(recs) == 0 {
		return nil
	}
	if err := e.store.Append(recs...); err != nil {
		return source.Permanent(err)
	}
	if e.store.Full() {
		if err := e.save(); err != nil {
			return err
		}
	}
	e.mu.Lock()
	e.signal()
	e.mu.Unlock()
	// Verified only once the state says every piece is on disk.
	for _, r := range ready {
		verifyQ <- r // room for every part: each is queued once at a time
	}
	return nil
}
