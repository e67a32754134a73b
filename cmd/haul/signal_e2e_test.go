package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haul-dev/haul/chunk"
)

// signalAfter starts haul, sends sigs (back to back) after d, and
// returns the exit code and the output.
func signalAfter(t *testing.T, d time.Duration, sigs []os.Signal, args ...string) (int, string) {
	t.Helper()
	return signalWhen(t, nil, d, sigs, args...)
}

// signalWhen is signalAfter with d counted from when ready first says
// true (polled, for 30 s at most), so that a slow start on a loaded
// machine does not move the signal before what the test means to cut.
func signalWhen(t *testing.T, ready func() bool, d time.Duration, sigs []os.Signal, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := haulCmd(ctx, nil, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ready != nil && !ready() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(d)
	for _, s := range sigs {
		_ = cmd.Process.Signal(s)
	}
	err := cmd.Wait()
	if ctx.Err() != nil {
		t.Fatalf("haul did not stop after %v:\n%s", sigs, out.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	return 0, out.String()
}

// TestSignalsStopCleanly: SIGHUP (a closed terminal or SSH session)
// stops a fetch as SIGTERM does, exit 75 with the state saved, and the
// rerun completes identical; a second signal during the clean stop exits
// 75 at once, the state still usable. (A signal before main is
// internal/sigstop's TestSignalBeforeMain.)
func TestSignalsStopCleanly(t *testing.T) {
	cases := []struct {
		name  string
		after time.Duration
		sigs  []os.Signal
		say   string // in the output
	}{
		{"SIGHUP mid-fetch", 500 * time.Millisecond, []os.Signal{syscall.SIGHUP}, ""},
		{"second signal during the stop", 500 * time.Millisecond, []os.Signal{syscall.SIGTERM, syscall.SIGHUP}, "again during the clean stop"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, parts, urls, _ := slowSet(t, 4<<20, 1<<20, 128<<10)
			dest := t.TempDir()
			args := append([]string{"fetch", "--progress", "log", "--chunk-size", "128K", "-j", "2"}, append(urls, dest)...)
			// The signal falls d after the fetch saved its first state:
			// mid-fetch however slowly haul started.
			started := func() bool { _, err := os.Stat(chunk.StatePath(dest)); return err == nil }
			code, out := signalWhen(t, started, tc.after, tc.sigs, args...)
			if code != 75 {
				t.Fatalf("%v %v into the fetch: exit %d, want 75\n%s", tc.sigs, tc.after, code, out)
			}
			if !strings.Contains(out, tc.say) {
				t.Fatalf("the output does not say %q:\n%s", tc.say, out)
			}
			if _, err := chunk.Load(dest); err != nil {
				t.Fatalf("state after %v: %v", tc.sigs, err)
			}
			wantCode(t, runHaul(t, nil, args...), 0)
			e2eIdentical(t, dest, parts)
		})
	}
}
