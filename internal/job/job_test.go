package job

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch"
	"github.com/haul-dev/haul/internal/gen"
	"github.com/haul-dev/haul/restore"
)

// TestRunWithoutCLI drives a whole `haul run` (fetch → set decode →
// restore) through the job, as a library caller would, and checks that it
// restores the tree byte for byte and leaves the same journal as the haul
// binary does for the same run: the same events, steps, parts, bytes and
// exit codes, in the same order.
func TestRunWithoutCLI(t *testing.T) {
	dir := t.TempDir()
	tree, served := filepath.Join(dir, "site"), filepath.Join(dir, "server")
	if err := gen.Tree(tree, 7, 3<<20); err != nil {
		t.Fatal(err)
	}
	parts, err := gen.SplitTarGz(tree, served, "site.tar.gz", 1<<20, gen.FormatGzip)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) < 2 {
		t.Fatalf("%d parts, want several (the set decode proves them)", len(parts))
	}

	// The job, with no CLI.
	libDest, libInto := filepath.Join(dir, "lib"), filepath.Join(dir, "lib-tree")
	args := []string{"run", served, libDest, "--into", libInto}
	ctx, j, err := Begin(context.Background(), Options{Cmd: "run", Dest: libDest, Args: args})
	if err != nil {
		t.Fatal(err)
	}
	fo := fetch.Options{Sources: []string{served}, Dest: libDest, Connections: 1, Retries: 10, AutoPieceSize: true}
	if err := j.End(j.RunAll(ctx, fo, restore.Options{Into: libInto}, nil)); err != nil {
		t.Fatalf("job: %v", err)
	}
	assertSameTree(t, tree, libInto)

	// The CLI, for the same run.
	bin := filepath.Join(dir, "haul")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/haul-dev/haul/cmd/haul").CombinedOutput(); err != nil {
		t.Fatalf("build haul: %v\n%s", err, out)
	}
	cliDest, cliInto := filepath.Join(dir, "cli"), filepath.Join(dir, "cli-tree")
	// One connection in both: with several, the endgame may split a span
	// on a loaded machine and pull bytes twice, and this compares the
	// journals' byte counts exactly.
	cmd := exec.Command(bin, "run", served, cliDest, "--into", cliInto, "--progress", "none", "-j", "1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("haul run: %v\n%s", err, out)
	}
	assertSameTree(t, tree, cliInto)

	lib, cli := journalOf(t, libDest), journalOf(t, cliDest)
	t.Logf("journal:\n%s", strings.Join(lib, "\n"))
	if !reflect.DeepEqual(lib, cli) {
		t.Fatalf("the job's journal differs from the CLI's:\njob: %s\ncli: %s", strings.Join(lib, "\n     "), strings.Join(cli, "\n     "))
	}
	want := []string{"run_start", "step_start fetch", "step_end fetch", "restore_start", "restore_end", "run_end 0"}
	for _, w := range want {
		if !containsPrefix(lib, w) {
			t.Errorf("journal lacks %q:\n%s", w, strings.Join(lib, "\n"))
		}
	}
	var total int64
	for _, p := range parts {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
		// The report counts the parts a run fetched from part_fetched,
		// which the job's journal decorator writes, not the UI.
		if w := fmt.Sprintf("part_fetched part=%s bytes=%d", filepath.Base(p), fi.Size()); !slices.Contains(lib, w) {
			t.Errorf("journal lacks %q:\n%s", w, strings.Join(lib, "\n"))
		}
	}
	if last := lib[len(lib)-1]; last != fmt.Sprintf("run_end 0 bytes=%d", total) {
		t.Errorf("last line %q, want the run's end with every byte of the set pulled once (%d)", last, total)
	}
}

// journalOf is the journal of dest with what differs between two runs
// (times, run ids, PIDs, durations, paths in the command line) left out,
// and the events of different parts that follow each other in the order
// the engine's workers happened to finish them sorted by part.
func journalOf(t *testing.T, dest string) []string {
	t.Helper()
	events, err := chunk.ReadJournal(dest)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range events {
		if e.Event == chunk.EventProgress {
			continue // a timed checkpoint: present or not by chance
		}
		line := e.Event
		if e.Step != "" {
			line += " " + e.Step
		}
		if e.ExitCode != nil {
			line += fmt.Sprintf(" %d", *e.ExitCode)
		}
		if e.Part != "" {
			line += " part=" + e.Part
		}
		if e.Bytes != 0 {
			line += fmt.Sprintf(" bytes=%d", e.Bytes)
		}
		if len(e.VerifiedBy) > 0 {
			line += " by=" + strings.Join(e.VerifiedBy, ",")
		}
		if e.Event != chunk.EventRunStart && e.Message != "" {
			line += " msg=" + e.Message
		}
		if e.Cmd != "run" {
			line += " cmd=" + e.Cmd
		}
		out = append(out, line)
	}
	for i := 0; i < len(out); {
		k := i
		for k < len(out) && strings.HasPrefix(out[k], "part_") {
			k++
		}
		slices.Sort(out[i:k])
		i = max(k, i+1)
	}
	return out
}

func containsPrefix(lines []string, p string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

// assertSameTree checks that every regular file under orig is under got
// with the same bytes, and nothing else is.
func assertSameTree(t *testing.T, orig, got string) {
	t.Helper()
	sums := func(root string) map[string]string {
		m := map[string]string{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			h := sha256.New()
			if _, err := io.Copy(h, f); err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			m[rel] = fmt.Sprintf("%x", h.Sum(nil))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b := sums(orig), sums(got)
	if len(a) == 0 || !reflect.DeepEqual(a, b) {
		t.Fatalf("restored tree %s differs from %s (%d files vs %d)", got, orig, len(b), len(a))
	}
}

// TestStopMessages: a stop at the deadline or by the caller's cause says
// what stopped the run and what to do, and nothing after it, and still
// exits 75.
func TestStopMessages(t *testing.T) {
	sigterm := errors.New("stopped by SIGTERM")
	deadline, cancel := context.WithDeadlineCause(context.Background(), time.Now(), ErrDeadline)
	defer cancel()
	<-deadline.Done()
	bySignal, stop := context.WithCancelCause(context.Background())
	stop(sigterm)
	bare, stopBare := context.WithCancel(context.Background())
	stopBare()
	for _, tt := range []struct {
		name string
		ctx  context.Context
		err  error
		want string
	}{
		{"deadline", deadline, context.DeadlineExceeded, "stopped at the deadline (--until/--max-time); state saved, run the same command again to continue"},
		{"signal", bySignal, context.Canceled, "stopped by SIGTERM; state saved, run the same command again to continue"},
		{"bare cancel", bare, context.Canceled, "stopped; state saved, run the same command again to continue"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := wrapDeadline(tt.ctx, tt.err)
			if err.Error() != tt.want {
				t.Errorf("message %q, want %q", err, tt.want)
			}
			if code := ExitCode(err); code != 75 {
				t.Errorf("exit %d, want 75", code)
			}
		})
	}
}
