package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/internal/gen"
	"github.com/haul-dev/haul/internal/testenv"
)

// slowSet generates a site, archives it as a tar.gz split into parts, and
// serves the parts over a capped loopback link. It returns the server,
// the parts, their URLs and the site directory.
func slowSet(t *testing.T, siteBytes, partSize, perConn int64) (*testenv.FaultServer, []e2ePart, []string, string) {
	t.Helper()
	site, split := filepath.Join(t.TempDir(), "site"), t.TempDir()
	if err := gen.Tree(site, 7, siteBytes); err != nil {
		t.Fatal(err)
	}
	paths, err := gen.SplitTarGz(site, split, "site.tar.gz", partSize, gen.FormatGzip)
	if err != nil {
		t.Fatal(err)
	}
	parts := e2eReadDir(t, paths)
	srv := e2eServe(t, parts, testenv.ConnRate(perConn))
	return srv, parts, e2eURLs(srv, parts), site
}

func TestTwoRunsAtOnce(t *testing.T) {
	_, parts, urls, _ := slowSet(t, 3<<20, 1<<20, 256<<10)
	dest := t.TempDir()
	args := append([]string{"fetch", "--progress", "log", "--chunk-size", "128K", "-j", "2"}, append(urls, dest)...)
	first := haulCmd(context.Background(), nil, args...)
	var out bytes.Buffer
	first.Stdout, first.Stderr = &out, &out
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	// Wait until the first run holds the lock (its journal says so).
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if ev, _ := chunk.ReadJournal(dest); len(ev) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	second := runHaul(t, nil, args...)
	took := time.Since(start)
	wantCode(t, second, 75)
	if !strings.Contains(second.stderr, "pid "+strconv.Itoa(first.Process.Pid)) {
		t.Errorf("the refusal does not name the holder's PID %d: %s", first.Process.Pid, second.stderr)
	}
	if took > 5*time.Second {
		t.Errorf("the second run took %s to give up; it must exit at once", took)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("the first run failed: %v\n%s", err, out.String())
	}
	e2eIdentical(t, dest, parts)
}

func TestMaxTimeStopsAndResumes(t *testing.T) {
	_, parts, urls, _ := slowSet(t, 6<<20, 1<<20, 128<<10)
	dest := t.TempDir()
	args := append([]string{"fetch", "--progress", "log", "--chunk-size", "128K", "-j", "2"}, append(urls, dest)...)
	start := time.Now()
	r := runHaul(t, nil, append(args, "--max-time", "1500ms")...)
	took := time.Since(start)
	wantCode(t, r, 75)
	if !strings.Contains(r.stderr, "deadline") {
		t.Errorf("the stop does not say it was the deadline: %s", r.stderr)
	}
	if took > 15*time.Second {
		t.Errorf("--max-time 1.5s stopped only after %s", took)
	}
	st, err := chunk.Load(dest)
	if err != nil {
		t.Fatalf("no state after the deadline: %v", err)
	}
	if chunk.BuildStatus(st, nil, time.Now()).State != chunk.SetIncomplete {
		t.Fatalf("the deadline came after the end; make the link slower")
	}
	wantCode(t, runHaul(t, nil, args...), 0)
	e2eIdentical(t, dest, parts)
}

// TestBandwidthLimit checks the cap end to end on a loopback link. The
// limiter's own accuracy (±10% over 5 s windows, timetable switching with
// an injected clock) is tested in package fetch; here the rate must not
// exceed the cap by more than 10% and must come near it.
func TestBandwidthLimit(t *testing.T) {
	srv, parts, urls, _ := slowSet(t, 4<<20, 1<<20, 0)
	dest := t.TempDir()
	var size int64
	for _, u := range urls {
		fi, _ := os.Stat(filepath.Join(srv.Root(), filepath.Base(u)))
		size += fi.Size()
	}
	const limit = 1 << 20
	start := time.Now()
	r := runHaul(t, nil, append([]string{"fetch", "--progress", "none", "--bwlimit", "1M", "--chunk-size", "128K", "-j", "4"}, append(urls, dest)...)...)
	took := time.Since(start).Seconds()
	wantCode(t, r, 0)
	rate := float64(size) / took
	if rate > 1.1*limit {
		t.Errorf("%.0f bytes/s with --bwlimit 1M: over the cap by more than 10%%", rate)
	}
	if rate < 0.5*limit {
		t.Errorf("%.0f bytes/s with --bwlimit 1M: far under the cap", rate)
	}
	e2eIdentical(t, dest, parts)
}

func TestProgressLogWhenNotATerminal(t *testing.T) {
	// Slow enough that the fetch outlasts a few log intervals: pieces are
	// committed as they land, so nothing else holds the run back.
	_, parts, urls, _ := slowSet(t, 2<<20, 1<<20, 128<<10)
	dest := t.TempDir()
	logInterval := "HAUL_TEST_LOG_INTERVAL=300ms"
	r := runHaul(t, []string{logInterval}, append([]string{"fetch", "--chunk-size", "128K"}, append(urls, dest)...)...)
	wantCode(t, r, 0)
	if strings.Contains(r.stdout+r.stderr, "\x1b[") || strings.Contains(r.stdout, "\r") {
		t.Errorf("escape codes in non-terminal output:\n%q", r.stdout)
	}
	if !regexp.MustCompile(`\d+-\d+-\d+T\d+:\d+:\d+[+-]\d\d:\d\d .* / .*\(\d+\.\d%\), .*, ETA .*, parts \d+/\d+ done, \d+ broken`).MatchString(r.stdout) {
		t.Errorf("no periodic log line with bytes, %%, rate, ETA and parts:\n%s", r.stdout)
	}
	e2eIdentical(t, dest, parts)
}

