// Package stall is the fetch engine's stall watchdog: a transfer that
// moves no byte for --timeout is cancelled, and its error says so.
package stall

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/haul-dev/haul/internal/retry"
)

// ErrStalled is returned when a transfer moved no byte for the timeout:
// the link or the server failing for now, like a timeout on the socket.
var ErrStalled = retry.Mark(retry.Transient, errors.New("no data for the stall timeout"))

// Watch cancels a transfer that moves no byte for the timeout.
type Watch struct {
	t       *time.Timer
	d       time.Duration
	mu      sync.Mutex
	stalled bool
}

// New starts a watch that calls cancel after d without a Kick.
func New(d time.Duration, cancel context.CancelFunc) *Watch {
	w := &Watch{d: d}
	w.t = time.AfterFunc(d, func() {
		w.mu.Lock()
		w.stalled = true
		w.mu.Unlock()
		cancel()
	})
	return w
}

// Kick tells the watch that bytes moved.
func (w *Watch) Kick() { w.t.Reset(w.d) }

// Stop ends the watch.
func (w *Watch) Stop() { w.t.Stop() }

// Explain turns the cancellation the watch caused into ErrStalled; any
// other error is returned as it is.
func (w *Watch) Explain(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stalled {
		return fmt.Errorf("%w (%s)", ErrStalled, w.d)
	}
	return err
}

// Reader kicks the watch on every read of r that moves bytes.
func (w *Watch) Reader(r io.Reader) io.Reader { return watched{r, w} }

type watched struct {
	r io.Reader
	w *Watch
}

func (r watched) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.w.Kick()
	}
	return n, err
}
