package bitrixcloud

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haul-dev/haul/fetch"
	"github.com/haul-dev/haul/internal/gen"
	"github.com/haul-dev/haul/internal/retry"
	"github.com/haul-dev/haul/internal/testenv"
)

// site is a restored site with a generated cloud list, and the CDN host
// that serves the listed files.
type site struct {
	dir, work string
	files     []gen.CloudFile
	srv       *testenv.FaultServer
}

func newSite(t *testing.T, n int, opts ...testenv.FaultOption) *site {
	t.Helper()
	s := &site{dir: filepath.Join(t.TempDir(), "www"), work: filepath.Join(t.TempDir(), "dest", ".haul", "cloud")}
	serve := t.TempDir()
	var err error
	if s.files, err = gen.BitrixCloudList(s.dir, serve, n, 7); err != nil {
		t.Fatal(err)
	}
	s.srv = testenv.NewFaultServer(serve, opts...)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *site) options(hosts ...string) Options {
	if len(hosts) == 0 {
		hosts = []string{s.srv.URL("")}
	}
	return Options{Root: s.dir, Work: s.work, Hosts: hosts,
		Fetch: fetch.Options{Connections: 4, Retries: 4, Timeout: 5 * time.Second, Backoff: retry.FastBackoff}}
}

// check says every listed file that is not skipped nor in missing is in
// upload/ with the served bytes, and the site holds nothing else of the
// run's.
func (s *site) check(t *testing.T, missing map[string]bool) {
	t.Helper()
	want := map[string]bool{}
	for _, f := range s.files {
		if f.Skip || missing[f.Save] {
			continue
		}
		want[filepath.Join("upload", f.Save)] = true
		got, err := os.ReadFile(filepath.Join(s.dir, "upload", f.Save))
		if err != nil {
			t.Errorf("%s: %v", f.Save, err)
			continue
		}
		src, _ := os.ReadFile(filepath.Join(s.srv.Root(), f.Path))
		if !bytes.Equal(got, src) {
			t.Errorf("%s: %d bytes differ from the %d served", f.Save, len(got), len(src))
		}
	}
	filepath.WalkDir(filepath.Join(s.dir, "upload"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(s.dir, p)
			if !want[rel] {
				t.Errorf("%s is in the site but was not to be written", rel)
			}
		}
		return nil
	})
}

