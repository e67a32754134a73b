package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/internal/gen"
	"github.com/haul-dev/haul/internal/testenv"
)

// cloudSite is a Bitrix backup whose site lists 200 cloud files, served
// with the files at a slow CDN host that resets connections.
type cloudSite struct {
	urls  []string
	files []gen.CloudFile
	cdn   *testenv.FaultServer
}

func newCloudSite(t *testing.T, cdnOpts ...testenv.FaultOption) *cloudSite {
	t.Helper()
	tree := filepath.Join(t.TempDir(), "site")
	if err := os.MkdirAll(filepath.Join(tree, "upload", "iblock"), 0o755); err != nil {
		t.Fatal(err)
	}
	serve := t.TempDir()
	files, err := gen.BitrixCloudList(tree, serve, 200, 11)
	if err != nil {
		t.Fatal(err)
	}
	vols, err := gen.BitrixSet(tree, t.TempDir(), "20261120_030000_full_cloud", 256<<10, "")
	if err != nil {
		t.Fatal(err)
	}
	parts := e2eReadDir(t, vols)
	c := &cloudSite{files: files, urls: e2eURLs(e2eServe(t, parts), parts)}
	c.cdn = testenv.NewFaultServer(serve, cdnOpts...)
	t.Cleanup(c.cdn.Close)
	return c
}

// check: every listed file not skipped nor missing is in DIR/upload with
// the CDN's bytes; nothing of haul's is in DIR.
func (c *cloudSite) check(t *testing.T, dir string, missing string) {
	t.Helper()
	for _, f := range c.files {
		p := filepath.Join(dir, "upload", f.Save)
		got, err := os.ReadFile(p)
		switch {
		case f.Skip || f.Save == missing:
			if err == nil {
				t.Errorf("%s was written", f.Save)
			}
		case err != nil:
			t.Errorf("%s: %v", f.Save, err)
		default:
			want, _ := os.ReadFile(filepath.Join(c.cdn.Root(), f.Path))
			if !bytes.Equal(got, want) {
				t.Errorf("%s: %d bytes, not the %d served", f.Save, len(got), len(want))
			}
		}
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && (strings.Contains(d.Name(), ".haul") || strings.HasSuffix(d.Name(), ".partial")) {
			t.Errorf("%s: haul's own file in the site", p)
		}
		return nil
	})
}

