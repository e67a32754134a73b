package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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
	r := runHaul(t, nil, args...)
	if r.code != 3 {
		t.Fatalf("exit %d, want 3 (one file missing at the CDN)\n%s\n%s", r.code, r.stdout, r.stderr)
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
