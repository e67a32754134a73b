package testenv

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"
)

// StartHelper runs the test binary again as a child process that runs no
// test (env is added to its environment; the package's TestMain or init
// reads it and does the work), and waits until the child prints READY as
// its first line: the moment a kill -9 test kills it. It fails the test,
// naming what (a round, a byte), when the child ends first or is not
// ready within wait. The caller kills and waits for the child.
func StartHelper(t testing.TB, what string, wait time.Duration, env ...string) *exec.Cmd {
	t.Helper()
	cmd, out := StartChild(t, env...)
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ready <- sc.Scan() && sc.Text() == "READY"
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("%s: the helper ended before it was killed", what)
		}
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("%s: the helper was not ready after %v", what, wait)
	}
	return cmd
}

// StartChild runs the test binary again as a child process that runs no
// test, with env added to its environment, and returns it with its
// standard output (its standard error is the test's).
func StartChild(t testing.TB, env ...string) (*exec.Cmd, io.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}
