package chunk

import (
	"strings"
	"testing"
	"time"
)

// TestReportCloud: a run killed during the cloud step reports it
// interrupted at its last sign of life; a run that ended reports the
// step by name with its bytes, rate and the list's counts.
func TestReportCloud(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 5, 0, 0, 0, time.UTC)
	ev := func(run string, s int, e Event) Event {
		e.Run, e.Time, e.Cmd = run, t0.Add(time.Duration(s)*time.Second), "run"
		return e
	}
	const list = "/var/www/bitrix/restore_cloud.txt"
	code := 3
	events := []Event{
		ev("a", 0, Event{Event: EventRunStart}),
		ev("a", 0, Event{Event: EventStepStart, Step: StepCloud}),
		ev("a", 0, Event{Event: EventCloudStart, Step: StepCloud, Message: list}),
		ev("a", 30, Event{Event: EventWarning, Message: "something"}),
		// killed here

		ev("b", 100, Event{Event: EventRunStart}),
		ev("b", 100, Event{Event: EventStepStart, Step: StepCloud}),
		ev("b", 100, Event{Event: EventCloudStart, Step: StepCloud, Message: list}),
		ev("b", 120, Event{Event: EventCloudEnd, Step: StepCloud, Bytes: 40960, Seconds: 20,
			Files: &FileCounts{Listed: 200, Fetched: 150, Present: 29, Skipped: 20, Missing: 1}, Message: "1 files missing"}),
		ev("b", 120, Event{Event: EventStepEnd, Step: StepCloud, Seconds: 20, Bytes: 40960, ExitCode: &code}),
		ev("b", 120, Event{Event: EventRunEnd, ExitCode: &code, Bytes: 40960}),
	}
	rep := BuildReport(events)
	if len(rep.Runs) != 2 {
		t.Fatalf("%d runs", len(rep.Runs))
	}
	a, b := rep.Runs[0].Cloud, rep.Runs[1].Cloud
	if a == nil || !a.Interrupted || a.Seconds != 30 || a.List != list || a.Files != nil {
		t.Errorf("killed run: %+v", a)
	}
	if b == nil || b.Interrupted || b.Bytes != 40960 || b.BytesPerSecond != 2048 || b.Files == nil || b.Files.Fetched != 150 || b.Files.Missing != 1 {
		t.Errorf("finished run: %+v", b)
	}
	if rep.Runs[1].BytesPerSecond != 2048 {
		t.Errorf("the run's rate %v: the cloud step moves bytes, its time counts", rep.Runs[1].BytesPerSecond)
	}
	if rep.Runs[0].DB != nil {
		t.Error("a cloud step made a db step")
	}
	var out strings.Builder
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"cloud    30s from " + list + "  (interrupted)",
		"cloud    20s  40.0 KiB at 2.0 KiB/s; 200 files listed: 150 fetched, 29 already there, 20 skipped, 1 missing from " + list + ": 1 files missing  (exit 3)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestStatusCloud: files still to come keep a done set incomplete (75),
// files missing at every host make it broken (3) with what to do, and
// the line names the counts and the miss log.
func TestStatusCloud(t *testing.T) {
	eta := 12.0
	for _, c := range []struct {
		set, cloud, want string
	}{
		{SetDone, CloudFetching, SetIncomplete},
		{SetDone, CloudMissing, SetBroken},
		{SetDone, CloudDone, SetDone},
		{SetBroken, CloudDone, SetBroken},
		{SetIncomplete, CloudMissing, SetBroken},
	} {
		r := StatusReport{State: c.set}
		r.AddCloud(CloudStatus{State: c.cloud})
		if r.State != c.want {
			t.Errorf("set %s, cloud %s: state %s, want %s", c.set, c.cloud, r.State, c.want)
		}
	}
	r := StatusReport{State: SetDone, Parts: []PartStatus{{Name: "site.tar.gz", Status: Verified, Size: 10, BytesDone: 10}}}
	r.AddCloud(CloudStatus{State: CloudFetching, List: "/w/bitrix/restore_cloud.txt", Files: 180, FilesDone: 64,
		Bytes: 4 << 20, BytesDone: 1 << 20, Rate: 1 << 20, ETASeconds: &eta})
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if want := "cloud files: fetching /w/bitrix/restore_cloud.txt — 64/180 files, 1.0 MiB of 4.0 MiB (25.0%), 1.0 MiB/s, ETA 12s\n"; !strings.Contains(b.String(), want) {
		t.Errorf("status lacks %q:\n%s", want, b.String())
	}
	r = StatusReport{State: SetDone, Parts: r.Parts}
	r.AddCloud(CloudStatus{State: CloudMissing, List: "/w/bitrix/restore_cloud.txt", Files: 180, FilesDone: 179, Missing: 1,
		MissLog: "/w/bitrix/restore_cloud_404.php"})
	b.Reset()
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 missing (listed in /w/bitrix/restore_cloud_404.php)", "next: haul run again to retry the missing cloud files"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "haul repair") {
		t.Errorf("no part is broken, yet repair is suggested:\n%s", b.String())
	}
}
