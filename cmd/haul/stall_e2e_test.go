package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/haul-dev/haul/internal/testenv"
)

// stallFor is how long a stalling server holds its answer: far beyond
// --timeout, so only the timeout can end the wait.
const stallFor = 20 * time.Second

// TestStallsEndAfterTimeout: a server that stops answering halfway
// through a reference file, a manifest or a listing, an SSH server that
// accepts and never speaks, or an SFTP server that stops answering a stat
// or a listing after login, holds haul only for --timeout per try:
// each stall is retried as a transient fault, then the run exits 75
// (run again later). runHaul bounds every run, so a hang fails the test.
func TestStallsEndAfterTimeout(t *testing.T) {
	parts := e2eSet(17, 64<<10, 32<<10)
	sums := e2ePart{"SHA256SUMS", e2eSHA256SUMS(parts)}
	manifest := e2ePart{"set.haul.json", []byte(`{"haul_manifest": 1, "piece_size": 65536, "parts": [` + strings.Repeat(" ", 4096) + `]}`)}
	flags := []string{"fetch", "--progress", "none", "--timeout", "1s", "--retries", "2"}
	cases := []struct {
		name  string
		args  func(t *testing.T) []string
		names string // what the error line names
	}{
		{"SHA256SUMS", func(t *testing.T) []string {
			srv := e2eServe(t, append(append([]e2ePart{}, parts...), sums),
				testenv.StallAfter(int64(len(sums.data)/2), stallFor, testenv.When{Name: "SHA256SUMS"}))
			return e2eURLs(srv, parts)
		}, "SHA256SUMS"},
		{"manifest", func(t *testing.T) []string {
			srv := e2eServe(t, append(append([]e2ePart{}, parts...), manifest),
				testenv.StallAfter(100, stallFor, testenv.When{Name: manifest.name}))
			return append([]string{"--manifest", srv.URL(manifest.name)}, e2eURLs(srv, parts)...)
		}, manifest.name},
		{"S3 listing", func(t *testing.T) []string {
			u := stallingS3(t)
			return []string{"--endpoint", u, "--anonymous", "--region", "us-east-1", "s3://bucket/backups/"}
		}, "bucket"},
		{"SSH handshake", func(t *testing.T) []string {
			addr := silentListener(t)
			key := writeKey(t)
			kh := filepath.Join(t.TempDir(), "known_hosts")
			return []string{"-i", key, "--known-hosts", kh, "--accept-new-host-key", "sftp://haul@" + addr + "/srv/backup/"}
		}, "handshake"},
		{"SFTP stat", func(t *testing.T) []string {
			return stallingSFTPArgs(t, "stat", parts)
		}, "stopped answering"},
		{"SFTP listing", func(t *testing.T) []string {
			return stallingSFTPArgs(t, "list", parts)
		}, "stopped answering"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "dest")
			args := append(append(append([]string{}, flags...), tc.args(t)...), dest)
			start := time.Now()
			r := runHaul(t, []string{"HOME=" + t.TempDir()}, args...)
			took := time.Since(start)
			wantCode(t, r, 75)
			if took < time.Second {
				t.Fatalf("ended after %v, before --timeout 1s could pass: not the stall that ended it\n%s", took, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.names) {
				t.Fatalf("the error does not name %s:\n%s", tc.names, r.stderr)
			}
			t.Logf("exit 75 after %v: %s", took.Round(time.Millisecond), strings.TrimSpace(r.stderr))
		})
	}
}

// stallingS3 is an S3 endpoint whose bucket exists and whose listing
// sends its headers and half its XML, then stalls.
func stallingS3(t *testing.T) string {
	t.Helper()
	var wg sync.WaitGroup
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch {
		case q.Has("location"):
			w.Header().Set("Content-Type", "application/xml")
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></LocationConstraint>`)
		case q.Has("list-type") || q.Has("prefix") || q.Has("delimiter"):
			wg.Add(1)
			defer wg.Done()
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusOK)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><Prefix>backups/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>backups/site.tar.gz</Key>`)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-done:
			case <-time.After(stallFor):
			}
		default:
			w.WriteHeader(http.StatusOK) // HEAD bucket: it exists
		}
	}))
	t.Cleanup(func() { close(done); srv.CloseClientConnections(); srv.Close(); wg.Wait() })
	return srv.URL
}

// silentListener accepts TCP connections on 127.0.0.1 and never sends a
// byte: an SSH server that hangs before its version line.
func silentListener(t *testing.T) string {
	t.Helper()
	return acceptConns(t, nil)
}

// acceptConns listens on 127.0.0.1 and runs serve (when not nil) on
// every connection; when the test ends it closes the listener and every
// connection and waits for the serve calls to return.
func acceptConns(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if serve != nil {
				wg.Go(func() { serve(c) })
			}
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// writeKey writes an unencrypted ed25519 private key for -i.
func writeKey(t *testing.T) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(p, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// stallingSFTPArgs serves parts from a stallingSFTP that stalls on kind
// and returns the SOURCE and the flags that reach it.
func stallingSFTPArgs(t *testing.T, kind string, parts []e2ePart) []string {
	t.Helper()
	dir := t.TempDir()
	e2eWriteDir(t, dir, parts)
	srv := startStallingSFTP(t, kind)
	return []string{"-i", writeKey(t), "--known-hosts", srv.knownHosts, "sftp://haul@" + srv.addr + dir + "/"}
}

// TestSFTPHashStallFallsBack: an SSH server whose remote hash command
// never answers holds a repair only for --timeout (plus the time one
// piece may take to hash): the repair says remote hashing failed and why,
// copies the part whole, and the set verifies.
func TestSFTPHashStallFallsBack(t *testing.T) {
	parts := e2eNumberedSet("db.bak", 5, 300_000, 200_000)
	origin := t.TempDir()
	e2eWriteDir(t, origin, append(append([]e2ePart{}, parts...), e2ePart{"SHA256SUMS", e2eSHA256SUMS(parts)}))
	dest := t.TempDir()
	wantCode(t, runHaul(t, nil, "fetch", "--progress", "none", origin, dest), 0)
	e2eFlipOnDisk(t, filepath.Join(dest, parts[0].name), 70_000)
	wantCode(t, runHaul(t, nil, "verify", dest), 3)

	args := stallingSFTPArgs(t, "hash", parts)
	start := time.Now()
	r := runHaul(t, []string{"HOME=" + t.TempDir()}, append([]string{"repair", "--progress", "log", "--timeout", "1s", "--max-time", "40s", "--from", args[len(args)-1], dest}, args[:len(args)-1]...)...)
	took := time.Since(start)
	wantCode(t, r, 0)
	e2eIdentical(t, dest, parts)
	out := r.stdout + r.stderr
	for _, say := range []string{"remote hashing unavailable", "stopped answering"} {
		if !strings.Contains(out, say) {
			t.Errorf("the repair does not say %q:\n%s", say, out)
		}
	}
	t.Logf("repair ended after %v", took.Round(time.Millisecond))
}
