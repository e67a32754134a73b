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

// TestManyBrokenPartsOneLine: when every part of a set of many fails, the
// verdict names the first few and counts the rest (pointing at haul
// status), instead of a line as long as the set; the journal still says
// each part broke. So does the fetch's own error.
func TestManyBrokenPartsOneLine(t *testing.T) {
	const n = 40
	src, dest := t.TempDir(), t.TempDir()
	var sums strings.Builder
	for i := range n {
		name := fmt.Sprintf("set.bin.%03d", i+1)
		b := []byte(strings.Repeat(name, 50))
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sums, "%x  %s\n", sha256.Sum256(b), name)
	}
	if err := os.WriteFile(filepath.Join(src, "SHA256SUMS"), []byte(sums.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, j, err := Begin(context.Background(), Options{Cmd: "fetch", Dest: dest, Args: []string{"fetch", src, dest}})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.End(j.Fetch(ctx, fetch.Options{Sources: []string{src}, Dest: dest, Connections: 2, Retries: 1})); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	for i := range n {
		if err := os.WriteFile(filepath.Join(dest, fmt.Sprintf("set.bin.%03d", i+1)), []byte("damaged"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, j, err = Begin(context.Background(), Options{Cmd: "verify", Dest: dest, Args: []string{"verify", dest}})
	if err != nil {
		t.Fatal(err)
	}
	err = j.End(j.Verify(ctx, nil))
	msg := fmt.Sprint(err)
	if !errors.Is(err, fetch.ErrIncomplete) || !strings.Contains(msg, "set.bin.001 (broken)") || strings.Contains(msg, "set.bin.011") ||
		!strings.Contains(msg, fmt.Sprintf("and %d more (haul status %s lists them)", n-10, dest)) || !strings.Contains(msg, "haul repair "+dest) {
		t.Fatalf("verify of %d broken parts: %v\nwant the first 10 named, %d more counted, haul status and haul repair named", n, err, n-10)
	}
	broken := 0
	for _, l := range journalOf(t, dest) {
		if strings.HasPrefix(l, "part_broken ") {
			broken++
		}
	}
	if broken != n {
		t.Fatalf("the journal says %d parts broke, want %d", broken, n)
	}

	e := &fetch.IncompleteError{Dest: dest, Detail: map[string]string{"a": "why", "b": "why", "c": "other"}}
	e.Broken = append(e.Broken, "a", "b", "c")
	for i := range 100_000 {
		e.Broken = append(e.Broken, fmt.Sprintf("p%06d", i))
	}
	e.Missing = []string{"m1", "m2"}
	msg = e.Error()
	if len(msg) > 1000 || !strings.HasPrefix(msg, "parts a, b are broken (why); part c is broken (other); part p000000 is broken; ") ||
		!strings.Contains(msg, "p000007 is broken; and 99994 more parts broken or missing (haul status "+dest+" lists them); run: haul repair") {
		t.Fatalf("the fetch's error for 100,005 broken or missing parts (%d bytes): %.600s", len(msg), msg)
	}
	small := (&fetch.IncompleteError{Dest: dest, Broken: []string{"x"}, Missing: []string{"y"}}).Error()
	if small != "part x is broken; part y is missing at the source; run: haul repair --from ssh://HOST/DIR "+dest+" (a host with a good copy), or haul repair "+dest+" to retry the source" {
		t.Fatalf("two parts: %s", small)
	}
}
