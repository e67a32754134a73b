// Command haulbench runs haul's benchmark scenarios against aria2c, rclone,
// curl and GNU tar and prints one table per scenario (see BENCHMARKS.md).
//
//	go run ./internal/bench/cmd/haulbench [flags] [SCENARIO...]
//
// SCENARIO is any of a b c d e f g (default: all). Every network is on
// 127.0.0.1; every child process runs under a time limit.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/haul-dev/haul/internal/bench"
	"github.com/haul-dev/haul/internal/units"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "haulbench:", err)
		os.Exit(1)
	}
}

type sizeVal struct{ p *int64 }

func (s sizeVal) String() string {
	if s.p == nil {
		return ""
	}
	return units.FormatBytes(*s.p)
}
func (s sizeVal) Set(v string) error {
	n, err := units.ParseSize(v)
	if err == nil {
		*s.p = n
	}
	return err
}

type sizesVal struct{ p *[]int64 }

func (s sizesVal) String() string {
	if s.p == nil {
		return ""
	}
	var out []string
	for _, n := range *s.p {
		out = append(out, units.FormatBytes(n))
	}
	return strings.Join(out, ",")
}
func (s sizesVal) Set(v string) error {
	*s.p = nil
	for _, f := range strings.Split(v, ",") {
		n, err := units.ParseSize(strings.TrimSpace(f))
		if err != nil {
			return err
		}
		*s.p = append(*s.p, n)
	}
	return nil
}

type scaleVal struct{ p *[]bench.ScaleRun }

func (s scaleVal) String() string {
	if s.p == nil {
		return ""
	}
	var out []string
	for _, r := range *s.p {
		out = append(out, fmt.Sprintf("%dx%s", r.Parts, units.FormatBytes(r.Size)))
	}
	return strings.Join(out, ",")
}
func (s scaleVal) Set(v string) error {
	*s.p = nil
	if v == "none" {
		return nil // the big part alone (-scale-big)
	}
	for _, f := range strings.Split(v, ",") {
		n, size, ok := strings.Cut(strings.TrimSpace(f), "x")
		parts, err := strconv.Atoi(n)
		if !ok || err != nil || parts <= 0 {
			return fmt.Errorf("%q: want PARTSxSIZE, e.g. 1000x64K", f)
		}
		b, err := units.ParseSize(size)
		if err != nil {
			return err
		}
		*s.p = append(*s.p, bench.ScaleRun{Parts: parts, Size: b})
	}
	return nil
}

type intsVal struct{ p *[]int }

func (s intsVal) String() string {
	if s.p == nil {
		return ""
	}
	return strings.Trim(strings.Join(strings.Fields(fmt.Sprint(*s.p)), ","), "[]")
}
func (s intsVal) Set(v string) error {
	*s.p = nil
	for _, f := range strings.Split(v, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(f), &n); err != nil {
			return err
		}
		*s.p = append(*s.p, n)
	}
	return nil
}

