//go:build unix

package sigstop

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary act as a haul that is slow to reach
// main: it waits childDelay, then takes the context and reports.
const childEnv = "SIGSTOP_TEST_CHILD"

const childDelay = 3 * time.Second

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode))
	}
	os.Exit(m.Run())
}

// child is the process under test. Its init installed the handler (its
// name is not *.test); "early" waits before taking the context, as a
// haul whose package inits are slow; "twice" takes it at once and then
// waits for the clean stop that never ends.
func child(mode string) int {
	if mode == "early" {
		time.Sleep(childDelay) // a signal comes meanwhile
	}
	ctx, stop := Context(context.Background(), os.Stderr)
	defer stop()
	io.WriteString(os.Stdout, "ready\n")
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		return 3 // no signal seen
	}
	var s Stop
	if !errors.As(context.Cause(ctx), &s) || !errors.Is(context.Cause(ctx), context.Canceled) {
		return 4
	}
	if mode == "twice" {
		io.WriteString(os.Stdout, "stopping\n")
		time.Sleep(10 * time.Second) // a slow clean stop: the second signal ends it
		return 5
	}
	return ExitCode
}

// runChild starts this test binary under a name that is not *.test, in
// mode, and returns it with its output.
func runChild(t *testing.T, mode string) (*exec.Cmd, *output) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "haul-like")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &output{f.Name()}
}

// output is what the child wrote so far (to a file: no copying
// goroutine to race with).
type output struct{ path string }

func (o *output) String() string {
	b, _ := os.ReadFile(o.path)
	return string(b)
}

func exitCode(t *testing.T, cmd *exec.Cmd, out *output) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("the child did not end:\n%s", out)
		return -1
	}
}

// TestSignalBeforeMain: a SIGTERM or SIGHUP that comes before main takes
// the context is kept and stops the run cleanly (exit 75), where the
// default action would have killed the process.
func TestSignalBeforeMain(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd, out := runChild(t, "early")
			time.Sleep(childDelay / 2)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if code := exitCode(t, cmd, out); code != ExitCode {
				t.Fatalf("%v before main: exit %d, want %d\n%s", sig, code, ExitCode, out)
			}
		})
	}
}

// TestSecondSignalExitsAtOnce: a second signal during a slow clean stop
// ends the process at once with 75 and one line saying so.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	cmd, out := runChild(t, "twice")
	waitFor := func(s string) {
		for i := 0; i < 400 && !strings.Contains(out.String(), s); i++ {
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("ready")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor("stopping")
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	code := exitCode(t, cmd, out)
	if code != ExitCode || time.Since(start) > 5*time.Second || !strings.Contains(out.String(), "SIGHUP again during the clean stop (after SIGTERM)") {
		t.Fatalf("second signal: exit %d after %v, output:\n%s", code, time.Since(start), out)
	}
}
