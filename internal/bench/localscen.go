package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/haul-dev/haul/internal/gen"
	"github.com/haul-dev/haul/internal/units"
)

// haulCmd runs haul with args to its end and fails unless it exits 0.
func (c *Config) haulCmd(ctx context.Context, args ...string) (Proc, error) {
	p, err := runProc(ctx, exec.Command(c.Haul, args...), c.Limit)
	if err == nil && p.Exit != 0 {
		err = fmt.Errorf("haul %s: exit %d: %s", args[0], p.Exit, lastLine(p.Tail))
	}
	return p, err
}

func gb(n int64) float64 { return float64(n) / 1e9 }

// bigSet makes the i-th big set of size bytes.
func (c *Config) bigSet(ctx context.Context, name string, size int64) (*Set, error) {
	c.logf("generating a split tar.gz of about %s (%s parts)", units.FormatBytes(size), units.FormatBytes(c.BigPart))
	return BigSet(ctx, c.Work, name, size, c.BigPart, 8<<20, int64(c.Seed))
}

// Memory is scenario (d): fetch (from a local directory, the fastest
// source), verify and restore of sets of each size in c.BigSizes, with
// each step's max RSS: it must stay under 100 MiB and not grow with the
// set.
func (c *Config) Memory(ctx context.Context) (*Report, error) {
	rep := &Report{Name: "(d) memory: fetch, verify and restore from a fast local source"}
	t := Table{Title: "Max RSS by set size", Note: "one run per size; fetch from a local directory with -j 8; the set and the restored tree are checked byte for byte",
		Head: []string{"set", "parts", "step", "seconds", "GB/s", "max RSS MiB", "CPU s", "identical"}}
	rss := map[string][]int64{} // step → max RSS per size, in size order
	var worst int64
	for i, size := range c.BigSizes {
		s, err := c.bigSet(ctx, fmt.Sprintf("big%d", i), size)
		if err != nil {
			return nil, err
		}
		dest := filepath.Join(c.Work, "big-dest")
		into := filepath.Join(c.Work, "big-restored")
		for _, d := range []string{dest, into} {
			if err := removeAll(d); err != nil {
				return nil, err
			}
		}
		steps := []struct {
			name string
			args []string
			same func() string
		}{
			{"fetch", []string{"fetch", "--progress", "none", s.Dir, dest}, func() string { return SameParts(s, dest) }},
			// The source set is not needed after verify: removing it
			// keeps the peak disk use at three times the set.
			{"verify", []string{"verify", dest}, func() string { removeAll(s.Dir); return "" }},
			{"restore", []string{"restore", "--progress", "none", dest, "--into", into}, func() string { return SameTree(s.Tree, into) }},
		}
		for _, st := range steps {
			p, err := c.haulCmd(ctx, st.args...)
			if err != nil {
				return nil, err
			}
			same := "yes"
			if d := st.same(); d != "" {
				same = "NO: " + d
			}
			c.logf("%s %s: %.1fs, max RSS %s, identical: %s", units.FormatBytes(s.Size), st.name, p.Wall.Seconds(), units.FormatBytes(p.MaxRSS), same)
			t.Rows = append(t.Rows, []string{units.FormatBytes(s.Size), fmt.Sprint(len(s.Parts)), st.name, secs(p.Wall),
				fmt.Sprintf("%.2f", gb(s.Size)/p.Wall.Seconds()), mib(float64(p.MaxRSS)), secs(p.CPU()), same})
			rss[st.name] = append(rss[st.name], p.MaxRSS)
			worst = max(worst, p.MaxRSS)
		}
		for _, d := range []string{dest, into, s.Dir, s.Tree} {
			if err := removeAll(d); err != nil {
				return nil, err
			}
		}
	}
	rep.Tables = append(rep.Tables, t)
	rep.Checks = append(rep.Checks, Check{Target: "max RSS ≤ 100 MB in every step at every size",
		Got: fmt.Sprintf("largest %s", units.FormatBytes(worst)), Met: worst <= 100e6})
	var growth []string
	flat := true
	for _, step := range []string{"fetch", "verify", "restore"} {
		r := rss[step]
		if len(r) < 2 {
			continue
		}
		first, last := r[0], r[len(r)-1]
		growth = append(growth, fmt.Sprintf("%s %s → %s", step, units.FormatBytes(first), units.FormatBytes(last)))
		// Allow the noise of a garbage-collected process: 10% or 8 MiB.
		if float64(last) > float64(first)*1.10 && last-first > 8<<20 {
			flat = false
		}
	}
	if len(growth) > 0 {
		rep.Checks = append(rep.Checks, Check{Target: "the same RSS at the smallest and the largest set (memory does not grow with the set)",
			Got: strings.Join(growth, "; "), Met: flat})
	}
	return rep, nil
}