func TestRunSlowResets(t *testing.T) {
	s := newSite(t, 200, testenv.ConnRate(4<<20), testenv.ResetAfter(20_000, testenv.When{Prob: 0.15}), testenv.Seed(3))
	// One file is not at the CDN.
	var gone gen.CloudFile
	for _, f := range s.files {
		if !f.Skip && f.Size > 0 {
			gone = f
			break
		}
	}
	if err := os.Remove(filepath.Join(s.srv.Root(), gone.Path)); err != nil {
		t.Fatal(err)
	}
	// The first host refuses connections: the next one serves.
	o := s.options("http://127.0.0.1:1", s.srv.URL(""))
	res, err := Run(context.Background(), o)
	var me *MissingError
	if !errors.As(err, &me) || me.Count != 1 {
		t.Fatalf("got %v, want one file missing", err)
	}
	if s.srv.Faults().Resets == 0 {
		t.Error("no connection was reset: the test tests nothing")
	}
	s.check(t, map[string]bool{gone.Save: true})
	log, err := os.ReadFile(filepath.Join(s.dir, MissLog))
	if err != nil || !strings.HasPrefix(string(log), "<?php die(); ?>\n") || !strings.Contains(string(log), gone.Path) {
		t.Fatalf("the miss log: %v\n%s", err, log)
	}
	if _, err := os.Stat(filepath.Join(s.dir, ListTxt)); err != nil {
		t.Errorf("the list must stay while files are missing: %v", err)
	}
	if res.Fetched+res.Present+res.Skipped+res.Missing != res.Listed || res.Missing != 1 {
		t.Errorf("result %+v does not add up", res)
	}
	if ents, _ := os.ReadDir(s.work); len(ents) != 2 || ents[0].Name() != listIDFile || ents[1].Name() != StatusFile {
		t.Errorf("the work directory holds %v after the run, want only %s and %s", ents, listIDFile, StatusFile)
	}
	// haul status reads what the run left: every file but one in place,
	// and where the miss is listed.
	st, err := ReadStatus(s.work)
	if err != nil || st == nil {
		t.Fatalf("status: %v", err)
	}
	if !st.Finished || st.Missing != 1 || st.MissLog != filepath.Join(s.dir, MissLog) || st.FilesDone != st.Files-1 ||
		st.BytesDone != st.Bytes-gone.Size || st.Files != res.Listed-res.Skipped || st.Pulled <= 0 {
		t.Errorf("status %+v after a run with one miss (result %+v)", st, res)
	}

	// The file is back: a rerun pulls it alone, and finishes.
	writeServed(t, s, gone)
	s.srv.ClearFaults()
	s.srv.ZeroCounters()
	res, err = Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.srv.BytesSent(); got != gone.Size {
		t.Errorf("the rerun pulled %d bytes, want the missing file's %d", got, gone.Size)
	}
	s.check(t, nil)
	if !res.Removed || res.Fetched != 1 {
		t.Errorf("result %+v: want one file fetched and the list removed", res)
	}
	if st, _ := ReadStatus(s.work); st == nil || !st.Finished || st.Missing != 0 || st.MissLog != "" || st.FilesDone != st.Files || st.BytesDone != st.Bytes {
		t.Errorf("status %+v after every file is in place", st)
	}
	for _, name := range []string{ListTxt, MissLog} {
		if _, err := os.Stat(filepath.Join(s.dir, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is still in the site: %v", name, err)
		}
	}
}

// writeServed puts f back at the CDN with the bytes the generator gave it
// (the list's size is its proof; the test compares with what is served).
func writeServed(t *testing.T, s *site, f gen.CloudFile) {
	t.Helper()
	b := bytes.Repeat([]byte{0x5a}, int(f.Size))
	if err := os.WriteFile(filepath.Join(s.srv.Root(), f.Path), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRunInterrupted(t *testing.T) {
	s := newSite(t, 120, testenv.ConnRate(1<<20))
	var total int64
	for _, f := range s.files {
		if !f.Skip {
			total += f.Size
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	o := s.options()
	o.Progress = cancelAt{total / 2, cancel}
	if _, err := Run(ctx, o); !errors.Is(err, fetch.ErrInterrupted) && !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want interrupted", err)
	}
	first := s.srv.BytesSent()
	var placed int64
	for _, f := range s.files {
		if fi, err := os.Stat(filepath.Join(s.dir, "upload", f.Save)); err == nil && fi.Size() == f.Size {
			placed += f.Size
		}
	}
	s.srv.ZeroCounters()
	if _, err := Run(context.Background(), s.options()); err != nil {
		t.Fatal(err)
	}
	s.check(t, nil)
	second := s.srv.BytesSent()
	// What the first run pulled is not pulled again, but for the pieces
	// in flight at the stop: at most one per connection, a file here.
	var largest int64
	for _, f := range s.files {
		largest = max(largest, f.Size)
	}
	if slack := 4 * largest; second > total-placed+slack || first+second > total+slack {
		t.Errorf("first run %d, rerun %d bytes, placed %d of %d: the rerun pulled again what it had", first, second, placed, total)
	}
}

// cancelAt stops the run once at bytes pulled.
type cancelAt struct {
	at     int64
	cancel context.CancelFunc
}

func (c cancelAt) CloudStart(int64, int64) {}
func (c cancelAt) CloudProgress(t Tally) {
	if t.Bytes >= c.at {
		c.cancel()
	}
}

func TestRunHostile(t *testing.T) {
	for name, line := range map[string]string{
		"dotdot":          "2026-11-01 03:00:00 5 bucket/../../outside.txt",
		"absolute":        "2026-11-01 03:00:00 5 /etc/x",
		"bucket-absolute": "2026-11-01 03:00:00 5 bucket//etc/x",
	} {
		t.Run(name, func(t *testing.T) {
			s := newSite(t, 20)
			f, _ := os.OpenFile(filepath.Join(s.dir, ListTxt), os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString(line + "\n")
			f.Close()
			_, err := Run(context.Background(), s.options())
			var ue *UnsafeError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), "line 21") {
				t.Fatalf("got %v, want an UnsafeError naming line 21", err)
			}
			if s.srv.Requests() != 0 {
				t.Errorf("%d requests: nothing is to be fetched from an unsafe list", s.srv.Requests())
			}
			if _, err := os.Stat(filepath.Join(s.dir, "upload")); err == nil {
				if ents, _ := os.ReadDir(filepath.Join(s.dir, "upload")); len(ents) > 0 {
					t.Errorf("upload/ holds %v", ents)
				}
			}
		})
	}
}

func TestRunSymlinkUnderUpload(t *testing.T) {
	s := newSite(t, 30)
	outside := t.TempDir()
	var target gen.CloudFile
	for _, f := range s.files {
		if !f.Skip && strings.HasPrefix(f.Save, "iblock/") {
			target = f
			break
		}
	}
	if target.Path == "" {
		t.Fatal("no file under iblock/ in the list")
	}
	if err := os.MkdirAll(filepath.Join(s.dir, "upload"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(s.dir, "upload", "iblock")); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), s.options())
	var ue *UnsafeError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "iblock is a symbolic link") {
		t.Fatalf("got %v, want an UnsafeError naming upload/iblock", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) > 0 {
		t.Errorf("written through the link: %v", ents)
	}
	// The files elsewhere are in place.
	for _, f := range s.files {
		if !f.Skip && !strings.HasPrefix(f.Save, "iblock/") {
			if fi, err := os.Stat(filepath.Join(s.dir, "upload", f.Save)); err != nil || fi.Size() != f.Size {
				t.Errorf("%s: %v", f.Save, err)
			}
		}
	}
}

func TestRunWrongSize(t *testing.T) {
	s := newSite(t, 20)
	var f gen.CloudFile
	for _, c := range s.files {
		if !c.Skip && c.Size > 10 {
			f = c
			break
		}
	}
	if err := os.Truncate(filepath.Join(s.srv.Root(), f.Path), f.Size-3); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), s.options())
	var me *MissingError
	if !errors.As(err, &me) || me.Count != 1 {
		t.Fatalf("got %v, want the one file of another size missing", err)
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, MissLog))
	if !strings.Contains(string(log), f.Path) || !strings.Contains(string(log), "the list says") {
		t.Errorf("the miss log does not name %s and its size:\n%s", f.Path, log)
	}
	if strings.Contains(string(log), "line0") {
		t.Errorf("the miss log carries the engine's name for the file, not its path:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "upload", f.Save)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a file of the wrong size was placed: %v", err)
	}
	s.check(t, map[string]bool{f.Save: true})
}

