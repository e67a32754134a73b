package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// CI reports whether the tests run under CI (the CI environment variable is
// "true" or another true value of strconv.ParseBool). Under CI a missing
// real component is a failure, never a skip.
func CI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// Missing reports that a real component the test needs cannot be had: it
// fails the test under CI and skips it otherwise, with the reason either way.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("%s (CI=true: a missing component fails the test)", msg)
	}
	t.Skipf("%s (skipped; under CI=true this fails)", msg)
}

// RequireTool returns the path of the executable name found in PATH. When
// it is not there the test fails under CI and is skipped otherwise.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "testenv: %s not found in PATH: %v", name, err)
	}
	return p
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. A
// process started with it can still lose a race with another one; callers
// that start servers retry with a new port when binding fails.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	return p
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("listen on 127.0.0.1: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("close probe listener: %w", err)
	}
	return port, nil
}

var (
	mainRunning atomic.Bool
	exitMu      sync.Mutex
	exitFuncs   []func()
)

// Main runs the tests of a package and then stops every server started for
// the whole test binary (SharedMinIO) and removes its files. Use it as
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// It does not return.
func Main(m *testing.M) {
	mainRunning.Store(true)
	code := m.Run()
	runAtExit()
	os.Exit(code)
}

// AtExit registers f to run when Main ends, in reverse order of
// registration. It is for servers shared by a whole test binary.
func AtExit(f func()) {
	exitMu.Lock()
	defer exitMu.Unlock()
	exitFuncs = append(exitFuncs, f)
}

func runAtExit() {
	exitMu.Lock()
	fs := exitFuncs
	exitFuncs = nil
	exitMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
