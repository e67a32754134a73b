package bench

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/internal/units"
)

// ScaleRun is one set of the scale scenario: Parts files of Size bytes.
type ScaleRun struct {
	Parts int
	Size  int64
}

// Scale is scenario (h), issue 12: many parts and many pieces from a
// local directory. Each set of c.ScaleRuns is fetched by haul (proving
// every part against SHA256SUMS) and copied by `rsync -a --fsync`,
// interleaved, c.Rounds times; then one part of c.ScaleBig bytes at
// --chunk-size 256K against `cp && sync`; and at the largest set the max
// RSS of fetch, status, verify and restore (each set is a tar cut into
// parts, so it restores).
func (c *Config) Scale(ctx context.Context) (*Report, error) {
	rep := &Report{Name: "(h) scale: many parts, many pieces, from a local directory"}
	rsync, err := exec.LookPath("rsync")
	if err != nil {
		return nil, fmt.Errorf("rsync not found (apt-get install rsync): %w", err)
	}
	t := Table{Title: "Many parts: haul fetch (every part proven against SHA256SUMS) against rsync -a --fsync",
		Note: fmt.Sprintf("medians of %d interleaved runs; ms/part is haul's wall time per part", c.Rounds),
		Head: []string{"parts", "part size", "haul s", "rsync s", "ratio", "haul ms/part", "haul CPU s", "haul CPU ms/part", "haul max RSS MiB", "identical"}}
	var largest string
	most := 0 // the set with the most parts: fetch, status, verify and restore are measured there
	for i, sr := range c.ScaleRuns {
		if sr.Parts > c.ScaleRuns[most].Parts {
			most = i
		}
	}
	for i, sr := range c.ScaleRuns {
		src := filepath.Join(c.Work, fmt.Sprintf("scale%d-src", i))
		c.logf("generating %d parts of %s", sr.Parts, units.FormatBytes(sr.Size))
		sum, err := manyParts(src, sr.Parts, sr.Size, int64(c.Seed))
		if err != nil {
			return nil, err
		}
		dest, copyTo := filepath.Join(c.Work, "scale-dest"), filepath.Join(c.Work, "scale-rsync")
		var hs, rs []Proc
		same := "yes"
		for r := 0; r < c.Rounds; r++ {
			removeAll(dest)
			removeAll(copyTo)
			syncFS()
			h, err := c.haulCmd(ctx, "fetch", "--progress", "none", src, dest)
			if err != nil {
				return nil, err
			}
			if d := sameDir(src, dest); d != "" {
				same = "NO: " + d
			}
			syncFS()
			p, err := runProc(ctx, exec.Command(rsync, "-a", "--fsync", src+"/", copyTo+"/"), c.Limit)
			if err != nil || p.Exit != 0 {
				return nil, fmt.Errorf("rsync: exit %d %v: %s", p.Exit, err, lastLine(p.Tail))
			}
			hs, rs = append(hs, h), append(rs, p)
			c.logf("%d × %s: haul %.2fs (RSS %s), rsync %.2fs", sr.Parts, units.FormatBytes(sr.Size), h.Wall.Seconds(), units.FormatBytes(h.MaxRSS), p.Wall.Seconds())
		}
		hw, rw := medianOf(hs, wallOf), medianOf(rs, wallOf)
		t.Rows = append(t.Rows, []string{fmt.Sprint(sr.Parts), units.FormatBytes(sr.Size), fmt.Sprintf("%.2f", hw), fmt.Sprintf("%.2f", rw),
			fmt.Sprintf("%.2f", hw/rw), fmt.Sprintf("%.2f", 1000*hw/float64(sr.Parts)), fmt.Sprintf("%.2f", medianOf(hs, cpuOf)),
			fmt.Sprintf("%.2f", 1000*medianOf(hs, cpuOf)/float64(sr.Parts)), mib(medianOf(hs, rssOf)), same})
		if i == most {
			largest = fmt.Sprintf("%d parts", sr.Parts)
			rep.Checks = append(rep.Checks, Check{Target: fmt.Sprintf("haul fetch at %s: max RSS ≤ 100 MB", largest),
				Got: mib(medianOf(hs, rssOf)) + " MiB", Met: medianOf(hs, rssOf) <= 100e6})
			cs, err := c.scaleSteps(ctx, dest, sum, largest)
			if err != nil {
				return nil, err
			}
			rep.Checks = append(rep.Checks, cs...)
		}
		removeAll(src)
		removeAll(dest)
		removeAll(copyTo)
	}
	if len(c.ScaleRuns) > 0 {
		rep.Tables = append(rep.Tables, t)
	}
	if c.ScaleBig > 0 {
		bt, err := c.scaleBig(ctx)
		if err != nil {
			return nil, err
		}
		rep.Tables = append(rep.Tables, bt)
	}
	return rep, nil
}

