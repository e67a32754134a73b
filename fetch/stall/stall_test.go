package stall

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestWatchCancelsAStall: no kick for the timeout cancels the transfer,
// and its error becomes ErrStalled; kicks keep it going.
func TestWatchCancelsAStall(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	// 3.6 s of reads 300 ms apart against a 2 s timeout: the reads outlast
	// the timeout, so only a watchdog that each byte resets lets them
	// through, and a sleep may overrun by 1.7 s on a loaded machine.
	w := New(2*time.Second, cancel)
	defer w.Stop()
	rd := w.Reader(strings.NewReader("abcdefghijkl"))
	for i := 0; i < 12; i++ {
		time.Sleep(300 * time.Millisecond)
		if _, err := rd.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("cancelled while bytes kept moving")
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("not cancelled after the timeout without a byte")
	}
	if err := w.Explain(ctx.Err()); !errors.Is(err, ErrStalled) {
		t.Errorf("Explain = %v, want ErrStalled", err)
	}
}

// TestWatchPassesOtherErrors: an error before any stall is the caller's.
func TestWatchPassesOtherErrors(t *testing.T) {
	w := New(time.Minute, func() {})
	defer w.Stop()
	other := errors.New("reset")
	if err := w.Explain(other); err != other {
		t.Errorf("Explain = %v, want the error as given", err)
	}
}
