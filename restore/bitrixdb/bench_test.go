package bitrixdb

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/haul-dev/haul/internal/gen"
	"github.com/haul-dev/haul/internal/testenv"
)

// BenchmarkImport compares haul's import with the mariadb client reading
// the same dump (`mariadb db < dump`) on the same throwaway server: MB/s
// of dump for each. The target is haul >= 0.9x the client.
//
//	CI=true go test ./restore/bitrixdb -run '^$' -bench Import -benchtime 3x
func BenchmarkImport(b *testing.B) {
	m := testenv.StartMariaDB(b)
	root, d := site(b, gen.SQLDumpOptions{Rows: 100000})
	var size int64
	for _, p := range d.Parts {
		size += fileSize(b, p)
	}
	n := 0 // databases made so far: b.Run calls each function more than once
	for _, transport := range []string{"socket", "tcp"} {
		b.Run("haul-"+transport, func(b *testing.B) {
			b.SetBytes(size)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				n++
				db := "h" + strconv.Itoa(n)
				opts := options(b, m, db, root)
				if transport == "socket" {
					target, err := ParseURL(m.SocketURL(db))
					if err != nil {
						b.Fatal(err)
					}
					opts.Target = target
				}
				opts.KeepDump = true
				opts.StateDir = filepath.Join(b.TempDir(), ".haul")
				b.StartTimer()
				if _, err := Run(ctxT(b), opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("mariadb-client", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			n++
			clientImport(b, m, "c"+strconv.Itoa(n), d)
		}
	})
}
