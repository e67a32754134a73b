package fetch

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/haul-dev/haul/chunk"
)

// rchar is the bytes this process has read so far through read(2) and
// friends, page cache included (/proc/self/io): content read shows here,
// a stat does not.
func rchar(b *testing.B) int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		b.Skip("no /proc/self/io here")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "rchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no rchar in /proc/self/io")
	return 0
}

// BenchmarkRecheckVerifiedSet: the check every verdict gives first
// (status, repair, and restore before it reads) on a 1,000-part verified
// set where nothing changed costs a stat per part: the bytes read per
// operation are the state file's, no part's content.
//
//	go test ./fetch -run '^$' -bench BenchmarkRecheckVerifiedSet -benchtime 20x
func BenchmarkRecheckVerifiedSet(b *testing.B) {
	const parts, size = 1000, 64 << 10
	src, dest := b.TempDir(), b.TempDir()
	var sums strings.Builder
	for i := range parts {
		name := fmt.Sprintf("set.bin.%04d", i)
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(i*31 + j*7)
		}
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&sums, "%x  %s\n", sha256Of(data), name)
	}
	if err := os.WriteFile(filepath.Join(src, "SHA256SUMS"), []byte(sums.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := Fetch(ctx, testOptions(src+"/", dest)); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(chunk.StatePath(dest))
	if err != nil {
		b.Fatal(err)
	}
	run := func(name string, op func() error) {
		b.Run(name, func(b *testing.B) {
			before := rchar(b)
			for b.Loop() {
				if err := op(); err != nil {
					b.Fatal(err)
				}
			}
			read := float64(rchar(b)-before) / float64(b.N)
			b.ReportMetric(read, "read-B/op")
			b.ReportMetric(read/float64(fi.Size()), "state-files-read/op")
			b.ReportMetric(read/float64(parts*size), "set-content-read/op")
		})
	}
	run("status", func() error {
		st, changes, err := LoadChecked(ctx, dest)
		if err == nil && (len(changes) > 0 || len(st.Parts) != parts) {
			err = fmt.Errorf("%d changes, %d parts", len(changes), len(st.Parts))
		}
		return err
	})
	run("restore-check", func() error {
		changes, err := CheckDest(ctx, dest)
		if err == nil && len(changes) > 0 {
			err = fmt.Errorf("%d changes", len(changes))
		}
		return err
	})
	run("repair", func() error {
		s, err := Repair(ctx, testOptions(src+"/", dest), "")
		if err == nil && s.Verified != parts {
			err = fmt.Errorf("%d verified", s.Verified)
		}
		return err
	})
}

func sha256Of(b []byte) [32]byte { return sha256.Sum256(b) }
