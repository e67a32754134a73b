package restore

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/haul-dev/haul/internal/gen"
)

// BenchmarkRestoreTarGz restores one archive, made by GNU tar with gzip,
// with haul and with `tar -xzf`, the same number of times in the same
// run, and reports both rates (MB of tree per second) and their ratio.
// haul's time includes its syncfs before the tree is moved into place;
// "tar+sync-MB/s" is tar followed by `sync -f`, the like-for-like
// durable figure. HAUL_BENCH_MB sets the tree size (default 256).
func BenchmarkRestoreTarGz(b *testing.B) {
	needCommand(b, "tar")
	needCommand(b, "gzip")
	mb := int64(256)
	if s := os.Getenv("HAUL_BENCH_MB"); s != "" {
		if v, err := strconv.ParseInt(s, 10, 64); err == nil && v > 0 {
			mb = v
		}
	}
	dir := b.TempDir()
	chmodWritable(b, dir)
	src := filepath.Join(dir, "src")
	if err := gen.Tree(src, 42, mb<<20); err != nil {
		b.Fatal(err)
	}
	archive := filepath.Join(dir, "site.tar.gz")
	if out, err := exec.Command("tar", "-C", src, "-czf", archive, ".").CombinedOutput(); err != nil {
		b.Fatalf("tar: %v: %s", err, out)
	}
	var treeBytes int64
	_ = filepath.Walk(src, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			treeBytes += fi.Size()
		}
		return nil
	})
	parts := []Part{{Name: "site.tar.gz", Path: archive}}
	fresh := func(i int, who string) string {
		return filepath.Join(dir, who+strconv.Itoa(i))
	}
	clean := func(p string) {
		if err := removeTree(p); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(treeBytes)
	b.ResetTimer()
	// Interleaved, so both see the same state of the file system.
	var haul, tarT, tarSync time.Duration
	for i := 0; i < b.N; i++ {
		into := fresh(i, "haul")
		start := time.Now()
		if err := Restore(context.Background(), parts, Options{Into: into}); err != nil {
			b.Fatal(err)
		}
		haul += time.Since(start)
		b.StopTimer()
		clean(into)

		into = fresh(i, "tar")
		if err := os.Mkdir(into, 0o755); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if out, err := exec.Command("tar", "-C", into, "-xzf", archive).CombinedOutput(); err != nil {
			b.Fatalf("tar: %v: %s", err, out)
		}
		tarT += time.Since(start)
		if out, err := exec.Command("sync", "-f", into).CombinedOutput(); err != nil {
			b.Fatalf("sync: %v: %s", err, out)
		}
		tarSync += time.Since(start)
		clean(into)
		b.StartTimer()
	}
	b.StopTimer()
	rate := func(d time.Duration) float64 {
		return float64(treeBytes) * float64(b.N) / d.Seconds() / 1e6
	}
	b.ReportMetric(rate(haul), "haul-MB/s")
	b.ReportMetric(rate(tarT), "tar-MB/s")
	b.ReportMetric(rate(tarSync), "tar+sync-MB/s")
	b.ReportMetric(tarT.Seconds()/haul.Seconds(), "haul/tar")
	b.ReportMetric(tarSync.Seconds()/haul.Seconds(), "haul/tar+sync")
}
