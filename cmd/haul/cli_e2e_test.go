package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/internal/testenv"
)

// TestBwlimitFromEnv is issue 16 acceptance 3: HAUL_BWLIMIT=1M caps the
// rate as --bwlimit 1M does, and a flag on the command line beats the
// environment. The bounds are the limiter's own (it cannot be faster than
// its rate), with a wide margin the other way.
func TestBwlimitFromEnv(t *testing.T) {
	parts := e2eSet(21, 1<<20, 1<<20)
	size := float64(e2eTotal(parts))
	run := func(env []string, extra ...string) (secs, rate float64) {
		t.Helper()
		srv := e2eServe(t, parts)
		dest := t.TempDir()
		start := time.Now()
		r := runHaul(t, env, append(append([]string{"fetch", "--progress", "none", "--chunk-size", "256K"}, extra...), append(e2eURLs(srv, parts), dest)...)...)
		secs = time.Since(start).Seconds()
		wantCode(t, r, 0)
		e2eIdentical(t, dest, parts)
		return secs, float64(srv.BytesSent()) / secs
	}
	const mib = 1 << 20
	envSecs, envRate := run([]string{"HAUL_BWLIMIT=1M"})
	flagSecs, flagRate := run(nil, "--bwlimit", "1M")
	t.Logf("HAUL_BWLIMIT=1M: %.2fs, %.0f KiB/s; --bwlimit 1M: %.2fs, %.0f KiB/s", envSecs, envRate/1024, flagSecs, flagRate/1024)
	for _, c := range []struct {
		name string
		rate float64
	}{{"HAUL_BWLIMIT=1M", envRate}, {"--bwlimit 1M", flagRate}} {
		// The bucket holds 1/8 s of data: a 2 MiB set cannot beat 1 MiB/s
		// by more than that.
		if c.rate > 1.2*mib {
			t.Errorf("%s: pulled at %.0f KiB/s, above the cap", c.name, c.rate/1024)
		}
	}
	// The environment says 64K (32 s for this set); the flag says 1M.
	bothSecs, _ := run([]string{"HAUL_BWLIMIT=64K"}, "--bwlimit", "1M")
	if bothSecs > size/(64<<10)/2 {
		t.Errorf("HAUL_BWLIMIT=64K with --bwlimit 1M took %.1fs: the environment won over the flag", bothSecs)
	}
	if bothSecs < 0.75*size/mib {
		t.Errorf("HAUL_BWLIMIT=64K with --bwlimit 1M took %.1fs: no cap at all", bothSecs)
	}
}

// TestLogsDatedWithStartLine is issue 16 acceptance 5: not on a terminal
// every line (stdout and stderr) starts with an RFC 3339 date with its
// offset, the first names the command and the redacted source, and no
// line shows a rate of 0 B/s or an unknown ETA.
func TestLogsDatedWithStartLine(t *testing.T) {
	parts := e2eSet(22, 600<<10, 600<<10)
	srv := e2eServe(t, parts, testenv.ConnRate(256<<10))
	dest := t.TempDir()
	const sig = "?X-Amz-Signature=SECRET777"
	urls := e2eURLs(srv, parts)
	urls[0] += sig
	r := runHaul(t, []string{"HAUL_TEST_LOG_INTERVAL=200ms"}, append([]string{"fetch", "--chunk-size", "64K"}, append(urls, dest)...)...)
	wantCode(t, r, 0)
	lines := strings.Split(strings.TrimRight(r.stdout+r.stderr, "\n"), "\n")
	if len(lines) < 4 {
		t.Fatalf("too few log lines:\n%s", r.stdout)
	}
	for _, l := range lines {
		unstamp(t, l)
	}
	first := unstamp(t, lines[0])
	for _, want := range []string{"haul fetch", strings.TrimSuffix(urls[0], sig) + "?…", dest, "haul " + version} {
		if !strings.Contains(first, want) {
			t.Errorf("the first line does not name %q: %s", want, first)
		}
	}
	for _, bad := range []string{"SECRET777", "0 B/s", "ETA ?", "p/s"} {
		if strings.Contains(r.stdout+r.stderr, bad) {
			t.Errorf("the log shows %q:\n%s", bad, r.stdout)
		}
	}
	// The failure line is dated too.
	r = runHaul(t, nil, "fetch", "--progress", "log", srv.URL("no-such-part"), t.TempDir())
	wantCode(t, r, 1)
	for _, l := range strings.Split(strings.TrimRight(r.stdout+r.stderr, "\n"), "\n") {
		unstamp(t, l)
	}
}