// CPU is scenario (e): CPU seconds per GB fetched from fast sources (a
// local directory, uncapped HTTP), against tools that only move the
// bytes; `haul verify` in GB/s and GB per CPU second; and what
// crypto/sha256 does on this CPU, for reference.
func (c *Config) CPU(ctx context.Context) (*Report, error) {
	s, err := c.bigSet(ctx, "cpu", c.BigSizes[0])
	if err != nil {
		return nil, err
	}
	sumsOnly, err := s.WithoutManifest(filepath.Join(c.Work, "cpu-sums-only"))
	if err != nil {
		return nil, err
	}
	defer func() {
		removeAll(s.Dir)
		removeAll(sumsOnly.Dir)
		removeAll(s.Tree)
	}()
	dest := filepath.Join(c.Work, "cpu-dest")
	fresh := func() error { return removeAll(dest) }
	type row struct {
		key, name string
		run       func() (Proc, error)
	}
	var rows []row
	idx := map[string]int{}
	add := func(key, name string, run func() (Proc, error)) {
		idx[key] = len(rows)
		rows = append(rows, row{key, name, run})
	}
	fetchLocal := func(dir string) func() (Proc, error) {
		return func() (Proc, error) {
			if err := fresh(); err != nil {
				return Proc{}, err
			}
			return c.haulCmd(ctx, "fetch", "--progress", "none", dir, dest)
		}
	}
	ddParts := func(format string) string {
		var script strings.Builder
		for _, n := range s.Parts {
			fmt.Fprintf(&script, format, filepath.Join(s.Dir, n), filepath.Join(dest, n))
		}
		return script.String()
	}
	add("local", "haul fetch, local directory (SHA256SUMS and manifest)", fetchLocal(s.Dir))
	add("local-sums", "haul fetch, local directory, SHA256SUMS only", fetchLocal(sumsOnly.Dir))
	add("dd", "dd bs=1M, each part (baseline: read and write in user space)", func() (Proc, error) {
		if err := fresh(); err != nil {
			return Proc{}, err
		}
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return Proc{}, err
		}
		return runProc(ctx, exec.Command("sh", "-c", ddParts("dd if=%q of=%q bs=1M status=none || exit 1\n")), c.Limit)
	})
	add("disk", "dd iflag=direct, each part (disk read speed, no page cache)", func() (Proc, error) {
		return runProc(ctx, exec.Command("sh", "-c", ddParts("dd if=%q of=/dev/null bs=4M iflag=direct status=none || exit 1 # %q\n")), c.Limit)
	})
	add("verify", "haul verify (SHA256SUMS and manifest)", func() (Proc, error) {
		if _, err := os.Stat(filepath.Join(dest, ".haul")); err != nil {
			if _, err := fetchLocal(s.Dir)(); err != nil {
				return Proc{}, err
			}
		}
		return c.haulCmd(ctx, "verify", dest)
	})
	httpRow := func(key string, f Fetcher) {
		add(key, f.Name, func() (Proc, error) {
			r := FetchOnce(ctx, f, s, Link{}, c.Work, c.Limit, "")
			if r.Err == nil && r.Diff != "" {
				r.Err = fmt.Errorf("%s: %s", f.Name, r.Diff)
			}
			return r.Proc, r.Err
		})
	}
	h := Haul(c.Haul, 8, 8<<20)
	h.Name = "haul fetch -j8, uncapped HTTP"
	httpRow("http", h)
	if c.Curl != "" {
		f := Curl(c.Curl)
		f.Name = "curl --parallel, uncapped HTTP (baseline)"
		httpRow("curl", f)
	}
	if c.Aria2 != "" {
		f := Aria2(c.Aria2)
		f.Name = "aria2c -x16 -s16, uncapped HTTP"
		httpRow("aria2", f)
	}

	procs := make([][]Proc, len(rows))
	for round := 1; round <= c.Rounds; round++ {
		for i, r := range rows {
			p, err := r.run()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.name, err)
			}
			c.logf("round %d/%d %-44s %.2fs CPU %.2fs", round, c.Rounds, r.name, p.Wall.Seconds(), p.CPU().Seconds())
			procs[i] = append(procs[i], p)
		}
	}
	removeAll(dest)
	med := func(key string, f func(Proc) float64) float64 {
		ps := procs[idx[key]]
		xs := make([]float64, len(ps))
		for i, p := range ps {
			xs[i] = f(p)
		}
		return Median(xs)
	}
	wall := func(p Proc) float64 { return p.Wall.Seconds() }
	cpu := func(p Proc) float64 { return p.CPU().Seconds() }
	size := gb(s.Size)
	perGB := func(key string) float64 { return med(key, cpu) / size }
	t := Table{Title: "CPU per GB", Note: fmt.Sprintf("%d parts, %s; medians of %d runs", len(s.Parts), units.FormatBytes(s.Size), c.Rounds),
		Head: []string{"run", "seconds", "GB/s", "user s", "sys s", "CPU s per GB", "max RSS MiB"}}
	for _, r := range rows {
		key := r.key
		t.Rows = append(t.Rows, []string{r.name, fmt.Sprintf("%.2f", med(key, wall)), fmt.Sprintf("%.2f", size/med(key, wall)),
			fmt.Sprintf("%.2f", med(key, func(p Proc) float64 { return p.User.Seconds() })),
			fmt.Sprintf("%.2f", med(key, func(p Proc) float64 { return p.Sys.Seconds() })),
			fmt.Sprintf("%.2f", perGB(key)), mib(med(key, func(p Proc) float64 { return float64(p.MaxRSS) }))})
	}
	rep := &Report{Name: "(e) CPU"}
	rep.Tables = append(rep.Tables, t)
	rep.Notes = append(rep.Notes, fmt.Sprintf("crypto/sha256 in this process: %.2f GB/s on one core", sha256Rate()))
	// 10% of a core per 100 MB/s is 1 CPU second per GB. Hashing and
	// bookkeeping are user time: moving the bytes is system time in haul
	// as in the baselines (whose user time is nil), and the baselines'
	// system time varies from run to run with this disk's state, so the
	// target is judged on user time over the baseline's user time; the
	// total over the baseline's total is shown beside it.
	user := func(p Proc) float64 { return p.User.Seconds() }
	overhead := func(k, base string) Check {
		u := (med(k, user) - med(base, user)) / size
		return Check{Target: "hashing and bookkeeping ≤ 10% of one core per 100 MB/s (≤ 1 CPU s per GB): " + rows[idx[k]].name,
			Got: fmt.Sprintf("%.2f user CPU s per GB over %s (user+system over %s: %.2f)", u, base, base, perGB(k)-perGB(base)), Met: u <= 1}
	}
	rep.Checks = append(rep.Checks, overhead("local", "dd"), overhead("local-sums", "dd"))
	if _, ok := idx["curl"]; ok {
		rep.Checks = append(rep.Checks, overhead("http", "curl"))
	}
	vw, vc, disk := med("verify", wall), med("verify", cpu), size/med("disk", wall)
	rep.Checks = append(rep.Checks, Check{Target: "haul verify at disk speed or ≥ 1 GB/s of SHA-256 per core",
		Got: fmt.Sprintf("%.2f GB/s wall (files in the page cache), %.2f GB per CPU second; the disk reads %.2f GB/s", size/vw, size/vc, disk),
		Met: size/vc >= 1 || size/vw >= disk})
	return rep, nil
}

