package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/haul-dev/haul/internal/testenv"
)

// haulBin is the haul binary built once for the subprocess tests.
var haulBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "haul-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	haulBin = filepath.Join(dir, "haul")
	out, err := exec.Command("go", "build", "-o", haulBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build haul: %v\n%s", err, out)
		os.Exit(1)
	}
	// testenv.Main exits the process, so a defer would never run.
	testenv.AtExit(func() { os.RemoveAll(dir) })
	testenv.Main(m)
}

// result is one finished haul process.
type result struct {
	stdout, stderr string
	code           int
}

// haulCmd prepares `haul args…` with the test environment: fast retries,
// extra env (e.g. MinIO credentials).
func haulCmd(ctx context.Context, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, haulBin, args...)
	cmd.Env = append(os.Environ(), "HAUL_TEST_FAST_RETRY=1", "AWS_EC2_METADATA_DISABLED=true")
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// runHaul runs haul to completion (bounded by a minute and a half) and
// returns its output and exit code.
func runHaul(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := haulCmd(ctx, env, args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	r := result{stdout: so.String(), stderr: se.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run haul %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("haul %v did not finish in time\nstdout:\n%s\nstderr:\n%s", args, r.stdout, r.stderr)
	}
	return r
}

// wantCode fails the test unless r exited with code.
func wantCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}
