package bitrixdb

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/haul-dev/haul/internal/bench"
	"github.com/haul-dev/haul/internal/gen"
	"github.com/haul-dev/haul/internal/testenv"
)

// BenchmarkImport compares haul's import with the mariadb client reading
// the same dump (`mariadb db < dump`) on the same throwaway server, each
// over the unix socket and over TCP 127.0.0.1. One iteration is a round
// of the four imports, in an order rotated each round, each into a fresh
// database that is dropped afterwards, so that no variant always runs on
// a warmer or a fuller server than another. It reports the median MB/s
// of dump of each and haul's ratio to the client on the same transport
// (the target is >= 0.9x), and the CPU seconds per import of the server
// and of the importer (haul in this process, or the client), which the
// machine's load does not blur as it blurs MB/s.
//
//	CI=true go test ./restore/bitrixdb -run '^$' -bench Import -benchtime 3x
func BenchmarkImport(b *testing.B) {
	m := testenv.StartMariaDB(b)
	root, d := site(b, gen.SQLDumpOptions{Rows: 100000})
	var size int64
	for _, p := range d.Parts {
		size += fileSize(b, p)
	}
	n := 0 // databases made so far: b.Run calls its function more than once
	haul := func(b *testing.B, db string, socket bool) {
		opts := options(b, m, db, root)
		if socket {
			target, err := ParseURL(m.SocketURL(db))
			if err != nil {
				b.Fatal(err)
			}
			opts.Target = target
		}
		opts.KeepDump = true
		opts.StateDir = filepath.Join(b.TempDir(), ".haul")
		if _, err := Run(ctxT(b), opts); err != nil {
			b.Fatal(err)
		}
	}
	var clientCPU time.Duration // of the last client run
	client := func(b *testing.B, db string, cmd *exec.Cmd) {
		clientImportWith(b, m, db, d, cmd)
		clientCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	variants := []struct {
		name string
		run  func(b *testing.B, db string)
	}{
		{"haul-socket", func(b *testing.B, db string) { haul(b, db, true) }},
		{"haul-tcp", func(b *testing.B, db string) { haul(b, db, false) }},
		{"client-socket", func(b *testing.B, db string) { client(b, db, m.Client(b, db)) }},
		{"client-tcp", func(b *testing.B, db string) { client(b, db, m.ClientTCP(b, db)) }},
	}
	b.Run("rounds", func(b *testing.B) {
		rate := map[string][]float64{}
		serverCPU, ownCPU := map[string][]float64{}, map[string][]float64{}
		for i := 0; i < b.N; i++ {
			for j := range variants {
				v := variants[(i+j)%len(variants)]
				n++
				db := "b" + strconv.Itoa(n)
				s0, self0 := serverTime(b, m), selfCPU()
				clientCPU = 0
				start := time.Now()
				v.run(b, db)
				rate[v.name] = append(rate[v.name], float64(size)/1e6/time.Since(start).Seconds())
				serverCPU[v.name] = append(serverCPU[v.name], (serverTime(b, m) - s0).Seconds())
				own := selfCPU() - self0 // haul runs in this process
				if clientCPU > 0 {
					own = clientCPU
				}
				ownCPU[v.name] = append(ownCPU[v.name], own.Seconds())
				b.StopTimer()
				m.Exec(b, "", "DROP DATABASE "+quoteIdent(db))
				b.StartTimer()
			}
		}
		med := map[string]float64{}
		for _, v := range variants {
			med[v.name] = bench.Median(rate[v.name])
			b.ReportMetric(med[v.name], v.name+"-MB/s")
			b.ReportMetric(bench.Median(serverCPU[v.name]), v.name+"-server-cpu-s")
			b.ReportMetric(bench.Median(ownCPU[v.name]), v.name+"-own-cpu-s")
		}
		b.ReportMetric(med["haul-socket"]/med["client-socket"], "socket-x")
		b.ReportMetric(med["haul-tcp"]/med["client-tcp"], "tcp-x")
		if b.N > 1 {
			for _, v := range variants {
				b.Logf("%-13s MB/s per round: %s", v.name, fmt.Sprintf("%.2f", rate[v.name]))
			}
			// The same round's runs share the machine's load: their ratio
			// is steadier than the ratio of the medians.
			for _, tr := range []string{"socket", "tcp"} {
				var x []float64
				for i := range rate["haul-"+tr] {
					x = append(x, rate["haul-"+tr][i]/rate["client-"+tr][i])
				}
				b.Logf("haul/client, %-6s per round: %s, median %.2f", tr, fmt.Sprintf("%.2f", x), bench.Median(x))
			}
		}
	})
}

func serverTime(b *testing.B, m *testenv.MariaDB) time.Duration {
	t, err := m.CPUTime()
	if err != nil {
		b.Fatal(err)
	}
	return t
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