// sha256Rate hashes 256 MiB in memory and returns GB/s.
func sha256Rate() float64 {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	h := sha256.New()
	start := time.Now()
	for i := 0; i < 256; i++ {
		h.Write(buf)
	}
	h.Sum(nil)
	return gb(256<<20) / time.Since(start).Seconds()
}

// Restore is scenario (f): `haul restore` of a split tar.gz of a
// generated site against `tar -xzf` of the same archive joined into one
// file (the join is not timed), both from the page cache, both checked
// against the source tree. The trees go under c.RestoreInto when set (a
// tmpfs measures the tools, not the disk's block allocator).
func (c *Config) Restore(ctx context.Context) (*Report, error) {
	if c.Tar == "" {
		return nil, fmt.Errorf("tar not found")
	}
	c.logf("generating a site of %s and its split tar.gz", units.FormatBytes(c.SiteSize))
	tree := filepath.Join(c.Work, "site-tree")
	dir := filepath.Join(c.Work, "site")
	for _, d := range []string{tree, dir} {
		if err := removeAll(d); err != nil {
			return nil, err
		}
	}
	s, err := siteSet(ctx, tree, dir, c.SiteSize, int64(c.Seed))
	if err != nil {
		return nil, err
	}
	dest := filepath.Join(c.Work, "site-dest")
	removeAll(dest)
	if _, err := c.haulCmd(ctx, "fetch", "--progress", "none", s.Dir, dest); err != nil {
		return nil, err
	}
	joined := filepath.Join(c.Work, "site.tar.gz")
	if err := joinParts(s, joined); err != nil {
		return nil, err
	}
	defer func() {
		for _, d := range []string{tree, dir, dest, joined} {
			removeAll(d)
		}
	}()
	files, _ := countEntries(tree)
	outDir := c.Work
	if c.RestoreInto != "" {
		if outDir, err = os.MkdirTemp(c.RestoreInto, "haulbench-"); err != nil {
			return nil, err
		}
		defer removeAll(outDir)
	}
	out := filepath.Join(outDir, "site-out")
	type tool struct {
		name string
		cmd  func() *exec.Cmd
	}
	tools := []tool{
		{"haul restore", func() *exec.Cmd {
			return exec.Command(c.Haul, "restore", "--progress", "none", dest, "--into", out)
		}},
		{"tar -xzf", func() *exec.Cmd {
			os.MkdirAll(out, 0o755)
			return exec.Command(c.Tar, "-xzf", joined, "-C", out)
		}},
	}
	procs := make([][]Proc, len(tools))
	same := make([]int, len(tools))
	var diffs []string
	for round := 1; round <= c.Rounds; round++ {
		// ABBA: who goes first alternates, so a file system that slows
		// down over the run does not favour one tool.
		order := []int{0, 1}
		if round%2 == 0 {
			order = []int{1, 0}
		}
		for _, i := range order {
			tl := tools[i]
			if err := removeAll(out); err != nil {
				return nil, err
			}
			syncFS()
			p, err := runProc(ctx, tl.cmd(), c.Limit)
			if err == nil && p.Exit != 0 {
				err = fmt.Errorf("%s: exit %d: %s", tl.name, p.Exit, lastLine(p.Tail))
			}
			if err != nil {
				return nil, err
			}
			d := SameTree(tree, out)
			if d == "" {
				same[i]++
			} else {
				diffs = append(diffs, tl.name+": "+d)
			}
			c.logf("round %d/%d %-14s %.2fs user %.2fs sys %.2fs identical=%v", round, c.Rounds, tl.name, p.Wall.Seconds(), p.User.Seconds(), p.Sys.Seconds(), d == "")
			procs[i] = append(procs[i], p)
		}
	}
	removeAll(out)
	t := Table{Title: "Restore against tar", Note: fmt.Sprintf("%s site, %d entries, %d parts of tar.gz, %s; extracted into %s; medians of %d runs",
		units.FormatBytes(c.SiteSize), files, len(s.Parts), units.FormatBytes(s.Size), outDir, c.Rounds),
		Head: []string{"tool", "seconds", "MB/s of archive", "user s", "sys s", "max RSS MiB", "identical"}}
	w := make([]float64, len(tools))
	for i, tl := range tools {
		xs, us, ss, rs := []float64{}, []float64{}, []float64{}, []float64{}
		for _, p := range procs[i] {
			xs = append(xs, p.Wall.Seconds())
			us = append(us, p.User.Seconds())
			ss = append(ss, p.Sys.Seconds())
			rs = append(rs, float64(p.MaxRSS))
		}
		w[i] = Median(xs)
		t.Rows = append(t.Rows, []string{tl.name, fmt.Sprintf("%.2f", w[i]), fmt.Sprintf("%.0f", float64(s.Size)/1e6/w[i]),
			fmt.Sprintf("%.2f", Median(us)), fmt.Sprintf("%.2f", Median(ss)), mib(Median(rs)), fmt.Sprintf("%d/%d", same[i], len(procs[i]))})
	}
	rep := &Report{Name: "(f) restore"}
	rep.Tables = append(rep.Tables, t)
	rep.Checks = append(rep.Checks, Check{Target: "haul restore at least as fast as tar -xzf on the same archive",
		Got: fmt.Sprintf("haul %.2fs, tar %.2fs: ratio %.3f", w[0], w[1], w[0]/w[1]), Met: w[0] <= w[1]})
	for _, d := range diffs {
		rep.Notes = append(rep.Notes, "not identical: "+d)
	}
	return rep, nil
}

// siteSet writes a generated site into tree and its split tar.gz (four
// parts or more) with references into dir.
func siteSet(ctx context.Context, tree, dir string, size int64, seed int64) (*Set, error) {
	if err := gen.Tree(tree, seed, size); err != nil {
		return nil, err
	}
	// About half the site is text that deflates well: parts of an
	// eighth of the site give four to six parts.
	paths, err := gen.SplitTarGz(tree, dir, "site.tar.gz", max(size/8, 1<<20), gen.FormatGzip)
	if err != nil {
		return nil, err
	}
	return finishSet(ctx, dir, tree, paths, 8<<20)
}

func joinParts(s *Set, file string) error {
	out, err := os.Create(file)
	if err != nil {
		return err
	}
	for _, n := range s.Parts {
		in, err := os.Open(filepath.Join(s.Dir, n))
		if err != nil {
			out.Close()
			return err
		}
		_, err = out.ReadFrom(in)
		in.Close()
		if err != nil {
			out.Close()
			return err
		}
	}
	return out.Close()
}

func countEntries(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(string, os.DirEntry, error) error { n++; return nil })
	return n, err
}

// syncFS flushes dirty pages so that one run's writeback does not land in
// the next run's time.
func syncFS() { syscall.Sync() }