func run() error {
	c := bench.Config{
		Rounds:    3,
		Seed:      7,
		NetSize:   32 << 20,
		NetParts:  8,
		Piece:     256 << 10,
		Conns:     16,
		Streams:   16,
		Link:      bench.Link{ConnRate: 100_000, TotalRate: 1_000_000, Seed: 7},
		Faults:    bench.Link{ResetProb: 0.1, ResetAfter: 64 << 10, Flips: 4},
		JList:     []int{1, 2, 4, 8, 16},
		JWindow:   12 * time.Second,
		BigSizes:  []int64{2 << 30, 8 << 30},
		BigPart:   512 << 20,
		SiteSize:  512 << 20,
		ScaleRuns: []bench.ScaleRun{{Parts: 1000, Size: 16 << 10}, {Parts: 10000, Size: 16 << 10}, {Parts: 2000, Size: 1 << 20}, {Parts: 20000, Size: 64 << 10}, {Parts: 100000, Size: 16 << 10}},
		ScaleBig:  1 << 30,
		SettleBig: 15 * time.Second,
		Soak:      bench.SoakConfig{FetchKills: 50, RestoreKills: 20, Size: 16 << 20, RestoreSize: 256 << 20},
		Limit:     10 * time.Minute,
		Log:       os.Stderr,
	}
	var (
		haul, work, md string
		peers          = "aria2c,rclone,curl"
		keep           bool
	)
	flag.StringVar(&peers, "peers", peers, "peers to run, comma-separated (none: haul only)")
	flag.StringVar(&haul, "haul", "", "haul binary (default: go build ./cmd/haul into the work directory)")
	flag.StringVar(&work, "work", "", "scratch directory (default: a new one under $TMPDIR, removed at the end)")
	flag.BoolVar(&keep, "keep", false, "keep the scratch directory")
	flag.StringVar(&md, "md", "", "also write the reports as Markdown to FILE")
	flag.IntVar(&c.Rounds, "rounds", c.Rounds, "runs of each tool (tables show medians)")
	flag.Uint64Var(&c.Seed, "seed", c.Seed, "seed of the generated data and the faults")
	flag.Var(sizeVal{&c.NetSize}, "size", "about how big the network scenarios' set is")
	flag.IntVar(&c.NetParts, "parts", c.NetParts, "volumes of the network scenarios' set")
	flag.Var(sizeVal{&c.Piece}, "chunk", "haul --chunk-size and the manifest's piece size")
	flag.IntVar(&c.Conns, "j", c.Conns, "haul -j on the slow link")
	flag.IntVar(&c.Streams, "streams", c.Streams, "rclone --multi-thread-streams")
	flag.Var(sizeVal{&c.Link.ConnRate}, "conn-rate", "per-connection cap of the slow link, bytes/s")
	flag.Var(sizeVal{&c.Link.TotalRate}, "total-rate", "total cap of the slow link, bytes/s")
	flag.Float64Var(&c.Faults.ResetProb, "reset-prob", c.Faults.ResetProb, "faulty link: share of responses reset")
	flag.Var(sizeVal{&c.Faults.ResetAfter}, "reset-after", "faulty link: body bytes before a reset")
	flag.IntVar(&c.Faults.Flips, "flips", c.Faults.Flips, "faulty link: bytes damaged (once each)")
	flag.Var(intsVal{&c.JList}, "jlist", "(b): -j values")
	flag.DurationVar(&c.JWindow, "jwindow", c.JWindow, "(b): how long each -j value runs")
	flag.Var(sizesVal{&c.BigSizes}, "big", "(d): set sizes, comma-separated")
	flag.Var(sizeVal{&c.BigPart}, "big-part", "(d): part size of the big sets")
	flag.Var(sizeVal{&c.SiteSize}, "site", "(f): size of the site restored against tar")
	flag.StringVar(&c.RestoreInto, "restore-into", defaultRestoreInto(), "(f): directory the trees are extracted under, /dev/shm when it is a tmpfs (\"\": the work directory)")
	flag.IntVar(&c.Soak.FetchKills, "fetch-kills", c.Soak.FetchKills, "(g): kill -9 during fetch")
	flag.IntVar(&c.Soak.RestoreKills, "restore-kills", c.Soak.RestoreKills, "(g): kill -9 during restore")
	flag.Var(sizeVal{&c.Soak.Size}, "soak-size", "(g): about how big the fetch soak's set is")
	flag.Var(sizeVal{&c.Soak.RestoreSize}, "soak-site", "(g): size of the site the restore soak restores")
	flag.StringVar(&c.Trace, "trace", "", "write each network run's byte counter (10 ms samples) as CSV into DIR")
	flag.Var(scaleVal{&c.ScaleRuns}, "scale", "(h): sets as PARTSxSIZE, comma-separated (1000x16K,2000x1M), or none")
	flag.Var(sizeVal{&c.ScaleBig}, "scale-big", "(h): size of the one big part at --chunk-size 256K (0: none)")
	flag.DurationVar(&c.SettleBig, "settle-big", c.SettleBig, "(h): pause before each run of the big part, for the disk to finish the run before")
	flag.DurationVar(&c.Limit, "limit", c.Limit, "longest any one child process may run")
	flag.Parse()
	c.Link.Seed, c.Faults.Seed = c.Seed, c.Seed

	scen := flag.Args()
	if len(scen) == 0 {
		scen = []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	}
	for _, s := range scen {
		if !slices.Contains([]string{"a", "b", "c", "d", "e", "f", "g", "h"}, s) {
			return fmt.Errorf("unknown scenario %q (want a b c d e f g h)", s)
		}
	}
	if c.Rounds < 1 || c.NetParts < 1 {
		return errors.New("-rounds and -parts must be at least 1")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	if work == "" {
		if work, err = os.MkdirTemp("", "haulbench-"); err != nil {
			return err
		}
		if !keep {
			defer os.RemoveAll(work)
		}
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	c.Work = work
	built := haul == ""
	if built {
		haul = filepath.Join(work, "haul")
		c.Log.Write([]byte("haulbench: go build -o " + haul + " ./cmd/haul\n"))
		b := exec.CommandContext(ctx, "go", "build", "-o", haul, "github.com/haul-dev/haul/cmd/haul")
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("build haul: %w", err)
		}
	}
	c.Haul = haul
	for _, t := range []struct {
		p    *string
		name string
	}{{&c.Aria2, "aria2c"}, {&c.Rclone, "rclone"}, {&c.Curl, "curl"}, {&c.Tar, "tar"}} {
		if t.name != "tar" && !slices.Contains(strings.Split(peers, ","), t.name) {
			continue
		}
		if p, err := exec.LookPath(t.name); err == nil {
			*t.p = p
		} else {
			fmt.Fprintf(os.Stderr, "haulbench: %s not found: left out (HAUL_BENCH_TOOLS=1 .ci/test installs aria2 and rclone)\n", t.name)
		}
	}

	var mdf *os.File
	if md != "" {
		if mdf, err = os.Create(md); err != nil {
			return err
		}
		defer mdf.Close()
		rev := "given with -haul"
		if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil && built {
			rev = "built from " + strings.TrimSpace(string(out))
		}
		fmt.Fprintf(mdf, "Run %s: `haulbench %s`; haul %s; %d CPUs\n", time.Now().UTC().Format(time.RFC3339), strings.Join(os.Args[1:], " "), rev, runtime.NumCPU())
	}
	funcs := map[string]func(context.Context) (*bench.Report, error){
		"a": c.CleanLink, "b": c.PerConnection, "c": c.FaultyLink,
		"d": c.Memory, "e": c.CPU, "f": c.Restore, "g": c.SoakTest,
		"h": c.Scale,
	}
	failed := false
	for _, s := range scen {
		f := funcs[s]
		start := time.Now()
		rep, err := f(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(os.Stderr, "haulbench: scenario %s: %v\n", s, err)
			failed = true
			continue
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("scenario took %s", time.Since(start).Round(time.Second)))
		rep.WriteText(os.Stdout)
		if mdf != nil {
			rep.WriteMarkdown(mdf)
		}
	}
	if failed {
		return errors.New("some scenarios could not run")
	}
	return nil
}

// defaultRestoreInto is /dev/shm when it is a tmpfs. On this project's CI
// machine, ext4 mounted with discard makes file creation cost more and
// more system time after each large tree is deleted (tar -xzf of the same
// archive: 1.6 s, then 7.6 s, then 14.6 s), which would drown what the
// tools themselves cost.
func defaultRestoreInto() string {
	var st syscall.Statfs_t
	const tmpfsMagic = 0x01021994
	if err := syscall.Statfs("/dev/shm", &st); err == nil && st.Type == tmpfsMagic {
		return "/dev/shm"
	}
	return ""
}
