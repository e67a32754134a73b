package main

// End-to-end tests of issue 2 (resumable chunked fetch): the haul binary
// against a real MinIO server and the fault-injecting HTTP server, each on
// 127.0.0.1. Every test asserts what an operator cares about: the parts are
// byte-identical to the source, the exit code, nothing wrong ever carries a
// part's final name, and the bytes pulled over the link.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/internal/testenv"
)

// e2eStatus is `haul status --json DEST`.
type e2eStatus struct {
	State      string          `json:"state"`
	BytesTotal int64           `json:"bytes_total"`
	BytesDone  int64           `json:"bytes_done"`
	ETASeconds *float64        `json:"eta_seconds"`
	Parts      []e2eStatusPart `json:"parts"`
}

type e2eStatusPart struct {
	Name       string   `json:"name"`
	Size       int64    `json:"size"`
	BytesDone  int64    `json:"bytes_done"`
	Status     string   `json:"status"`
	VerifiedBy []string `json:"verified_by"`
}

func e2eReadStatus(t *testing.T, dest string) e2eStatus {
	t.Helper()
	r := runHaul(t, nil, "status", "--json", dest)
	var st e2eStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	// The exit code follows the state (README: 0 done, 3 broken, 75
	// incomplete).
	wantCode(t, r, map[string]int{chunk.SetDone: 0, chunk.SetBroken: 3, chunk.SetIncomplete: 75}[st.State])
	// Every field SPEC names is there.
	var raw map[string]any
	json.Unmarshal([]byte(r.stdout), &raw)
	for _, k := range []string{"schema", "state", "bytes_total", "bytes_done", "eta_seconds", "parts", "counts"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("status --json lacks %q: %s", k, r.stdout)
		}
	}
	for _, p := range raw["parts"].([]any) {
		for _, k := range []string{"name", "size", "bytes_done", "status", "verified_by"} {
			if _, ok := p.(map[string]any)[k]; !ok {
				t.Fatalf("status --json part lacks %q: %s", k, r.stdout)
			}
		}
	}
	return st
}

// e2eWantDone checks that status says the set is done, every part
// verified by a label containing want.
func e2eWantDone(t *testing.T, dest string, parts []e2ePart, want string) {
	t.Helper()
	st := e2eReadStatus(t, dest)
	if st.State != chunk.SetDone || st.BytesTotal != e2eTotal(parts) || st.BytesDone != st.BytesTotal || len(st.Parts) != len(parts) {
		t.Fatalf("status: state %s, %d/%d bytes, %d parts; want done, %d bytes, %d parts", st.State, st.BytesDone, st.BytesTotal, len(st.Parts), e2eTotal(parts), len(parts))
	}
	for _, p := range st.Parts {
		if p.Status != chunk.Verified || !slices.ContainsFunc(p.VerifiedBy, func(l string) bool { return strings.Contains(l, want) }) {
			t.Fatalf("part %s: status %s verified_by %v, want verified by %s", p.Name, p.Status, p.VerifiedBy, want)
		}
	}
}

// e2eMinIOSet is six parts, two of them above the 5 MiB multipart minimum
// so that they can be multipart uploads, one empty, one exactly one piece.
func e2eMinIOSet() []e2ePart {
	return e2eSet(1, 5<<20+123_457, 700_001, 6<<20+1, 0, 333_333, 64<<10)
}

// e2ePutMinIO uploads the parts under prefix: the two big ones as multipart
// uploads (ETag "…-N"), the rest in one PUT each (ETag = MD5).
func e2ePutMinIO(t *testing.T, m *testenv.MinIO, bucket, prefix string, parts []e2ePart) {
	t.Helper()
	for _, p := range parts {
		var opts []testenv.PutOption
		if len(p.data) > 5<<20 {
			opts = append(opts, testenv.PutParts(5<<20))
		}
		info := m.Put(t, bucket, prefix+p.name, p.data, opts...)
		if len(opts) > 0 && !strings.Contains(info.ETag, "-") {
			t.Fatalf("%s: ETag %s is not a multipart ETag", p.name, info.ETag)
		}
	}
}

