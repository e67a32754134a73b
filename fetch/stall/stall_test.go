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
	w := New(time.Second, cancel)
	defer w.Stop()
	rd := w.Reader(strings.NewReader("abcde"))
	for i := 0; i < 5; i++ { // 1.5 s of reads, each well within the timeout
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
	case <-time.After(5 * time.Second):
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