func TestCloudFiles(t *testing.T) {
	c := newCloudSite(t, testenv.ConnRate(2<<20), testenv.ResetAfter(30_000, testenv.When{Prob: 0.1}))
	var gone gen.CloudFile
	for _, f := range c.files {
		if !f.Skip && f.Size > 0 {
			gone = f
		}
	}
	body, _ := os.ReadFile(filepath.Join(c.cdn.Root(), gone.Path))
	if err := os.Remove(filepath.Join(c.cdn.Root(), gone.Path)); err != nil {
		t.Fatal(err)
	}
	dest, dir := filepath.Join(t.TempDir(), "dest"), filepath.Join(t.TempDir(), "www")
	args := append(append([]string{"run"}, c.urls...), dest, "--into", dir, "--bitrix-cdn", c.cdn.URL(""), "-j", "4", "--progress", "log")
	r := runHaul(t, []string{"HAUL_TEST_LOG_INTERVAL=200ms"}, args...)
	if r.code != 3 {
		t.Fatalf("exit %d, want 3 (one file missing at the CDN)\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Dated progress lines of the step, then its summary.
	progress := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\S+ cloud: files \d+/(\d+), [\d.]+ [KMG]?i?B / [\d.]+ [KMG]?i?B \([\d.]+%\), .*, \d+ missing$`)
	if m := progress.FindStringSubmatch(r.stdout); m == nil || m[1] == "0" {
		t.Errorf("no cloud progress line naming files and bytes:\n%s", r.stdout)
	}
	if !regexp.MustCompile(`cloud: 200 files listed: \d+ fetched \(.*\), 0 already there, \d+ skipped \(caches\), 1 missing; pulled .* in .*/s\)`).MatchString(r.stdout) {
		t.Errorf("no summary of the step:\n%s", r.stdout)
	}
	log := filepath.Join(dir, "bitrix", "restore_cloud_404.php")
	if !strings.Contains(r.stderr, "1 files of the Bitrix cloud list are missing") || !strings.Contains(r.stderr, log) {
		t.Errorf("the message does not say how many are missing and where they are listed:\n%s", r.stderr)
	}
	if b, err := os.ReadFile(log); err != nil || !strings.Contains(string(b), gone.Path) {
		t.Errorf("%s does not list %s: %v\n%s", log, gone.Path, err, b)
	}
	if c.cdn.Faults().Resets == 0 {
		t.Error("no connection was reset: the test tests nothing")
	}
	c.check(t, dir, gone.Save)
	st := cloudStatus(t, dest, 3)
	if st.Cloud.State != chunk.CloudMissing || st.Cloud.Missing != 1 || st.Cloud.MissLog != log || st.Cloud.FilesDone != st.Cloud.Files-1 {
		t.Errorf("status --json after a miss: %+v", st.Cloud)
	}
	if r := runHaul(t, nil, "status", dest); r.code != 3 || !strings.Contains(r.stdout, "cloud files: missing") ||
		!strings.Contains(r.stdout, "1 missing (listed in "+log+")") || strings.Contains(r.stdout, "haul repair") {
		t.Errorf("status: exit %d\n%s", r.code, r.stdout)
	}

	// The file is back at the CDN: the next run pulls it alone, exit 0.
	if err := os.WriteFile(filepath.Join(c.cdn.Root(), gone.Path), body, 0o644); err != nil {
		t.Fatal(err)
	}
	c.cdn.ClearFaults()
	c.cdn.ZeroCounters()
	if r := runHaul(t, nil, args...); r.code != 0 {
		t.Fatalf("rerun: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := c.cdn.BytesSent(); got != int64(len(body)) {
		t.Errorf("the rerun pulled %d bytes from the CDN, want the missing file's %d", got, len(body))
	}
	c.check(t, dir, "")
	for _, name := range []string{"bitrix/restore_cloud.txt", "bitrix/restore_cloud_404.php"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s is still in the site", name)
		}
	}
	if st := cloudStatus(t, dest, 0); st.Cloud.State != chunk.CloudDone || st.Cloud.Missing != 0 || st.Cloud.FilesDone != st.Cloud.Files || st.Cloud.MissLog != "" {
		t.Errorf("status --json when every file is in: %+v", st.Cloud)
	}

	// The report lists the step of each run by name, with bytes and counts.
	rep := runHaul(t, nil, "report", "--json", dest)
	wantCode(t, rep, 0)
	var runs struct {
		Runs []struct {
			Cloud *struct {
				Files *chunk.FileCounts `json:"files"`
				Bytes int64             `json:"bytes"`
			} `json:"cloud"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(rep.stdout), &runs); err != nil || len(runs.Runs) != 2 {
		t.Fatalf("report --json: %v\n%s", err, rep.stdout)
	}
	one, two := runs.Runs[0].Cloud, runs.Runs[1].Cloud
	if one == nil || one.Files == nil || one.Files.Listed != 200 || one.Files.Missing != 1 || one.Files.Fetched == 0 || one.Bytes == 0 {
		t.Errorf("report of the first run: %+v", one)
	}
	if two == nil || two.Files == nil || two.Files.Fetched != 1 || two.Files.Missing != 0 || two.Bytes != int64(len(body)) {
		t.Errorf("report of the rerun: %+v", two)
	}
	text := runHaul(t, nil, "report", dest)
	if !regexp.MustCompile(`cloud +\S+ +\S+ \S+ at .*; 200 files listed: 1 fetched, \d+ already there, \d+ skipped, 0 missing from ` + regexp.QuoteMeta(filepath.Join(dir, "bitrix", "restore_cloud.txt"))).MatchString(text.stdout) {
		t.Errorf("the report does not list the cloud step with its bytes and counts:\n%s", text.stdout)
	}
}

type cloudStatusJSON struct {
	State string             `json:"state"`
	Cloud *chunk.CloudStatus `json:"cloud"`
}

func cloudStatus(t *testing.T, dest string, code int) cloudStatusJSON {
	t.Helper()
	r := runHaul(t, nil, "status", "--json", dest)
	wantCode(t, r, code)
	var st cloudStatusJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Cloud == nil {
		t.Fatalf("status --json has no cloud: %v\n%s", err, r.stdout)
	}
	return st
}

func TestCloudKill9(t *testing.T) {
	c := newCloudSite(t, testenv.ConnRate(256<<10))
	var total int64
	for _, f := range c.files {
		if !f.Skip {
			total += f.Size
		}
	}
	dest, dir := filepath.Join(t.TempDir(), "dest"), filepath.Join(t.TempDir(), "www")
	args := append(append([]string{"run"}, c.urls...), dest, "--into", dir, "--bitrix-cdn", c.cdn.URL(""), "-j", "4")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := haulCmd(ctx, nil, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; c.cdn.BytesSent() < total/3 && i < 3000; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	first := c.cdn.BytesSent()
	if first >= total {
		t.Fatalf("the first run pulled %d of %d bytes before the kill: nothing left to resume", first, total)
	}
	c.cdn.ClearFaults()
	c.cdn.ZeroCounters()
	if r := runHaul(t, nil, args...); r.code != 0 {
		t.Fatalf("rerun: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	c.check(t, dir, "")
	// Only what is missing: at most one piece per connection (a file
	// here) was in flight at the kill.
	var largest int64
	for _, f := range c.files {
		largest = max(largest, f.Size)
	}
	if second := c.cdn.BytesSent(); first+second > total+4*largest {
		t.Errorf("pulled %d before the kill and %d after, for %d bytes listed: the rerun pulled again what was on disk", first, second, total)
	}
}