// TestFetchS3 is issue 2 acceptance 1: a set of six parts in MinIO, two of
// them multipart uploads, fetched by directory and by first-part name.
func TestFetchS3(t *testing.T) {
	m := testenv.SharedMinIO(t)
	bucket := m.NewBucket(t)
	parts := e2eMinIOSet()
	e2ePutMinIO(t, m, bucket, "2026-11-20/", parts)
	// Not a part of the set: the directory form takes it, the name-prefix
	// form must not.
	notes := e2ePart{"notes.txt", []byte("restore with haul\n")}
	m.Put(t, bucket, "2026-11-20/"+notes.name, notes.data)

	t.Run("directory", func(t *testing.T) {
		dest := t.TempDir()
		r := runHaul(t, m.Env(), "fetch", "s3://"+bucket+"/2026-11-20/", dest, "--endpoint", m.Endpoint, "-j", "4", "--chunk-size", "1M", "--progress", "log")
		wantCode(t, r, 0)
		all := append(slices.Clone(parts), notes)
		e2eIdentical(t, dest, all)
		// No sum file: the ETags prove every part, multipart ones from the
		// real upload part sizes.
		e2eWantDone(t, dest, all, "md5:etag")
		// Running again pulls nothing and says all is done.
		r = runHaul(t, m.Env(), "fetch", "s3://"+bucket+"/2026-11-20/", dest, "--endpoint", m.Endpoint, "--progress", "log")
		wantCode(t, r, 0)
		if !strings.Contains(r.stdout, "0 B pulled") {
			t.Errorf("a second run should pull nothing; it said:\n%s", r.stdout)
		}
	})
	t.Run("name-prefix", func(t *testing.T) {
		dest := t.TempDir()
		// The endpoint from AWS_ENDPOINT_URL alone, as an operator's env.
		r := runHaul(t, m.Env(), "fetch", "s3://"+bucket+"/2026-11-20/backup.bak", dest, "-j", "4", "--chunk-size", "512K")
		wantCode(t, r, 0)
		e2eIdentical(t, dest, parts)
		if _, err := os.Stat(filepath.Join(dest, notes.name)); err == nil {
			t.Fatalf("%s is not part of the set backup.bak… but was fetched", notes.name)
		}
		e2eWantDone(t, dest, parts, "md5:etag")
	})
}

