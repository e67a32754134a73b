package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/haul-dev/haul/internal/faultserver"
	"github.com/haul-dev/haul/internal/units"
)

// Link is a simulated link between the storage and the host.
type Link struct {
	ConnRate  int64 // bytes/s per connection (0: none)
	TotalRate int64 // bytes/s over all connections (0: none)
	// ResetProb is the chance that a response is cut with a TCP reset
	// after ResetAfter bytes of body.
	ResetProb  float64
	ResetAfter int64
	// Flips damages this many bytes of the set (one bit each), at
	// positions drawn from Seed, the first time each is sent.
	Flips int
	Seed  uint64
}

func (l Link) String() string {
	var b []string
	rate := func(n int64) string {
		if n <= 0 {
			return "none"
		}
		return units.FormatBytes(n) + "/s"
	}
	b = append(b, "per connection "+rate(l.ConnRate), "total "+rate(l.TotalRate))
	if l.ResetProb > 0 {
		b = append(b, fmt.Sprintf("resets %.0f%% of responses after %s", l.ResetProb*100, units.FormatBytes(l.ResetAfter)))
	}
	if l.Flips > 0 {
		b = append(b, fmt.Sprintf("%d bit flips", l.Flips))
	}
	return strings.Join(b, ", ")
}

// Spots returns where the link flips bits in s: part name → offsets.
func (l Link) Spots(s *Set) map[string][]int64 {
	rng := rand.New(rand.NewPCG(l.Seed, 0x5eed))
	out := map[string][]int64{}
	sizes := map[string]int64{}
	for _, n := range s.Parts {
		fi, err := os.Stat(filepath.Join(s.Dir, n))
		if err == nil {
			sizes[n] = fi.Size()
		}
	}
	for k := 0; k < l.Flips; k++ {
		// Spread over the set: the k-th flip lands in the k-th slice of
		// parts, past the headers a structural check would read first.
		n := s.Parts[(k*len(s.Parts)/max(l.Flips, 1)+rng.IntN(2))%len(s.Parts)]
		if sizes[n] < 1024 {
			continue
		}
		out[n] = append(out[n], 512+rng.Int64N(sizes[n]-512))
	}
	return out
}

// Serve starts a fresh fault server for s with the link.
func (l Link) Serve(s *Set) *faultserver.Server {
	opts := []faultserver.Option{faultserver.ConnRate(l.ConnRate), faultserver.TotalRate(l.TotalRate), faultserver.Seed(l.Seed)}
	if l.ResetProb > 0 {
		opts = append(opts, faultserver.ResetAfter(l.ResetAfter, faultserver.When{Prob: l.ResetProb}))
	}
	for name, offs := range l.Spots(s) {
		opts = append(opts, faultserver.FlipBits(name, 1, offs...))
	}
	return faultserver.New(s.Dir, opts...)
}

// Result is one tool's run on one set and link.
type Result struct {
	Tool     string
	Verifies bool
	Proc
	Pulled int64  // response body bytes the server sent
	Diff   string // first difference from the source, "" when identical
	Faults faultserver.Counts
	Err    error // the run could not be made or did not end
	// FirstByte and LastByte are when the server sent the first and the
	// last body byte, from the start of the process: what comes before
	// and after is the tool's own start-up and finish (verification,
	// renames).
	FirstByte, LastByte time.Duration
	samples             []sample
}

// Identical reports whether every part came out byte-identical.
func (r Result) Identical() bool { return r.Err == nil && r.Diff == "" }

// FetchOnce runs f once on a fresh server with link l, into a fresh
// directory under work that is removed afterwards. With trace set, the
// server's byte counter, sampled every 10 ms, is written to that file as
// CSV (seconds, bytes).
func FetchOnce(ctx context.Context, f Fetcher, s *Set, l Link, work string, limit time.Duration, trace string) Result {
	res := Result{Tool: f.Name, Verifies: f.Verifies}
	run, err := os.MkdirTemp(work, "run-")
	if err != nil {
		res.Err = err
		return res
	}
	defer removeAll(run)
	srv := l.Serve(s)
	defer srv.Close()
	j := Job{Set: s, Base: strings.TrimSuffix(srv.URL(""), "/"), Dest: filepath.Join(run, "dest"), Scratch: run}
	if err := os.MkdirAll(j.Dest, 0o755); err != nil {
		res.Err = err
		return res
	}
	cmd, err := f.Command(j)
	if err != nil {
		res.Err = err
		return res
	}
	stopWatch := make(chan struct{})
	watched := make(chan []sample, 1)
	go watchBytes(srv, time.Now(), stopWatch, watched)
	res.Proc, res.Err = runProc(ctx, cmd, limit)
	srv.WaitIdle(5 * time.Second)
	close(stopWatch)
	res.Pulled = srv.BytesSent()
	ss := <-watched
	res.samples = ss
	res.FirstByte, res.LastByte = byteTimes(ss, res.Pulled)
	if trace != "" {
		var b strings.Builder
		for _, x := range ss {
			fmt.Fprintf(&b, "%.3f,%d\n", x.at.Seconds(), x.bytes)
		}
		if err := os.WriteFile(trace, []byte(b.String()), 0o644); err != nil && res.Err == nil {
			res.Err = err
		}
	}
	res.Faults = srv.Faults()
	if res.Err == nil && res.Exit != 0 {
		res.Err = fmt.Errorf("exit %d: %s", res.Exit, lastLine(res.Tail))
	}
	res.Diff = SameParts(s, j.Dest)
	return res
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

type sample struct {
	at    time.Duration
	bytes int64
}

// watchBytes samples the server's byte counter every 10 ms until stop.
func watchBytes(srv *faultserver.Server, start time.Time, stop <-chan struct{}, out chan<- []sample) {
	var ss []sample
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	last := int64(-1)
	for {
		select {
		case <-stop:
			out <- ss
			return
		case <-t.C:
		}
		if n := srv.BytesSent(); n != last {
			ss = append(ss, sample{time.Since(start), n})
			last = n
		}
	}
}

// byteTimes finds when the first byte and the last of total were sent.
func byteTimes(ss []sample, total int64) (first, last time.Duration) {
	for _, s := range ss {
		if s.bytes > 0 && first == 0 {
			first = s.at
		}
		if s.bytes >= total {
			return first, s.at
		}
	}
	if len(ss) > 0 {
		last = ss[len(ss)-1].at
	}
	return first, last
}

// rateBetween is the mean rate the server sent at between a and b (from
// the samples), in bytes/s.
func (r Result) rateBetween(a, b time.Duration) float64 {
	if b <= a {
		return 0
	}
	return float64(r.sentBy(b)-r.sentBy(a)) / (b - a).Seconds()
}

// capLoss is how much link time the run left unused at its start and at
// its end, in seconds, on a link whose total cap is bps: the bytes short of
// bps × 2 s in the first two seconds, and of bps × 3 s in the last three
// seconds before the last byte, each divided by bps.
func (r Result) capLoss(bps int64) (start, end float64) {
	if bps <= 0 || len(r.samples) == 0 {
		return 0, 0
	}
	rate := float64(bps)
	start = (2*rate - float64(r.sentBy(2*time.Second))) / rate
	end = (3*rate - float64(r.Pulled-r.sentBy(r.LastByte-3*time.Second))) / rate
	return start, end
}

// sentBy is the server's byte count at time t of the run (from the
// samples).
func (r Result) sentBy(t time.Duration) int64 {
	var n int64
	for _, s := range r.samples {
		if s.at > t {
			break
		}
		n = s.bytes
	}
	return n
}