func TestNoList(t *testing.T) {
	res, err := Run(context.Background(), Options{Root: t.TempDir(), Work: t.TempDir()})
	if err != nil || res.List != "" {
		t.Fatalf("got %+v, %v; want nothing to do", res, err)
	}
}

// TestRunFastestHost: the slow host is listed first, yet once both are
// measured most bytes come from the fast one; the slow one is still
// asked now and then (to be measured again), and every file is right.
func TestRunFastestHost(t *testing.T) {
	s := newSite(t, 200)
	slow := testenv.NewFaultServer(s.srv.Root(), testenv.ConnRate(128<<10))
	t.Cleanup(slow.Close)
	if _, err := Run(context.Background(), s.options(slow.URL(""), s.srv.URL(""))); err != nil {
		t.Fatal(err)
	}
	s.check(t, nil)
	fast, slowB := s.srv.BytesSent(), slow.BytesSent()
	if slow.Requests() == 0 {
		t.Error("the slow host was never asked: nothing was measured")
	}
	if fast < 9*(fast+slowB)/10 {
		t.Errorf("%d bytes from the fast host, %d from the slow one: want most from the fast", fast, slowB)
	}
}

func TestHostOrder(t *testing.T) {
	bases, err := ParseHosts([]string{"http://a", "http://b", "http://c"})
	if err != nil {
		t.Fatal(err)
	}
	h := newHosts(bases, time.Second)
	// Unmeasured hosts are asked first, one read each, in the order given.
	for want := range 3 {
		if got := h.order()[0]; got != want {
			t.Fatalf("read %d went to host %d first, want %d", want, got, want)
		}
	}
	h.measured(0, 1000, time.Second)
	h.measured(1, 100_000, time.Second)
	h.failed(2)
	got := h.order()
	if got[0] != 1 || got[1] != 0 || got[2] != 2 {
		t.Fatalf("order %v, want the fastest (1), then 0, the failed one (2) last", got)
	}
	// Now and then another host goes first, to be measured again.
	firsts := map[int]int{}
	for range 10 * refreshEvery {
		firsts[h.order()[0]]++
	}
	if firsts[1] < 9*refreshEvery || firsts[0] == 0 || firsts[2] == 0 {
		t.Errorf("first choices over %d reads: %v", 10*refreshEvery, firsts)
	}
}