// TestFetchHTTP is issue 2 acceptance 2: the same set by URLs, as
// arguments and as a --list file (one of them presigned-looking: its query
// string is a secret and must not be printed or logged).
func TestFetchHTTP(t *testing.T) {
	parts := e2eMinIOSet()
	srv := e2eServe(t, parts)
	urls := e2eURLs(srv, parts)
	const secret = "SECRET123"
	urls[2] += "?X-Amz-Signature=" + secret + "&X-Amz-Expires=3600"

	t.Run("arguments", func(t *testing.T) {
		dest := t.TempDir()
		args := append([]string{"fetch", "-j", "4", "--chunk-size", "256K", "--progress", "log"}, urls...)
		r := runHaul(t, nil, append(args, dest)...)
		wantCode(t, r, 0)
		e2eIdentical(t, dest, parts)
		e2eNoSecret(t, dest, r, secret)
	})
	t.Run("list", func(t *testing.T) {
		dest := t.TempDir()
		list := filepath.Join(t.TempDir(), "urls.txt")
		body := "# the parts of backup.bak\n\n" + strings.Join(urls, "\n") + "\n"
		if err := os.WriteFile(list, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runHaul(t, nil, "fetch", "--list", list, dest, "-j", "4", "--chunk-size", "64K", "--progress", "log")
		wantCode(t, r, 0)
		e2eIdentical(t, dest, parts)
		e2eNoSecret(t, dest, r, secret)
		// No reference at all: the parts are complete but unverified,
		// never shown as verified.
		for _, p := range e2eReadStatus(t, dest).Parts {
			if p.Status != chunk.Unverified || len(p.VerifiedBy) != 0 {
				t.Errorf("part %s: %s %v with no reference; want unverified", p.Name, p.Status, p.VerifiedBy)
			}
		}
	})
}

// e2eNoSecret fails if secret shows in the output or the journal.
func e2eNoSecret(t *testing.T, dest string, r result, secrets ...string) {
	t.Helper()
	journal, _ := os.ReadFile(filepath.Join(dest, chunk.StateDir, "journal.jsonl"))
	for _, s := range secrets {
		for what, text := range map[string]string{"stdout": r.stdout, "stderr": r.stderr, "the journal": string(journal)} {
			if strings.Contains(text, s) {
				t.Fatalf("the secret %q shows in %s:\n%s", s, what, text)
			}
		}
	}
}

// TestFetchKill9 is issue 2 acceptance 3: haul is killed with SIGKILL at
// random moments during one fetch over a slow link and restarted each
// time. The parts end identical, and the link carried at most the set plus,
// per kill, one piece per connection: only pieces in flight are lost.
func TestFetchKill9(t *testing.T) {
	parts := e2eSet(3, 1_000_000, 800_001, 900_000, 600_000, 700_000, 620_123)
	const (
		conns = 4
		piece = 64 << 10
	)
	// 4 × 256 KiB/s: the set takes about five seconds undisturbed, and a
	// connection moves four pieces a second, so pieces that are complete
	// but not yet durable at a kill would show in the bytes pulled.
	srv := e2eServe(t, parts, testenv.ConnRate(256<<10))
	list := filepath.Join(t.TempDir(), "urls.txt")
	if err := os.WriteFile(list, []byte(strings.Join(e2eURLs(srv, parts), "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	args := []string{"fetch", "--list", list, dest, "-j", fmt.Sprint(conns), "--chunk-size", "64K", "--progress", "none"}

	// A fixed seed: the same moments on every run.
	kills := killRepeatedly(t, nil, args, rand.New(rand.NewPCG(20261120, 3)), 150*time.Millisecond, 550*time.Millisecond, 6, false, func() {
		// Whatever the moment, no wrong file carries a final name.
		e2eNoWrongFinal(t, dest, parts)
	})
	if kills < 5 {
		t.Fatalf("only %d kills landed", kills)
	}
	r := runHaul(t, nil, args...)
	wantCode(t, r, 0)
	e2eIdentical(t, dest, parts)
	if !srv.WaitIdle(10 * time.Second) {
		t.Fatal("the server is still busy after the last run")
	}
	// The bound: the set once, plus what can be in flight at a kill —
	// one piece on each connection. HEAD requests (stat, reference
	// probes) carry no body and 404 pages are not counted.
	total, sent := e2eTotal(parts), srv.BytesSent()
	bound := total + int64(kills*conns*piece)
	t.Logf("%d kills: %d bytes pulled for a %d-byte set (bound %d, overhead %.1f%%)", kills, sent, total, bound, 100*float64(sent-total)/float64(total))
	if sent > bound {
		t.Fatalf("pulled %d bytes; at most %d allowed (set %d + %d kills × %d connections × %d)", sent, bound, total, kills, conns, piece)
	}
}

// killRepeatedly starts `haul args…` and kills it with SIGKILL after a
// delay drawn from rng in [minDelay, minDelay+spread), until want kills
// have landed (at most twice as many tries), calling after() after each.
// Unless mayEnd, it fails the test if haul ends before a kill. It returns
// the kills.
func killRepeatedly(t *testing.T, env, args []string, rng *rand.Rand, minDelay, spread time.Duration, want int, mayEnd bool, after func()) int {
	t.Helper()
	kills := 0
	for try := 0; try < 2*want && kills < want; try++ {
		cmd := haulCmd(context.Background(), env, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		delay := minDelay + time.Duration(rng.Int64N(int64(spread)))
		select {
		case err := <-exited:
			if !mayEnd {
				t.Fatalf("haul ended before the kill after %s (%v): make the link slower", delay, err)
			}
			after()
			continue
		case <-time.After(delay):
		}
		cmd.Process.Signal(syscall.SIGKILL)
		err := <-exited
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() {
			kills++
		}
		after()
	}
	return kills
}

// TestFetchFaults is issue 2 acceptance 4: each injected fault, now and
// then and on every answer. An occasional fault must leave an identical
// result; a fault on every answer a clear error (exit 3 or 75) — and never
// a wrong file under a final name.
func TestFetchFaults(t *testing.T) {
	parts := e2eSet(4, 300_000, 200_000, 250_001)
	// Now and then: every n-th answer, at most 4 in all, so that no piece
	// can meet the fault on each of its 6 attempts (--retries 6) however
	// the four connections interleave.
	every := func(n int) testenv.When { return testenv.When{Every: n, Max: 4} }
	cases := []struct {
		name  string
		fault testenv.FaultOption
		// always is the fault on every answer; wantAlways the exit codes
		// allowed then (0 when the fault can be worked around).
		always     testenv.FaultOption
		wantAlways []int
		extra      []string
	}{
		{"reset", testenv.ResetAfter(10_000, every(3)), testenv.ResetAfter(10_000, testenv.When{}), []int{75}, nil},
		{"stall", testenv.StallAfter(5_000, 30*time.Second, every(4)), testenv.StallAfter(5_000, 30*time.Second, testenv.When{}), []int{75}, []string{"--timeout", "1s"}},
		{"200-instead-of-206", testenv.IgnoreRange(every(2)), testenv.IgnoreRange(testenv.When{}), []int{0}, nil},
		{"wrong-content-range", testenv.ShiftContentRange(512, every(3)), testenv.ShiftContentRange(512, testenv.When{}), []int{3}, nil},
		{"short-body", testenv.ShortBody(1_000, every(3)), testenv.ShortBody(1_000, testenv.When{}), []int{3, 75}, nil},
		{"gzip", testenv.GzipBody(every(3)), testenv.GzipBody(testenv.When{}), []int{3}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := e2eServe(t, parts, c.fault)
			args := []string{"fetch", "-j", "4", "--chunk-size", "64K", "--progress", "log"}
			args = append(args, c.extra...)
			dest := t.TempDir()
			r := runHaul(t, nil, append(append(slices.Clone(args), "--retries", "6"), append(e2eURLs(srv, parts), dest)...)...)
			wantCode(t, r, 0)
			e2eIdentical(t, dest, parts)
			if srv.Faults() == (testenv.FaultCounts{}) {
				t.Fatal("the fault never happened")
			}

			srv.WaitIdle(5e9)
			t.Logf("the fault now and then: %d bytes pulled for a %d-byte set", srv.BytesSent(), e2eTotal(parts))
			srv.ClearFaults()
			srv.ZeroCounters()
			srv.Set(c.always)
			dest = t.TempDir()
			r = runHaul(t, nil, append(append(slices.Clone(args), "--retries", "4"), append(e2eURLs(srv, parts), dest)...)...)
			if !slices.Contains(c.wantAlways, r.code) {
				t.Fatalf("with the fault on every answer: exit %d, want one of %v\nstdout:\n%s\nstderr:\n%s", r.code, c.wantAlways, r.stdout, r.stderr)
			}
			e2eNoWrongFinal(t, dest, parts)
			srv.WaitIdle(5e9)
			t.Logf("the fault on every answer: exit %d, %d bytes pulled: %s", r.code, srv.BytesSent(), strings.TrimSpace(r.stderr))
			if r.code != 0 {
				e2eOneLine(t, r)
				return
			}
			e2eIdentical(t, dest, parts)
		})
	}
}

// e2eOneLine checks that a failed run says why in one line on stderr,
// "haul CMD: …", with no stack trace; a usage error may add the usage line.
func e2eOneLine(t *testing.T, r result) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	for i, l := range lines {
		lines[i] = unstamp(t, l)
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "haul") || len(lines[0]) < 20 {
		t.Fatalf("exit %d: want one clear line on stderr, got:\n%s", r.code, r.stderr)
	}
	for _, l := range lines[1:] {
		if r.code != 2 || !strings.HasPrefix(l, "usage: haul ") {
			t.Fatalf("exit %d: more than one line on stderr:\n%s", r.code, r.stderr)
		}
	}
	for _, bad := range []string{"goroutine ", "panic", ".go:"} {
		if strings.Contains(r.stdout+r.stderr, bad) {
			t.Fatalf("the output shows %q:\nstdout:\n%s\nstderr:\n%s", bad, r.stdout, r.stderr)
		}
	}
}

// TestFetchReplacedObject is issue 2 acceptance 5: an object replaced
// between two runs (same name, new content; over S3 also a new size, over
// HTTP while a run had half of it) ends as the new object, and haul says
// so.
func TestFetchReplacedObject(t *testing.T) {
	t.Run("s3", func(t *testing.T) {
		m := testenv.SharedMinIO(t)
		bucket := m.NewBucket(t)
		parts := e2eSet(5, 400_000, 300_000, 200_000)
		e2ePutMinIO(t, m, bucket, "b/", parts)
		dest := t.TempDir()
		args := []string{"fetch", "s3://" + bucket + "/b/", dest, "--endpoint", m.Endpoint, "--chunk-size", "64K", "--progress", "log"}
		wantCode(t, runHaul(t, m.Env(), args...), 0)
		e2eIdentical(t, dest, parts)

		parts[1].data = e2eBytes(99, 250_000) // smaller, other bytes
		m.Put(t, bucket, "b/"+parts[1].name, parts[1].data)
		r := runHaul(t, m.Env(), args...)
		wantCode(t, r, 0)
		e2eIdentical(t, dest, parts)
		if !strings.Contains(r.stdout, parts[1].name+" changed") {
			t.Errorf("the run does not say that %s changed:\n%s", parts[1].name, r.stdout)
		}
	})
	t.Run("http-half-fetched", func(t *testing.T) {
		parts := e2eSet(6, 600_000, 600_000)
		srv := e2eServe(t, parts, testenv.ConnRate(96<<10))
		dest := t.TempDir()
		args := append([]string{"fetch", "--chunk-size", "64K", "-j", "2", "--progress", "log"}, append(e2eURLs(srv, parts), dest)...)
		// The first run stops at its deadline with part of each part on disk.
		r := runHaul(t, nil, append(slices.Clone(args), "--max-time", "1500ms")...)
		wantCode(t, r, 75)
		st, err := chunk.Load(dest)
		if err != nil || st.Find(parts[0].name) == nil || len(st.Find(parts[0].name).Done) == 0 {
			t.Fatalf("the first run left no piece of %s on disk (%v)", parts[0].name, err)
		}
		// The same size and a new version: only the bytes tell them apart.
		parts[0].data = e2eBytes(77, len(parts[0].data))
		if err := os.WriteFile(filepath.Join(srv.Root(), parts[0].name), parts[0].data, 0o644); err != nil {
			t.Fatal(err)
		}
		srv.SetConnRate(0)
		r = runHaul(t, nil, args...)
		wantCode(t, r, 0)
		e2eIdentical(t, dest, parts) // no old byte mixed in
		if !strings.Contains(r.stdout, parts[0].name+" changed") {
			t.Errorf("the run does not say that %s changed:\n%s", parts[0].name, r.stdout)
		}
	})
}

// TestFetchBadInput is issue 2 acceptance 6: each bad input ends with exit
// 1 or 2 and one clear line naming the fix, no stack trace, and no secret
// in the output or the journal.
func TestFetchBadInput(t *testing.T) {
	m := testenv.SharedMinIO(t)
	bucket := m.NewBucket(t)
	m.Put(t, bucket, "set/backup.bak", []byte("x"))
	srv := e2eServe(t, e2eSet(7, 1000))
	const presigned = "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=SECRET123"
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wrongKey := append(m.Env(), "AWS_SECRET_ACCESS_KEY=WRONGSECRET456")
	cases := []struct {
		name string
		env  []string
		args []string
		code int
		say  string // the message names the cause
	}{
		{"unknown-bucket", m.Env(), []string{"s3://no-such-bucket-haul/set/"}, 1, "no-such-bucket-haul"},
		{"wrong-credentials", wrongKey, []string{"s3://" + bucket + "/set/"}, 1, "AWS_SECRET_ACCESS_KEY"},
		{"404-url", nil, []string{srv.URL("no-such-part.bak") + presigned}, 1, "404"},
		{"unwritable-dest", nil, []string{srv.URL("backup.bak")}, 1, "DEST"},
		{"malformed-source-scheme", nil, []string{"ftp://host/dir/"}, 1, "ftp"},
		{"malformed-source-s3", m.Env(), []string{"s3:///set/"}, 1, "bucket"},
		{"malformed-source-url", nil, []string{"http://"}, 1, "URL"},
		{"unknown-flag", nil, []string{srv.URL("backup.bak"), "--frobnicate"}, 2, "--frobnicate"},
		{"no-dest", nil, nil, 2, "argument"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dest := t.TempDir()
			if c.name == "unwritable-dest" {
				dest = filepath.Join(file, "dest") // under a regular file: not writable even for root
			}
			args := append([]string{"fetch"}, c.args...)
			if c.name != "no-dest" {
				args = append(args, dest)
			}
			r := runHaul(t, c.env, append(args, "--progress", "log")...)
			wantCode(t, r, c.code)
			e2eOneLine(t, r)
			t.Logf("exit %d: %s", r.code, strings.TrimSpace(r.stderr))
			if !strings.Contains(r.stderr, c.say) {
				t.Errorf("the message does not name %q: %s", c.say, r.stderr)
			}
			e2eNoSecret(t, dest, r, m.SecretKey, "WRONGSECRET456", "SECRET123", "X-Amz-Signature")
		})
	}
}

// TestFetchServerDown: a server that answers 5xx when the run starts is
// the server being down, not bad input: haul tries again, and when it
// stays down exits 75 — run again later — with its reason on one line. A
// server that comes back in time is used. An address where nothing
// listens, never reached before, is bad input (1).
func TestFetchServerDown(t *testing.T) {
	parts := e2eSet(10, 200_000, 100_000)
	args := []string{"fetch", "--chunk-size", "64K", "--retries", "4", "--progress", "log"}
	t.Run("503-then-up", func(t *testing.T) {
		srv := e2eServe(t, parts, testenv.FailWith(503, testenv.When{Max: 3}))
		dest := t.TempDir()
		r := runHaul(t, nil, append(append(slices.Clone(args), e2eURLs(srv, parts)...), dest)...)
		wantCode(t, r, 0)
		e2eIdentical(t, dest, parts)
	})
	t.Run("503-always", func(t *testing.T) {
		srv := e2eServe(t, parts, testenv.FailWith(503, testenv.When{}))
		dest := t.TempDir()
		r := runHaul(t, nil, append(append(slices.Clone(args), e2eURLs(srv, parts)...), dest)...)
		wantCode(t, r, 75)
		e2eOneLine(t, r)
		if !strings.Contains(r.stderr, "503") {
			t.Errorf("the message does not say what the server answered: %s", r.stderr)
		}
	})
	// Refused on first contact: a wrong address (exit 1, naming the
	// fix), not a network down; TestReachedThenDown has the 75 once the
	// source was reached.
	t.Run("refused", func(t *testing.T) {
		port := testenv.FreePort(t) // nothing listens there
		dest := t.TempDir()
		r := runHaul(t, nil, append(slices.Clone(args), fmt.Sprintf("http://127.0.0.1:%d/backup.bak", port), dest)...)
		wantCode(t, r, 1)
		e2eOneLine(t, r)
		if !strings.Contains(r.stderr, "connection refused") || !strings.Contains(r.stderr, "check the host and port") {
			t.Errorf("the message does not say what failed and what to check: %s", r.stderr)
		}
	})
	t.Run("s3-endpoint-refused", func(t *testing.T) {
		m := testenv.SharedMinIO(t)
		port := testenv.FreePort(t)
		dest := t.TempDir()
		r := runHaul(t, m.Env(), append(slices.Clone(args), "s3://bucket/set/", dest, "--endpoint", fmt.Sprintf("http://127.0.0.1:%d", port))...)
		wantCode(t, r, 1)
		e2eOneLine(t, r)
		e2eNoSecret(t, dest, r, m.SecretKey)
	})
}

// TestFetchIgnoredRangeCost: a server that ignores Range (200 and the
// whole object) on a slow link. Skipping to each piece's offset in the
// whole object would pull each part about pieces/2 times; haul fetches
// such a part in one stream, so the link carries the set about once: at
// most one piece more per connection per part, for the answers in flight
// when the first 200 came.
func TestFetchIgnoredRangeCost(t *testing.T) {
	parts := e2eSet(16, 600_000, 500_000, 400_001)
	const (
		conns = 4
		piece = 64 << 10
	)
	srv := e2eServe(t, parts, testenv.IgnoreRange(testenv.When{}), testenv.ConnRate(1<<20))
	dest := t.TempDir()
	r := runHaul(t, nil, append(append([]string{"fetch", "-j", fmt.Sprint(conns), "--chunk-size", "64K", "--progress", "log"}, e2eURLs(srv, parts)...), dest)...)
	wantCode(t, r, 0)
	e2eIdentical(t, dest, parts)
	if !strings.Contains(r.stdout, "ignores Range") {
		t.Errorf("haul does not say that the server ignores Range:\n%s", r.stdout)
	}
	srv.WaitIdle(5e9)
	total, sent := e2eTotal(parts), srv.BytesSent()
	bound := total + int64(len(parts)*conns*piece)
	t.Logf("%d bytes pulled for a %d-byte set from a server that ignores Range (bound %d)", sent, total, bound)
	if sent > bound {
		t.Fatalf("pulled %d bytes; at most %d allowed", sent, bound)
	}
}

// TestLocalFetchKill9: from a local directory the bytes go from file to
// file inside the kernel and parts of 32 MiB or more are proven while they
// come. Killed with SIGKILL at random moments and run again each time,
// the fetch never leaves a wrong byte under a final name and ends with
// every part identical and proven.
func TestLocalFetchKill9(t *testing.T) {
	parts := e2eSet(12, 40<<20, 96<<20+12345, 64<<20)
	src, dest := t.TempDir(), t.TempDir()
	e2eWriteDir(t, src, parts)
	var sums strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&sums, "%x  %s\n", sha256.Sum256(p.data), p.name)
	}
	if err := os.WriteFile(filepath.Join(src, "SHA256SUMS"), []byte(sums.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"fetch", src + "/", dest, "--chunk-size", "256K", "--progress", "none"}
	// The fetch may end before a kill: each run resumes with less left.
	kills := killRepeatedly(t, nil, args, rand.New(rand.NewPCG(20261129, 12)), 20*time.Millisecond, 150*time.Millisecond, 6, true, func() {
		e2eNoWrongFinal(t, dest, parts)
	})
	if kills < 2 {
		t.Fatalf("only %d kills landed before the fetch ended", kills)
	}
	r := runHaul(t, nil, args...)
	wantCode(t, r, 0)
	e2eIdentical(t, dest, parts)
	e2eWantDone(t, dest, parts, "sha256:SHA256SUMS")
	t.Logf("%d kills", kills)
}
