package fetch

// Engine tests against real components: the fault-injecting HTTP server
// and a real MinIO server on 127.0.0.1.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/source/open"
	"github.com/haul-dev/haul/integrity"
	"github.com/haul-dev/haul/internal/testenv"
)

// recorder is a Progress that keeps what the engine reports.
type recorder struct {
	pulled atomic.Int64
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Plan([]PartProgress)      {}
func (r *recorder) Pulled(_ string, n int64) { r.pulled.Add(n) }
func (r *recorder) Event(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) saw(kind, part string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.events, func(e Event) bool { return e.Kind == kind && e.Part == part })
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// replaceFile swaps a file's content atomically (a new inode, as an S3
// PUT replaces an object): answers already streaming keep the old bytes.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestFetchObjectChangesMidRun: parts replaced at an HTTP source while a
// fetch is pulling them (one with the same size, one with another). Every
// read is pinned to the version first seen, so the engine notices, lists
// the source again, starts those parts from zero, and ends with the new
// objects — never a mix of old and new bytes.
func TestFetchObjectChangesMidRun(t *testing.T) {
	dir, dest := t.TempDir(), t.TempDir()
	names := []string{"set.bin", "set.bin.1"}
	for i, n := range names {
		os.WriteFile(filepath.Join(dir, n), randomBytes(uint64(i+1), 600_000), 0o644)
	}
	srv := testenv.NewFaultServer(dir, testenv.ConnRate(128<<10))
	defer srv.Close()
	rec := &recorder{}
	opts := testOptions("", dest)
	opts.Sources = []string{srv.URL(names[0]), srv.URL(names[1])}
	opts.Connections = 2
	opts.Progress = rec

	type outcome struct {
		sum *Summary
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		s, err := Fetch(context.Background(), opts)
		done <- outcome{s, err}
	}()
	for i := 0; rec.pulled.Load() < 200_000; i++ {
		if i > 1000 {
			t.Fatal("the fetch pulled nothing in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := [][]byte{randomBytes(11, 600_000), randomBytes(12, 450_000)}
	replaceFile(t, filepath.Join(dir, names[0]), want[0])
	replaceFile(t, filepath.Join(dir, names[1]), want[1])
	srv.SetConnRate(0)

	var out outcome
	select {
	case out = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the fetch did not end")
	}
	if out.err != nil {
		t.Fatalf("fetch: %v", out.err)
	}
	for i, n := range names {
		got, err := os.ReadFile(filepath.Join(dest, n))
		if err != nil || !bytes.Equal(got, want[i]) {
			t.Fatalf("%s is not the new object (err %v)", n, err)
		}
	}
	if !rec.saw(chunk.EventPartChanged, names[0]) {
		t.Errorf("no %s event for %s", chunk.EventPartChanged, names[0])
	}
}

// corruptSource damages one byte of one object on the first reads that
// cover it, as a link that flips the same bit, in front of a real source.
type corruptSource struct {
	source.Source
	name  string
	at    int64
	times atomic.Int64 // reads to damage; later reads are clean
}

func (c *corruptSource) ReadRange(ctx context.Context, obj source.Object, off, n int64) (io.ReadCloser, error) {
	rc, err := c.Source.ReadRange(ctx, obj, off, n)
	if err != nil || obj.Name != c.name || c.at < off || c.at >= off+n || c.times.Add(-1) < 0 {
		return rc, err
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	b[c.at-off] ^= 0x10
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (c *corruptSource) References(ctx context.Context, obj source.Object) ([]integrity.Reference, error) {
	return c.Source.(source.Checksummer).References(ctx, obj)
}

// TestFetchS3ReferencesCatchDamage: each reference MinIO gives — the MD5
// ETag of a single PUT, a multipart ETag with uneven part sizes, CRC32C,
// SHA-256 and full-object CRC64NVME checksums — catches a byte damaged on
// the way. Damaged once, the part is fetched again and proven; damaged on
// every read, it ends broken, named with the reference that caught it,
// and never under its final name.
func TestFetchS3ReferencesCatchDamage(t *testing.T) {
	m := testenv.StartMinIO(t)
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	bucket := m.NewBucket(t)
	kinds := []struct {
		name, label string
		size        int
		opts        []testenv.PutOption
	}{
		{"etag.bin", "md5:etag", 200_000, nil},
		{"multipart.bin", "md5:etag", 11<<20 + 5, []testenv.PutOption{testenv.PutParts(6<<20, 5<<20)}},
		{"crc32c.bin", "crc32c:s3", 150_000, []testenv.PutOption{testenv.PutChecksum(minio.ChecksumCRC32C)}},
		{"sha256.bin", "sha256:s3", 150_001, []testenv.PutOption{testenv.PutChecksum(minio.ChecksumSHA256)}},
		{"crc64nvme.bin", "crc64nvme:s3", 5<<20 + 3, []testenv.PutOption{testenv.PutParts(5 << 20), testenv.PutChecksum(minio.ChecksumCRC64NVME)}},
	}
	for i, k := range kinds {
		m.Put(t, bucket, k.name, randomBytes(uint64(100+i), k.size), k.opts...)
	}
	for _, k := range kinds {
		for _, always := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/always=%v", k.name, always), func(t *testing.T) {
				dest := t.TempDir()
				opts := testOptions("s3://"+bucket+"/"+k.name, dest)
				opts.PieceSize = 1 << 20
				opts.Retries = 3
				opts.defaults()
				op, err := open.Open(context.Background(), opts.Sources[0], source.OpenOptions{S3: source.S3Options{Endpoint: m.Endpoint}})
				if err != nil {
					t.Fatal(err)
				}
				opts.Filter.Prefix = op.Prefix
				src := &corruptSource{Source: op.Source, name: k.name, at: int64(k.size) - 2}
				src.times.Store(1)
				if always {
					src.times.Store(1 << 40)
				}
				e := &engine{opts: &opts, src: src}
				if err := e.prepare(context.Background()); err != nil {
					t.Fatal(err)
				}
				if err := e.run(context.Background()); err != nil {
					t.Fatal(err)
				}
				s := e.summary()
				p := e.st.Find(k.name)
				_, statErr := os.Stat(filepath.Join(dest, k.name))
				if !always {
					if p.Status != chunk.Verified || !slices.Contains(p.VerifiedBy, k.label) || statErr != nil {
						t.Fatalf("damaged once: %s %v (%v); want verified by %s under its name", p.Status, p.VerifiedBy, statErr, k.label)
					}
					return
				}
				if !slices.Equal(s.Broken, []string{k.name}) || !strings.Contains(s.Detail[k.name], k.label+" mismatch") {
					t.Fatalf("damaged always: broken %v, detail %q; want %s broken by a %s mismatch", s.Broken, s.Detail[k.name], k.name, k.label)
				}
				if !errors.Is(statErr, os.ErrNotExist) {
					t.Fatalf("the broken part carries its final name")
				}
			})
		}
	}
}