// scaleSteps runs status, verify and restore on the fetched set in dest
// and checks each one's max RSS; the restored data.bin must have the
// SHA-256 sum.
func (c *Config) scaleSteps(ctx context.Context, dest, sum, largest string) ([]Check, error) {
	into := filepath.Join(c.Work, "scale-restored")
	removeAll(into)
	defer removeAll(into)
	var checks []Check
	for _, args := range [][]string{{"status", dest}, {"verify", dest}, {"restore", "--progress", "none", dest, "--into", into}} {
		p, err := c.haulCmd(ctx, args...)
		if err != nil {
			return nil, err
		}
		c.logf("haul %s at %s: %.1fs, %.1f CPU s, max RSS %s", args[0], largest, p.Wall.Seconds(), p.CPU().Seconds(), units.FormatBytes(p.MaxRSS))
		checks = append(checks, Check{Target: fmt.Sprintf("haul %s at %s: max RSS ≤ 100 MB", args[0], largest),
			Got: fmt.Sprintf("%s MiB (%.1f s, %.1f CPU s)", mib(float64(p.MaxRSS)), p.Wall.Seconds(), p.CPU().Seconds()), Met: p.MaxRSS <= 100e6})
	}
	got, _, err := sha256File(filepath.Join(into, "data.bin"))
	if err != nil {
		return nil, err
	}
	checks = append(checks, Check{Target: fmt.Sprintf("haul restore at %s gives back the archived bytes", largest),
		Got: "sha256 " + got[:12] + "…", Met: got == sum})
	return checks, nil
}

// scaleBig fetches one part of c.ScaleBig bytes at --chunk-size 256K and
// copies it with cp && sync, alternating which goes first. Each run starts
// from the same state (settle): outputs removed, dirty pages written, the
// page cache dropped where the bench may (root), the source read once so
// that both tools read it from memory, and a pause for the disk to finish
// what the run before left it.
func (c *Config) scaleBig(ctx context.Context) (Table, error) {
	src := filepath.Join(c.Work, "scale-big-src")
	t := Table{Title: fmt.Sprintf("One part of %s at --chunk-size 256K against cp && sync", units.FormatBytes(c.ScaleBig)),
		Head: []string{"pieces", "haul s", "cp && sync s", "ratio", "per-round ratios", "haul CPU s", "cp CPU s", "haul max RSS MiB", "snapshots", "state.log bytes at the end", "load average", "identical"}}
	if _, err := manyParts(src, 1, c.ScaleBig, int64(c.Seed)); err != nil {
		return t, err
	}
	defer removeAll(src)
	dest, copyTo := filepath.Join(c.Work, "scale-big-dest"), filepath.Join(c.Work, "scale-big-cp")
	dropped := false
	settle := func() {
		removeAll(dest)
		removeAll(copyTo)
		os.MkdirAll(copyTo, 0o755)
		syncFS()
		dropped = dropCaches()
		readAll(src)
		time.Sleep(c.SettleBig)
	}
	var hs, cs []Proc
	var ratios, loads []string
	same, snaps, logBytes := "yes", "", ""
	for r := 0; r < c.Rounds; r++ {
		var h, p Proc
		haulRun := func() error {
			settle()
			var err error
			if h, err = c.haulCmd(ctx, "fetch", "--progress", "none", "--chunk-size", "256K", src, dest); err != nil {
				return err
			}
			if st, err := chunk.Load(dest); err == nil {
				snaps = fmt.Sprint(st.Gen)
			}
			if fi, err := os.Stat(chunk.LogPath(dest)); err == nil {
				logBytes = fmt.Sprint(fi.Size())
			}
			if d := sameDir(src, dest); d != "" {
				same = "NO: " + d
			}
			return nil
		}
		cpRun := func() error {
			settle()
			var err error
			p, err = runProc(ctx, exec.Command("sh", "-c", `cp -r "$1"/. "$2"/ && sync`, "sh", src, copyTo), c.Limit)
			if err != nil || p.Exit != 0 {
				return fmt.Errorf("cp: exit %d %v: %s", p.Exit, err, lastLine(p.Tail))
			}
			return nil
		}
		first, second := haulRun, cpRun
		if r%2 == 1 {
			first, second = cpRun, haulRun
		}
		if err := first(); err != nil {
			return t, err
		}
		if err := second(); err != nil {
			return t, err
		}
		hs, cs = append(hs, h), append(cs, p)
		ratios = append(ratios, fmt.Sprintf("%.2f", h.Wall.Seconds()/p.Wall.Seconds()))
		loads = append(loads, loadAverage())
		c.logf("%s part: haul %.2fs (%.2f CPU s), cp && sync %.2fs (%.2f CPU s), load %s", units.FormatBytes(c.ScaleBig), h.Wall.Seconds(), h.CPU().Seconds(), p.Wall.Seconds(), p.CPU().Seconds(), loads[r])
	}
	removeAll(dest)
	removeAll(copyTo)
	cache := "the page cache dropped, "
	if !dropped {
		cache = "the page cache not dropped (not root), "
	}
	t.Note = fmt.Sprintf("medians of %d runs, haul and cp alternating which goes first; before each run %sthe source read once, then a %s pause; snapshots is how often state.json was rewritten (the log takes the commits between)", c.Rounds, cache, c.SettleBig)
	hw, cw := medianOf(hs, wallOf), medianOf(cs, wallOf)
	t.Rows = append(t.Rows, []string{fmt.Sprint(chunk.Pieces(c.ScaleBig, 256<<10)), fmt.Sprintf("%.2f", hw), fmt.Sprintf("%.2f", cw), fmt.Sprintf("%.2f", hw/cw),
		strings.Join(ratios, " / "), fmt.Sprintf("%.2f", medianOf(hs, cpuOf)), fmt.Sprintf("%.2f", medianOf(cs, cpuOf)), mib(medianOf(hs, rssOf)), snaps, logBytes,
		strings.Join(loads, " / "), same})
	return t, nil
}