// TestPlainTerminal is issue 16 acceptance 5: on a terminal with TERM=dumb
// (or NO_COLOR) haul writes plain lines, no escape code.
func TestPlainTerminal(t *testing.T) {
	for _, env := range [][]string{{"TERM=dumb"}, {"TERM=xterm", "NO_COLOR=1"}} {
		t.Run(strings.Join(env, ","), func(t *testing.T) {
			_, parts, urls, _ := slowSet(t, 2<<20, 1<<20, 512<<10)
			dest := t.TempDir()
			out, code := runOnPTY(t, append(env, "HAUL_TEST_LOG_INTERVAL=200ms"), "", "", append([]string{"fetch", "--chunk-size", "128K"}, append(urls, dest)...)...)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, out)
			}
			if strings.Contains(out, "\x1b") {
				t.Errorf("escape codes on a plain terminal:\n%q", out)
			}
			if !strings.Contains(out, "verified") {
				t.Errorf("no progress lines:\n%s", out)
			}
			e2eIdentical(t, dest, parts)
		})
	}
}

// TestBarsEndClean: on a real terminal, the bars use MiB/s, show the parts
// count, and no frame is left after the summary line.
func TestBarsEndClean(t *testing.T) {
	_, parts, urls, _ := slowSet(t, 3<<20, 1<<20, 512<<10)
	dest := t.TempDir()
	out, code := runOnPTY(t, []string{"TERM=xterm"}, "", "", append([]string{"fetch", "--chunk-size", "128K", "-j", "2"}, append(urls, dest)...)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{"/s", "parts ", " verified"} {
		if !strings.Contains(out, want) {
			t.Errorf("the bars do not show %q:\n%q", want, out)
		}
	}
	if strings.Contains(out, "p/s") {
		t.Errorf("the rate reads p/s:\n%q", out)
	}
	// After the summary line nothing is drawn.
	i := strings.LastIndex(out, "pulled ")
	if i < 0 {
		t.Fatalf("no summary line:\n%q", out)
	}
	if tail := out[i:]; strings.Count(strings.TrimRight(tail, "\r\n"), "\n") > 0 || strings.Contains(tail, "\x1b") {
		t.Errorf("something drawn after the summary: %q", tail)
	}
	e2eIdentical(t, dest, parts)
}

// TestStatusExitCodes is issue 16 acceptance 6: haul status exits 3 on a
// broken set (with --json too: schema 1, the counts right), 75 on an
// incomplete one, 0 when done.
func TestStatusExitCodes(t *testing.T) {
	parts := e2eSet(23, 300_000, 200_000, 100_000)
	sums := e2eSHA256SUMS(parts)
	// The first part's sum is wrong (another hex digit): it can never verify.
	if sums[0] == '0' {
		sums[0] = '1'
	} else {
		sums[0] = '0'
	}
	srv := e2eServe(t, append(parts, e2ePart{"SHA256SUMS", sums}))
	dest := t.TempDir()
	r := runHaul(t, nil, append([]string{"fetch", "--progress", "none", "--retries", "2", "--chunk-size", "64K"}, append(e2eURLs(srv, parts), dest)...)...)
	wantCode(t, r, 3)

	r = runHaul(t, nil, "status", dest)
	wantCode(t, r, 3)
	if !strings.Contains(r.stdout, "next: haul repair "+dest) {
		t.Errorf("status does not name the real DEST in its advice:\n%s", r.stdout)
	}
	r = runHaul(t, nil, "status", "--json", dest)
	wantCode(t, r, 3)
	var st struct {
		Schema *int           `json:"schema"`
		State  string         `json:"state"`
		Counts map[string]int `json:"counts"`
		Parts  []struct {
			Name, Status string
		} `json:"parts"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if st.Schema == nil || *st.Schema != 1 {
		t.Errorf("schema is not 1:\n%s", r.stdout)
	}
	if st.State != "broken" || st.Counts["broken"] != 1 || st.Counts["verified"] != 2 || st.Counts["total"] != 3 {
		t.Errorf("state %s, counts %v; want broken, 1 broken, 2 verified, 3 in total:\n%s", st.State, st.Counts, r.stdout)
	}
	if r.stderr != "" {
		t.Errorf("status printed to stderr: %s", r.stderr)
	}

	// Incomplete: a slow set cut short by --max-time.
	slow := e2eSet(24, 1<<20, 1<<20)
	urls := e2eURLs(e2eServe(t, slow, testenv.ConnRate(64<<10)), slow)
	dest2 := t.TempDir()
	r = runHaul(t, nil, append([]string{"fetch", "--progress", "none", "--max-time", "1s", "--chunk-size", "64K"}, append(urls, dest2)...)...)
	wantCode(t, r, 75)
	if msg := strings.TrimSpace(r.stderr); !strings.HasSuffix(msg, "run the same command again to continue") {
		t.Errorf("the deadline message does not end with what to do: %s", msg)
	}
	wantCode(t, runHaul(t, nil, "status", dest2), 75)
	wantCode(t, runHaul(t, nil, "status", "--json", dest2), 75)
	// verify on a set still downloading says to finish the fetch, not to
	// repair.
	if st, err := chunk.Load(dest2); err == nil && len(st.Parts) > 0 {
		r = runHaul(t, nil, "verify", dest2)
		wantCode(t, r, 75)
		if strings.Contains(r.stderr, "repair") || !strings.Contains(r.stderr, "fetch") {
			t.Errorf("verify on an unfinished set: %s", r.stderr)
		}
		// Nor does the journal call a part only pending or partial broken.
		events, err := chunk.ReadJournal(dest2)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.Event == chunk.EventPartBroken {
				t.Errorf("verify logged part_broken for %s, which is only unfinished", e.Part)
			}
		}
	}
}

// TestReportKilledRun: a run killed with -9 is reported as "ended":
// "killed", with the fetched-part counter and integer bytes right for the
// run that finished.
func TestReportKilledRun(t *testing.T) {
	_, parts, urls, _ := slowSet(t, 2<<20, 512<<10, 256<<10)
	dest := t.TempDir()
	args := append([]string{"fetch", "--progress", "none", "--chunk-size", "64K"}, append(urls, dest)...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := haulCmd(ctx, nil, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m, _ := filepath.Glob(filepath.Join(dest, "*.partial")); len(m) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	wantCode(t, runHaul(t, nil, args...), 0)
	e2eIdentical(t, dest, parts)

	r := runHaul(t, nil, "report", "--json", dest)
	wantCode(t, r, 0)
	var rep struct {
		Schema *int `json:"schema"`
		Runs   []struct {
			Ended        string          `json:"ended"`
			ExitCode     *int            `json:"exit_code"`
			Seconds      json.Number     `json:"seconds"`
			Bytes        json.Number     `json:"bytes"`
			Rate         json.Number     `json:"bytes_per_second"`
			PartsFetched int             `json:"parts_fetched"`
			Steps        json.RawMessage `json:"steps"`
		} `json:"runs"`
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.UseNumber()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("report --json: %v\n%s", err, r.stdout)
	}
	if rep.Schema == nil || *rep.Schema != 1 || len(rep.Runs) != 2 {
		t.Fatalf("want schema 1 and two runs:\n%s", r.stdout)
	}
	killed, done := rep.Runs[0], rep.Runs[1]
	if killed.Ended != "killed" || killed.ExitCode != nil {
		t.Errorf("the killed run: ended %q, exit code %v; want killed, null", killed.Ended, killed.ExitCode)
	}
	if done.Ended != "exit" || done.ExitCode == nil || *done.ExitCode != 0 {
		t.Errorf("the second run: ended %q; want exit 0", done.Ended)
	}
	if done.PartsFetched == 0 || done.PartsFetched > len(parts) {
		t.Errorf("parts_fetched %d for a run that fetched the rest of %d parts", done.PartsFetched, len(parts))
	}
	for _, run := range rep.Runs {
		if strings.ContainsAny(string(run.Bytes)+string(run.Rate), ".eE") {
			t.Errorf("bytes %s and bytes_per_second %s are not integers", run.Bytes, run.Rate)
		}
		if i := strings.IndexByte(string(run.Seconds), '.'); i >= 0 && len(run.Seconds)-i-1 > 3 {
			t.Errorf("seconds %s are not rounded to milliseconds", run.Seconds)
		}
	}
	if _, err := os.Stat(dest); err != nil {
		t.Fatal(err)
	}
}
