package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/haul-dev/haul/fetch"
	"github.com/haul-dev/haul/fetch/multi"
	"github.com/haul-dev/haul/internal/faultserver"
)

// The mirror benchmark's set and links (issue 13, acceptance 2): 12 MiB
// in 8 parts with 256 KiB pieces, each source capped like the night's
// link (100 000 B/s per connection, 1 000 000 B/s in all), -j 10 per
// source; the slow mirror at a tenth of that.
const (
	mirrorBenchParts     = 8
	mirrorBenchPartSize  = 1536 << 10
	mirrorBenchPiece     = 256 << 10
	mirrorBenchConnRate  = 100_000
	mirrorBenchTotalRate = 1_000_000
	mirrorBenchConns     = 10
)

// BenchmarkMirrors measures what a mirror is worth: the set fetched
// in-process from the primary alone, from the primary and a mirror with
// the same caps, and from the primary and a mirror ten times slower, each
// from fresh fault servers, interleaved round by round. It reports the
// medians, "both/one" (the primary alone's time over the time with an
// equal mirror, target ≥ 1.8), "slow/one" (the time with the slow mirror
// over the primary alone's, target ≤ 1.05; also its worst round, against
// the primary alone in the same round) and the share of the set the slow
// mirror delivered:
//
//	go test ./internal/bench -run '^$' -bench Mirrors -benchtime 3x -timeout 20m
func BenchmarkMirrors(b *testing.B) {
	if testing.Short() {
		b.Skip("fetches 12 MiB over capped links three times a round")
	}
	s := randomSet(b, "mirrors", mirrorBenchParts, mirrorBenchPartSize, mirrorBenchPiece)
	fast := []faultserver.Option{faultserver.ConnRate(mirrorBenchConnRate), faultserver.TotalRate(mirrorBenchTotalRate)}
	slow := []faultserver.Option{faultserver.ConnRate(mirrorBenchConnRate / 10), faultserver.TotalRate(mirrorBenchTotalRate / 10)}
	runs := []struct {
		name   string
		mirror []faultserver.Option // nil: the primary alone
	}{{"one", nil}, {"both", fast}, {"slow", slow}}
	walls := map[string][]float64{}
	var slowShare []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, r := range runs {
			b.StopTimer()
			primary := faultserver.New(s.Dir, fast...)
			var urls []string
			for _, n := range s.Parts {
				urls = append(urls, primary.URL(n))
			}
			o := fetch.Options{Sources: urls, Dest: filepath.Join(b.TempDir(), "dest"),
				Connections: mirrorBenchConns, PieceSize: mirrorBenchPiece}
			var mirror *faultserver.Server
			if r.mirror != nil {
				mirror = faultserver.New(s.Dir, r.mirror...)
				o.Mirrors = []multi.Mirror{{URL: mirror.URL(""), Conns: -1}}
			}
			b.StartTimer()
			t0 := time.Now()
			sum, err := fetch.Fetch(context.Background(), o)
			wall := time.Since(t0).Seconds()
			b.StopTimer()
			primary.Close()
			if mirror != nil {
				mirror.Close()
			}
			if err != nil {
				b.Fatalf("%s: %v", r.name, err)
			}
			if sum.Verified != len(s.Parts) {
				b.Fatalf("%s: %d of %d parts verified: %+v", r.name, sum.Verified, len(s.Parts), sum)
			}
			if diff := SameParts(s, o.Dest); diff != "" {
				b.Fatalf("%s: not identical: %s", r.name, diff)
			}
			walls[r.name] = append(walls[r.name], wall)
			var got []string
			for _, a := range sum.Sources {
				got = append(got, fmt.Sprintf("%s %d", a.Source, a.Bytes))
				if r.name == "slow" && mirror != nil && a.Source == mirror.URL("") {
					slowShare = append(slowShare, float64(a.Bytes)/float64(s.Size))
				}
			}
			b.Logf("round %d: %s %.2fs, %v", i, r.name, wall, got)
			b.StartTimer()
		}
	}
	b.StopTimer()
	one, both, slowT := Median(walls["one"]), Median(walls["both"]), Median(walls["slow"])
	b.ReportMetric(one, "one-s")
	b.ReportMetric(both, "both-s")
	b.ReportMetric(slowT, "slow-s")
	b.ReportMetric(one/both, "both/one")
	b.ReportMetric(slowT/one, "slow/one")
	// The worst round: the target is for every night, not the median one.
	worst := 0.0
	for i := range walls["slow"] {
		worst = max(worst, walls["slow"][i]/walls["one"][i])
	}
	b.ReportMetric(worst, "slow/one-worst")
	b.ReportMetric(Median(slowShare)*100, "slow-mirror-%")
}