// dropCaches asks the kernel to drop clean page-cache pages, dentries and
// inodes (root only); it reports whether it could.
func dropCaches() bool {
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0) == nil
}

// readAll reads every file under dir once, so that it is in the page cache.
func readAll(dir string) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if f, err := os.Open(p); err == nil {
				io.Copy(io.Discard, f)
				f.Close()
			}
		}
		return nil
	})
}

// loadAverage is the 1-minute load average, "?" where /proc has none.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

func wallOf(p Proc) float64 { return p.Wall.Seconds() }
func cpuOf(p Proc) float64  { return p.CPU().Seconds() }
func rssOf(p Proc) float64  { return float64(p.MaxRSS) }

func medianOf(ps []Proc, f func(Proc) float64) float64 {
	xs := make([]float64, len(ps))
	for i, p := range ps {
		xs[i] = f(p)
	}
	return Median(xs)
}

// manyParts writes a tar of one member, data.bin, of random bytes, cut
// into n parts of size bytes (data.tar.000001 …, so the set restores),
// and their SHA256SUMS into dir. It returns the SHA-256 (hex) of
// data.bin, which a restore must give back. size must be a multiple of
// 512 and n×size at least 2 KiB: the tar's header and end blocks take
// three of those 512-byte blocks.
func manyParts(dir string, n int, size int64, seed int64) (string, error) {
	if err := removeAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if size%512 != 0 || int64(n)*size < 4*512 {
		return "", fmt.Errorf("scale set: %d parts of %d bytes cannot hold a tar", n, size)
	}
	cw := &cutWriter{dir: dir, size: size}
	tw := tar.NewWriter(cw)
	member := int64(n)*size - 3*512
	hdr := &tar.Header{Name: "data.bin", Mode: 0o644, Size: member, Typeflag: tar.TypeReg,
		ModTime: time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC), Format: tar.FormatGNU}
	if err := tw.WriteHeader(hdr); err != nil {
		return "", err
	}
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(n)))
	buf := make([]byte, 1<<20)
	h := sha256.New()
	for left := member; left > 0; {
		k := min(left, int64(len(buf)))
		for j := 0; j < int(k); j += 8 {
			v := rng.Uint64()
			for b := 0; b < 8 && j+b < int(k); b++ {
				buf[j+b] = byte(v >> (8 * b))
			}
		}
		if _, err := tw.Write(buf[:k]); err != nil {
			return "", err
		}
		h.Write(buf[:k])
		left -= k
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := cw.close(); err != nil {
		return "", err
	}
	if cw.parts != n {
		return "", fmt.Errorf("scale set: wrote %d parts, wanted %d", cw.parts, n)
	}
	return hex.EncodeToString(h.Sum(nil)), os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(cw.sums.String()), 0o644)
}

// cutWriter writes a stream into files of size bytes, data.tar.000001 …,
// and lists their SHA-256 in sums.
type cutWriter struct {
	dir   string
	size  int64
	parts int
	f     *os.File
	left  int64
	h     hash.Hash
	sums  strings.Builder
}

func (w *cutWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if w.f == nil {
			w.parts++
			f, err := os.Create(filepath.Join(w.dir, fmt.Sprintf("data.tar.%06d", w.parts)))
			if err != nil {
				return n, err
			}
			w.f, w.left, w.h = f, w.size, sha256.New()
		}
		k := min(int64(len(p)), w.left)
		if _, err := w.f.Write(p[:k]); err != nil {
			return n, err
		}
		w.h.Write(p[:k])
		n, p, w.left = n+int(k), p[k:], w.left-k
		if w.left == 0 {
			if err := w.close(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (w *cutWriter) close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	fmt.Fprintf(&w.sums, "%s  %s\n", hex.EncodeToString(w.h.Sum(nil)), filepath.Base(w.f.Name()))
	w.f = nil
	return err
}

// sameDir compares every regular file of src with the one of that name in
// dst, "" when all are identical.
func sameDir(src, dst string) string {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err.Error()
	}
	for _, e := range ents {
		if e.Name() == "SHA256SUMS" {
			continue
		}
		if d := sameFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); d != "" {
			return e.Name() + ": " + d
		}
	}
	return ""
}
