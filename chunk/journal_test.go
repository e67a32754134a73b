package chunk

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// startJournal opens DEST's journal for cmd and logs run_start.
func startJournal(t *testing.T, dest, cmd, message string) *Journal {
	t.Helper()
	j, err := OpenJournal(dest, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Start(message); err != nil {
		t.Fatal(err)
	}
	return j
}

func TestJournalWritesOneEventPerLine(t *testing.T) {
	dest := t.TempDir()
	j := startJournal(t, dest, "run", "s3://bucket/site/")
	local := time.Date(2026, 11, 20, 3, 4, 5, 123456789, time.FixedZone("MSK", 3*3600))
	events := []Event{
		{Event: EventStepStart, Step: StepFetch},
		{Time: local, Event: EventPartFetched, Step: StepFetch, Part: "site.tar.gz", Bytes: 1 << 20},
		{Event: EventPartVerified, Part: "site.tar.gz", VerifiedBy: []string{"sha256:SHA256SUMS", "gzip"}},
		{Event: EventStepEnd, Step: StepFetch, Seconds: 12.5, Bytes: 1 << 20},
	}
	for _, e := range events {
		if err := j.Log(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.End(0, 1<<20, ""); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	for path, want := range map[string]os.FileMode{filepath.Join(dest, StateDir): 0o700 | os.ModeDir, JournalPath(dest): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s mode %v, want %v", path, fi.Mode(), want)
		}
	}

	raw, err := os.ReadFile(JournalPath(dest))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6:\n%s", len(lines), raw)
	}
	// Times are RFC 3339 with nanoseconds in UTC, whatever zone they came in.
	if !strings.Contains(lines[2], `"time":"2026-11-20T00:04:05.123456789Z"`) {
		t.Errorf("part_fetched line %s: want the UTC time with nanoseconds", lines[2])
	}
	// An exit code of 0 is written, not dropped as empty.
	if !strings.Contains(lines[5], `"exit_code":0`) {
		t.Errorf("run_end line %s has no exit_code 0", lines[5])
	}
	if strings.Contains(lines[1], "exit_code") || strings.Contains(lines[1], "part") {
		t.Errorf("step_start line %s carries fields that do not apply", lines[1])
	}

	got, err := ReadJournal(dest)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 {
		t.Fatalf("ReadJournal: %d events", len(got))
	}
	for i, e := range got {
		if e.Run != j.RunID() || e.Cmd != "run" || e.Time.Location() != time.UTC {
			t.Errorf("event %d %+v: want run %s, cmd run, UTC time", i, e, j.RunID())
		}
	}
	if got[0].Event != EventRunStart || got[0].PID != os.Getpid() || got[0].Message != "s3://bucket/site/" {
		t.Errorf("run_start = %+v", got[0])
	}
	if got[3].VerifiedBy[1] != "gzip" || got[2].Bytes != 1<<20 || got[4].Seconds != 12.5 {
		t.Errorf("fields lost: %+v %+v %+v", got[2], got[3], got[4])
	}
	if e := got[5]; e.Event != EventRunEnd || e.ExitCode == nil || *e.ExitCode != 0 || e.Seconds < 0 {
		t.Errorf("run_end = %+v", e)
	}
}

func TestJournalToleratesTornLines(t *testing.T) {
	tests := []struct {
		name string
		tail string // what a kill or a crash left at the end of the file
	}{
		{"torn mid-object", `{"time":"2026-11-20T00:04:05Z","run":"x","event":"part_fet`},
		{"torn after a key", `{"time":"2026-11-20T00:04:05Z","run":"x","ev`},
		{"one brace", `{`},
		{"zeros from a crash", "\x00\x00\x00\x00\x00\x00"},
		{"zeros then a newline", "\x00\x00\x00\n"},
		{"garbage line", "not json\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dest := t.TempDir()
			if err := startJournal(t, dest, "fetch", "").Close(); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(JournalPath(dest), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString(tt.tail); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}

			// Reading now skips the torn line.
			got, err := ReadJournal(dest)
			if err != nil || len(got) != 1 || got[0].Event != EventRunStart {
				t.Fatalf("ReadJournal = %+v, %v; want the one good event", got, err)
			}

			// The next run's events are not glued onto the torn line.
			j2 := startJournal(t, dest, "fetch", "")
			if err := j2.End(75, 0, "killed before"); err != nil {
				t.Fatal(err)
			}
			if err := j2.Close(); err != nil {
				t.Fatal(err)
			}
			got, err = ReadJournal(dest)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 || got[1].Run != j2.RunID() || got[2].Event != EventRunEnd || *got[2].ExitCode != 75 {
				t.Fatalf("after a new run: %+v", got)
			}
			if got[0].Run == got[1].Run {
				t.Fatalf("two runs share the id %s", got[0].Run)
			}
		})
	}
}

func TestJournalConcurrentLog(t *testing.T) {
	dest := t.TempDir()
	j, err := OpenJournal(dest, "fetch")
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				part := fmt.Sprintf("p%d.%d-%s", w, i, strings.Repeat("x", 200))
				if err := j.Log(Event{Event: EventProgress, Part: part, Bytes: int64(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJournal(dest)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != workers*each {
		t.Fatalf("%d events, want %d: lines interleaved", len(got), workers*each)
	}
}

func TestJournalNilAndClosed(t *testing.T) {
	var j *Journal
	if j.Log(Event{Event: EventWarning}) != nil || j.Start("") != nil || j.End(0, 0, "") != nil || j.Close() != nil || j.RunID() != "" {
		t.Fatal("a nil journal must discard events")
	}

	dest := t.TempDir()
	j, err := OpenJournal(dest, "verify")
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Log(Event{Event: EventWarning}); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Log after Close = %v, want os.ErrClosed", err)
	}
}

func TestReadJournalMissing(t *testing.T) {
	_, err := ReadJournal(t.TempDir())
	if !errors.Is(err, ErrNoJournal) {
		t.Fatalf("ReadJournal of an empty DEST = %v, want ErrNoJournal", err)
	}
}

func TestReadEventsLongLine(t *testing.T) {
	// A line longer than the reader's buffer (a long warning) is read whole.
	msg := strings.Repeat("m", 200<<10)
	in := `{"time":"2026-11-20T00:00:00Z","run":"r","event":"warning","message":"` + msg + `"}` + "\n"
	got, err := readEvents(bytes.NewBufferString(in))
	if err != nil || len(got) != 1 || len(got[0].Message) != len(msg) {
		t.Fatalf("long line: %d events, %v", len(got), err)
	}
}
