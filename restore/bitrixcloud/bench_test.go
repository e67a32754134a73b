package bitrixcloud

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haul-dev/haul/fetch"
	"github.com/haul-dev/haul/internal/retry"
)

// BenchmarkList20k is the step's own cost on a list of 20,000 small
// files from a local host (the bytes are nothing; what is measured is
// the engine runs, plans, state and placing), per batch size, with no
// miss and with 1% of the files missing (each miss ends an engine run
// and the rest of its batch runs again).
func BenchmarkList20k(b *testing.B) {
	for _, size := range []int{64, 256, 1024, 4096} {
		for _, missEvery := range []int{0, 100} {
			b.Run(fmt.Sprintf("batch=%d/miss=%d", size, missEvery), func(b *testing.B) {
				defer func(m int) { maxBatch = m }(maxBatch)
				maxBatch = size
				benchList(b, 20_000, missEvery)
			})
		}
	}
}

func benchList(b *testing.B, n, missEvery int) {
	// The host serves any path ending in /SIZE with SIZE bytes, and 404
	// for a path with "gone" in it.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "gone") {
			http.NotFound(w, r)
			return
		}
		size, _ := strconv.Atoi(r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:])
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(bytes.Repeat([]byte{'x'}, size)))
	}))
	defer srv.Close()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		root, work := b.TempDir(), b.TempDir()
		if err := writeBenchList(filepath.Join(root, ListTxt), n, missEvery); err != nil {
			b.Fatal(err)
		}
		o := Options{Root: root, Work: work, Hosts: []string{srv.URL},
			Fetch: fetch.Options{Connections: 8, Retries: 1, Timeout: 5 * time.Second, Backoff: retry.FastBackoff}}
		b.StartTimer()
		t := time.Now()
		res, err := Run(context.Background(), o)
		if err != nil && missEvery == 0 {
			b.Fatal(err)
		}
		if res.Fetched+res.Missing != n {
			b.Fatalf("result %+v", res)
		}
		b.ReportMetric(float64(time.Since(t).Microseconds())/float64(n), "µs/file")
	}
}

func writeBenchList(p string, n, missEvery int) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for i := range n {
		dir := "iblock"
		if missEvery > 0 && i%missEvery == missEvery-1 {
			dir = "gone"
		}
		size := 100 + i%900
		fmt.Fprintf(w, "2026-11-01 03:00:00 %d bucket/%s/%03d/f%d/%d\n", size, dir, i%1000, i, size)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