func TestProgressBarsOnATerminal(t *testing.T) {
	_, parts, urls, _ := slowSet(t, 2<<20, 1<<20, 512<<10)
	dest := t.TempDir()
	out, code := runOnPTY(t, []string{"TERM=xterm"}, "", "", append([]string{"fetch", "--chunk-size", "128K"}, append(urls, dest)...)...)
	if code != 0 {
		t.Fatalf("haul on a terminal: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "\x1b[") || !strings.Contains(out, "total") || !strings.Contains(out, "%") {
		t.Errorf("no progress bars on a terminal:\n%q", out)
	}
	e2eIdentical(t, dest, parts)
}

func TestRunTwicePullsNothing(t *testing.T) {
	srv, _, urls, site := slowSet(t, 2<<20, 700<<10, 0)
	dest, into := t.TempDir(), filepath.Join(t.TempDir(), "www")
	args := append([]string{"run", "--progress", "log", "--chunk-size", "128K"}, append(urls, dest, "--into", into)...)
	wantCode(t, runHaul(t, nil, args...), 0)
	if same, err := sameTree(site, into); err != nil || !same {
		t.Fatalf("restored tree differs: %v", err)
	}
	srv.WaitIdle(5 * time.Second)
	before := srv.BytesSent()
	r := runHaul(t, nil, args...)
	wantCode(t, r, 0)
	srv.WaitIdle(5 * time.Second)
	if pulled := srv.BytesSent() - before; pulled != 0 {
		t.Fatalf("the second run pulled %d bytes, want 0", pulled)
	}
}

// TestSIGTERM stops each step with SIGTERM: exit 75, the state intact,
// and the rerun completes.
func TestSIGTERM(t *testing.T) {
	t.Run("fetch", func(t *testing.T) {
		_, parts, urls, _ := slowSet(t, 4<<20, 1<<20, 128<<10)
		dest := t.TempDir()
		args := append([]string{"fetch", "--progress", "log", "--chunk-size", "128K", "-j", "2"}, append(urls, dest)...)
		code := termAfter(t, 1500*time.Millisecond, args...)
		if code != 75 {
			t.Fatalf("SIGTERM during fetch: exit %d, want 75", code)
		}
		if _, err := chunk.Load(dest); err != nil {
			t.Fatalf("state after SIGTERM: %v", err)
		}
		wantCode(t, runHaul(t, nil, args...), 0)
		e2eIdentical(t, dest, parts)
	})
	t.Run("restore", func(t *testing.T) {
		srv, _, urls, site := slowSet(t, 24<<20, 4<<20, 0)
		dest, into := t.TempDir(), filepath.Join(t.TempDir(), "www")
		wantCode(t, runHaul(t, nil, append([]string{"fetch", "--progress", "none"}, append(urls, dest)...)...), 0)
		_ = srv
		code := termAfter(t, 150*time.Millisecond, "restore", dest, "--into", into, "--progress", "log")
		t.Logf("SIGTERM during restore: exit %d", code)
		if code != 75 && code != 0 {
			t.Fatalf("SIGTERM during restore: exit %d, want 75 (or 0 if it had finished)", code)
		}
		if code == 75 {
			if _, err := os.Stat(into); err == nil {
				t.Fatalf("an interrupted restore left a tree at %s", into)
			}
		}
		wantCode(t, runHaul(t, nil, "restore", dest, "--into", into, "--progress", "none"), 0)
		if same, err := sameTree(site, into); err != nil || !same {
			t.Fatalf("restored tree differs after the rerun: %v", err)
		}
	})
}

// termAfter starts haul, sends SIGTERM after d, and returns the exit code.
func termAfter(t *testing.T, d time.Duration, args ...string) int {
	t.Helper()
	code, _ := signalAfter(t, d, []os.Signal{syscall.SIGTERM}, args...)
	return code
}

func TestStatusAndReportJSON(t *testing.T) {
	srv, _, urls, _ := slowSet(t, 2<<20, 1<<20, 0)
	dest := t.TempDir()
	wantCode(t, runHaul(t, nil, append([]string{"fetch", "--progress", "none"}, append(urls, dest)...)...), 0)
	_ = srv
	r := runHaul(t, nil, "status", "--json", dest)
	wantCode(t, r, 0)
	var st struct {
		State      string   `json:"state"`
		BytesTotal int64    `json:"bytes_total"`
		BytesDone  int64    `json:"bytes_done"`
		ETA        *float64 `json:"eta_seconds"`
		Parts      []struct {
			Name       string   `json:"name"`
			Size       int64    `json:"size"`
			BytesDone  int64    `json:"bytes_done"`
			Status     string   `json:"status"`
			VerifiedBy []string `json:"verified_by"`
		} `json:"parts"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if st.State != "done" || st.BytesDone != st.BytesTotal || len(st.Parts) != len(urls) {
		t.Fatalf("status after a complete fetch: %+v", st)
	}
	r = runHaul(t, nil, "report", "--json", dest)
	wantCode(t, r, 0)
	var rep struct {
		Runs []struct {
			Cmd      string `json:"cmd"`
			ExitCode *int   `json:"exit_code"`
			Bytes    int64  `json:"bytes"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("report --json: %v\n%s", err, r.stdout)
	}
	if len(rep.Runs) != 1 || rep.Runs[0].Cmd != "fetch" || rep.Runs[0].ExitCode == nil || *rep.Runs[0].ExitCode != 0 || rep.Runs[0].Bytes < st.BytesTotal {
		t.Fatalf("report: %+v", rep)
	}
}
