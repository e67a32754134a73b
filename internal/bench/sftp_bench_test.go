package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/haul-dev/haul/fetch"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/internal/testenv"
)

// The SFTP benchmark's set and link: 8 MiB in 4 parts and 8 pieces, each
// TCP connection paced to 1 MiB/s, so -j 1 takes about 8 s and the four
// runs about 15 s.
const (
	sftpBenchParts    = 4
	sftpBenchPartSize = 2 << 20
	sftpBenchPiece    = 1 << 20
	sftpBenchConnRate = 1 << 20 // bytes/s per TCP connection
)

// BenchmarkSFTPConnections measures what -j is worth over SFTP on a link
// that caps each TCP connection: a real sshd behind a proxy that paces
// every connection's download to 1 MiB/s, and a set fetched in-process
// with -j 1, 2, 4 and 8. MB/s is the set's size over the whole Fetch
// (logins, listing, proving included); logins/op counts the SSH
// connections the SFTP pool opened. The rate should grow with -j until the
// pool or the set's 8 pieces limit it:
//
//	go test ./internal/bench -run '^$' -bench SFTPConnections -benchtime 1x -count 3
func BenchmarkSFTPConnections(b *testing.B) {
	if testing.Short() {
		b.Skip("runs sshd behind a paced link for about 15 s")
	}
	// Nothing of the machine's own ~/.ssh or agent takes part.
	home := b.TempDir()
	b.Setenv("HOME", home)
	b.Setenv("SSH_AUTH_SOCK", "")
	d := testenv.StartSSHD(b)
	proxy := testenv.StartCappedProxy(b, d.Addr, sftpBenchConnRate)
	s := sftpBenchSet(b)

	// The proxy's address is the host haul knows, with sshd's key.
	kh := filepath.Join(home, "known_hosts")
	cfg := filepath.Join(home, "ssh_config")
	if err := os.WriteFile(kh, []byte(knownhosts.Line([]string{proxy.Addr}, d.HostKey)+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	src := fmt.Sprintf("sftp://%s@%s%s/", d.User, proxy.Addr, s.Dir)
	ssh := source.SSHOptions{Identity: d.UserKeyFile, KnownHosts: kh, ConfigFile: cfg}

	for _, j := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("j=%d", j), func(b *testing.B) {
			logins, conns := d.Logins(b), proxy.Accepted()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dest := filepath.Join(b.TempDir(), "dest")
				b.StartTimer()
				sum, err := fetch.Fetch(context.Background(), fetch.Options{
					Sources: []string{src}, Dest: dest, Connections: j, PieceSize: sftpBenchPiece,
					Open: source.OpenOptions{SSH: ssh},
				})
				b.StopTimer()
				if err != nil {
					b.Fatalf("fetch -j %d: %v", j, err)
				}
				if sum.Verified != len(s.Parts) {
					b.Fatalf("fetch -j %d: %d of %d parts verified: %+v", j, sum.Verified, len(s.Parts), sum)
				}
				if diff := SameParts(s, dest); diff != "" {
					b.Fatalf("fetch -j %d: not identical: %s", j, diff)
				}
				b.StartTimer()
			}
			b.StopTimer()
			logins = d.Logins(b) - logins
			// Every login went through the cap, or the rate means nothing.
			if conns = proxy.Accepted() - conns; conns < logins {
				b.Fatalf("%d SSH logins but %d connections through the capped proxy", logins, conns)
			}
			b.ReportMetric(float64(s.Size)*float64(b.N)/1e6/b.Elapsed().Seconds(), "MB/s")
			b.ReportMetric(float64(logins)/float64(b.N), "logins/op")
		})
	}
}

// sftpBenchSet writes the parts (random bytes), SHA256SUMS and a haul
// manifest into a directory sshd serves.
func sftpBenchSet(b *testing.B) *Set {
	return randomSet(b, "sftp", sftpBenchParts, sftpBenchPartSize, sftpBenchPiece)
}

// randomSet writes parts of random bytes (from seed), SHA256SUMS and a
// haul manifest with pieceSize pieces into a fresh directory.
func randomSet(b *testing.B, seed string, parts int, partSize, pieceSize int64) *Set {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "set")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	var key [32]byte
	copy(key[:], seed)
	rng := rand.NewChaCha8(key)
	data := make([]byte, partSize)
	var paths []string
	for i := range parts {
		_, _ = rng.Read(data) // ChaCha8.Read never fails
		p := filepath.Join(dir, fmt.Sprintf("db.bak.%03d", i))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
		paths = append(paths, p)
	}
	s, err := finishSet(context.Background(), dir, "", paths, pieceSize)
	if err != nil {
		b.Fatal(err)
	}
	return s
}
