package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	perm := Mark(Permanent, errors.New("not found"))
	for _, tc := range []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, Unknown},
		{"canceled", fmt.Errorf("get: %w", context.Canceled), Unknown},
		{"marked permanent, wrapped", fmt.Errorf("stat x: %w", perm), Permanent},
		{"marked data", Mark(Data, errors.New("bad range")), Data},
		{"refused dial", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, Transient},
		{"body cut short", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), Transient},
		{"name does not resolve", &net.DNSError{Name: "nohost", IsNotFound: true}, Unknown},
		{"name server timeout", &net.DNSError{Name: "h", IsTimeout: true}, Transient},
		{"connection closed", fmt.Errorf("sftp: %w", io.EOF), Connection},
		{"broken pipe", syscall.EPIPE, Connection},
		{"local failure", errors.New("disk full"), Unknown},
	} {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestDo(t *testing.T) {
	none := func(int) time.Duration { return 0 }
	transient := &net.OpError{Op: "read", Err: syscall.ECONNRESET}

	t.Run("succeeds after failures", func(t *testing.T) {
		var retried []int
		n := 0
		err := Do(context.Background(), Policy{Attempts: 5, Backoff: none, OnRetry: func(_ error, a int) { retried = append(retried, a) }}, func(a int) error {
			n = a
			if a < 3 {
				return transient
			}
			return nil
		})
		if err != nil || n != 3 || fmt.Sprint(retried) != "[1 2]" {
			t.Fatalf("err %v after %d tries, retried %v; want nil after 3, retried [1 2]", err, n, retried)
		}
	})
	t.Run("exhausted", func(t *testing.T) {
		n := 0
		err := Do(context.Background(), Policy{Attempts: 4, Backoff: none}, func(a int) error { n = a; return transient })
		var ex *ExhaustedError
		if !errors.As(err, &ex) || ex.Attempts != 4 || n != 4 || !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("%v after %d tries; want an ExhaustedError after 4 that wraps the last failure", err, n)
		}
	})
	t.Run("refused error returned at once", func(t *testing.T) {
		n := 0
		perm := Mark(Permanent, errors.New("access denied"))
		err := Do(context.Background(), Policy{Attempts: 4, Backoff: none}, func(a int) error { n = a; return perm })
		if err != perm || n != 1 {
			t.Fatalf("%v after %d tries; want the permanent error after 1", err, n)
		}
	})
	t.Run("context ends the wait", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		err := Do(ctx, Policy{Attempts: 10, Backoff: func(int) time.Duration { return time.Hour }}, func(a int) error {
			n = a
			cancel()
			return transient
		})
		if !errors.Is(err, transient) && !errors.Is(err, context.Canceled) || n != 1 {
			t.Fatalf("%v after %d tries; want to stop after 1", err, n)
		}
		if err := Do(ctx, Policy{}, func(int) error { t.Fatal("ran with an ended context"); return nil }); !errors.Is(err, context.Canceled) {
			t.Fatalf("%v, want context.Canceled before the first try", err)
		}
	})
}

func TestExpBackoff(t *testing.T) {
	b := ExpBackoff(100*time.Millisecond, time.Second)
	for attempt, hi := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 9: time.Second} {
		for range 20 {
			if d := b(attempt); d < hi/2 || d > hi {
				t.Fatalf("attempt %d: %s, want within [%s, %s]", attempt, d, hi/2, hi)
			}
		}
	}
}
