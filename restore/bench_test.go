package restore

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/haul-dev/haul/internal/gen"
)

// BenchmarkRestoreTarGz restores one archive of a generated site, made by
// GNU tar with gzip, with haul and with `tar -xzf`; see benchAgainstTar.
// HAUL_BENCH_MB sets the tree size (default 256).
func BenchmarkRestoreTarGz(b *testing.B) {
	needCommand(b, "tar")
	needCommand(b, "gzip")
	dir := b.TempDir()
	chmodWritable(b, dir)
	src := filepath.Join(dir, "src")
	if err := gen.Tree(src, 42, envInt(b, "HAUL_BENCH_MB", 256)<<20); err != nil {
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
	benchAgainstTar(b, dir, archive, treeBytes)
}

// BenchmarkRestoreSmallFiles restores HAUL_BENCH_FILES (default 100,000)
// small text files (64 B to 16 KiB, about 1 KiB on average) in 100
// directories, one tar.gz written by archive/tar and gzip: the cost of
// creating files, not of decompressing. TMPDIR picks the file system
// (/dev/shm for a tmpfs).
func BenchmarkRestoreSmallFiles(b *testing.B) {
	n := int(envInt(b, "HAUL_BENCH_FILES", 100_000))
	rng := rand.New(rand.NewPCG(7, 11))
	sizes := make([]int, n)
	for i := range sizes {
		sizes[i] = min(int(rng.ExpFloat64()*1000)+64, 16<<10)
	}
	benchSynthetic(b, 100, sizes)
}

// BenchmarkRestoreBigFiles restores a few large files (HAUL_BENCH_MB in
// all, default 512, in files of 64 MiB), half random and half text: the
// cost of decompressing and writing, not of creating files.
func BenchmarkRestoreBigFiles(b *testing.B) {
	total := int(envInt(b, "HAUL_BENCH_MB", 512))
	sizes := make([]int, 0, total/64+1)
	for left := total; left > 0; left -= 64 {
		sizes = append(sizes, min(left, 64)<<20)
	}
	benchSynthetic(b, 1, sizes)
}

// benchSynthetic writes a tar.gz of files of the given sizes spread over
// dirs directories, with distinct modes and mtimes, and restores it
// against tar.
func benchSynthetic(b *testing.B, dirs int, sizes []int) {
	needCommand(b, "tar")
	needCommand(b, "gzip")
	dir := b.TempDir()
	archive := filepath.Join(dir, "files.tar.gz")
	f, err := os.Create(archive)
	if err != nil {
		b.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	rng := rand.New(rand.NewPCG(3, 5))
	when := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	line := []byte("<?php $APPLICATION->IncludeComponent('bitrix:news.list', '', array('IBLOCK_ID' => 1)); ?>\n")
	var data []byte
	var treeBytes int64
	for d := range dirs {
		h := &tar.Header{Typeflag: tar.TypeDir, Name: fmt.Sprintf("d%03d/", d), Mode: 0o755, ModTime: when}
		if err := tw.WriteHeader(h); err != nil {
			b.Fatal(err)
		}
		for i := d; i < len(sizes); i += dirs {
			data = fileData(data[:0], rng, sizes[i], i%2 == 1 && sizes[i] > 1<<20, line)
			h := &tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("d%03d/file%06d.php", d, i), Size: int64(len(data)),
				Mode: int64(0o600 + 0o44*(i%2)), ModTime: when.Add(time.Duration(i) * time.Second)}
			if err := tw.WriteHeader(h); err != nil {
				b.Fatal(err)
			}
			if _, err := tw.Write(data); err != nil {
				b.Fatal(err)
			}
			treeBytes += int64(len(data))
		}
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	benchAgainstTar(b, dir, archive, treeBytes)
}

// fileData returns n bytes: random ones, or lines of text.
func fileData(data []byte, rng *rand.Rand, n int, random bool, line []byte) []byte {
	if random {
		data = slices.Grow(data, n)[:n]
		for i := 0; i+8 <= n; i += 8 {
			binary.LittleEndian.PutUint64(data[i:], rng.Uint64())
		}
		return data
	}
	for len(data) < n {
		data = append(data, line...)
	}
	return data[:n]
}

// benchAgainstTar restores archive with haul and with `tar -xzf`, the
// same number of times in the same run, interleaved and alternating who
// goes first, into fresh directories under dir. It reports the medians:
// haul-s and tar-s (seconds per restore), tar+sync-s (tar followed by
// `sync -f`, like-for-like with haul's syncfs before the tree is moved
// into place), and x-tar, haul's time as a multiple of tar's (the issue's
// ratio: under 1 is faster); MB/s is of the tree; haul-cpu-s and
// tar-cpu-s are the CPU seconds (user + system) each spent, tar's with
// its gzip, which tell the costs apart on a busy machine. Run with
// -benchtime Nx.
func benchAgainstTar(b *testing.B, dir, archive string, treeBytes int64) {
	chmodWritable(b, dir)
	parts := []Part{{Name: filepath.Base(archive), Path: archive}}
	clean := func(p string) {
		if err := removeTree(p); err != nil {
			b.Fatal(err)
		}
	}
	var haulCPU, tarCPU []float64
	runHaul := func(into string) time.Duration {
		cpu := cpuTime(true)
		start := time.Now()
		if err := Restore(context.Background(), parts, Options{Into: into}); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		haulCPU = append(haulCPU, cpuTime(true)-cpu)
		return d
	}
	runTar := func(into string) (tarT, syncT time.Duration) {
		if err := os.Mkdir(into, 0o755); err != nil {
			b.Fatal(err)
		}
		cpu := cpuTime(false)
		start := time.Now()
		if out, err := exec.Command("tar", "-C", into, "-xzf", archive).CombinedOutput(); err != nil {
			b.Fatalf("tar: %v: %s", err, out)
		}
		tarT = time.Since(start)
		tarCPU = append(tarCPU, cpuTime(false)-cpu)
		if out, err := exec.Command("sync", "-f", into).CombinedOutput(); err != nil {
			b.Fatalf("sync: %v: %s", err, out)
		}
		return tarT, time.Since(start)
	}
	var haul, tarT, tarSync []float64
	b.SetBytes(treeBytes)
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		into := filepath.Join(dir, "out"+strconv.Itoa(i))
		if i%2 == 1 {
			t, s := runTar(into)
			tarT, tarSync = append(tarT, t.Seconds()), append(tarSync, s.Seconds())
			clean(into)
		}
		b.StartTimer()
		haul = append(haul, runHaul(into).Seconds())
		b.StopTimer()
		clean(into)
		if i%2 == 0 {
			t, s := runTar(into)
			tarT, tarSync = append(tarT, t.Seconds()), append(tarSync, s.Seconds())
			clean(into)
		}
	}
	h, t, s := median(haul), median(tarT), median(tarSync)
	b.ReportMetric(h, "haul-s")
	b.ReportMetric(t, "tar-s")
	b.ReportMetric(s, "tar+sync-s")
	b.ReportMetric(h/t, "x-tar")
	b.ReportMetric(h/s, "x-tar+sync")
	b.ReportMetric(median(haulCPU), "haul-cpu-s")
	b.ReportMetric(median(tarCPU), "tar-cpu-s")
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	if len(xs) == 0 {
		return 0
	}
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

func envInt(b *testing.B, name string, def int64) int64 {
	if s := os.Getenv(name); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v <= 0 {
			b.Fatalf("%s=%q: want a positive number", name, s)
		}
		return v
	}
	return def
}
