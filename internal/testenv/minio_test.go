package testenv

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

func TestMain(m *testing.M) { Main(m) }

const mib = 1 << 20

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func getObject(t *testing.T, m *MinIO, bucket, key string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	obj, err := m.Client().GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func statChecksum(t *testing.T, m *MinIO, bucket, key string) minio.ObjectInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := minio.StatObjectOptions{}
	opts.Checksum = true
	info, err := m.Client().StatObject(ctx, bucket, key, opts)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestMinIOPut(t *testing.T) {
	m := SharedMinIO(t)
	bucket := m.NewBucket(t)
	data := randomBytes(1, 13*mib+12345)

	t.Run("single", func(t *testing.T) {
		info := m.Put(t, bucket, "single", data[:1000])
		sum := md5.Sum(data[:1000])
		if info.ETag != hex.EncodeToString(sum[:]) {
			t.Fatalf("ETag %q, want MD5 %x", info.ETag, sum)
		}
		if got := getObject(t, m, bucket, "single"); !bytes.Equal(got, data[:1000]) {
			t.Fatal("object differs from upload")
		}
		if st := statChecksum(t, m, bucket, "single"); st.ChecksumCRC32C != "" || st.ChecksumSHA256 != "" || st.ChecksumCRC64NVME != "" {
			t.Fatalf("plain put has checksums: %+v", st)
		}
	})
	t.Run("multipart", func(t *testing.T) {
		info := m.Put(t, bucket, "mp", data, PutMultipart(5*mib))
		if !strings.HasSuffix(info.ETag, "-3") {
			t.Fatalf("ETag %q, want suffix -3", info.ETag)
		}
		st := statChecksum(t, m, bucket, "mp")
		if st.ETag != info.ETag || st.Size != int64(len(data)) {
			t.Fatalf("stat: ETag %q size %d, want %q %d", st.ETag, st.Size, info.ETag, len(data))
		}
		if got := getObject(t, m, bucket, "mp"); !bytes.Equal(got, data) {
			t.Fatal("object differs from upload")
		}
	})
	t.Run("uneven-parts", func(t *testing.T) {
		info := m.Put(t, bucket, "uneven", data, PutParts(7*mib, 5*mib))
		if !strings.HasSuffix(info.ETag, "-3") {
			t.Fatalf("ETag %q, want suffix -3", info.ETag)
		}
		if got := getObject(t, m, bucket, "uneven"); !bytes.Equal(got, data) {
			t.Fatal("object differs from upload")
		}
	})
	t.Run("one-part", func(t *testing.T) {
		info := m.Put(t, bucket, "one", data[:100], PutMultipart(5*mib))
		if !strings.HasSuffix(info.ETag, "-1") {
			t.Fatalf("ETag %q, want suffix -1", info.ETag)
		}
	})

	for _, tc := range []struct {
		name      string
		ct        minio.ChecksumType
		multipart bool
		composite bool
	}{
		{"crc32c", minio.ChecksumCRC32C, false, false},
		{"sha256", minio.ChecksumSHA256, false, false},
		{"crc64nvme", minio.ChecksumCRC64NVME, false, false},
		{"crc32c-composite", minio.ChecksumCRC32C, true, true},
		{"sha256-composite", minio.ChecksumSHA256, true, true},
		{"crc32c-full", minio.ChecksumFullObjectCRC32C, true, false},
		{"crc64nvme-multipart", minio.ChecksumCRC64NVME, true, false},
	} {
		t.Run("checksum-"+tc.name, func(t *testing.T) {
			opts := []PutOption{PutChecksum(tc.ct)}
			if tc.multipart {
				opts = append(opts, PutMultipart(5*mib))
			}
			key := "ck-" + tc.name
			m.Put(t, bucket, key, data, opts...)
			st := statChecksum(t, m, bucket, key)
			got := st.Checksum(tc.ct)
			if got == "" {
				t.Fatalf("no %v checksum stored: %+v", tc.ct, st)
			}
			whole := checksumOf(tc.ct, data)
			switch {
			case tc.composite:
				if !strings.HasSuffix(got, "-3") || got == whole {
					t.Fatalf("checksum %q, want a composite value ending in -3", got)
				}
			case got != whole:
				t.Fatalf("checksum %q, want whole-object %q", got, whole)
			}
		})
	}
}

func TestMinIOEnv(t *testing.T) {
	m := SharedMinIO(t)
	env := strings.Join(m.Env(), "\n")
	for _, want := range []string{
		"AWS_ACCESS_KEY_ID=" + m.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + m.SecretKey,
		"AWS_ENDPOINT_URL=" + m.Endpoint,
		"AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
	} {
		if !strings.Contains(env, want) {
			t.Errorf("Env() lacks %s", want)
		}
	}
}

func TestStartMinIOStops(t *testing.T) {
	var m *MinIO
	t.Run("server", func(t *testing.T) {
		m = StartMinIO(t)
		m.MakeBucket(t, "stop-test")
	})
	if m == nil || t.Failed() {
		t.Skip("server subtest did not run")
	}
	select {
	case <-m.exited:
	default:
		t.Fatal("MinIO still running after its test's cleanup")
	}
}

// MinIOBinary builds into the cache once, even when several callers ask at
// the same time, and never exposes a half-written binary. A stand-in `go`
// plays the five-minute build.
func TestMinIOBinaryBuildsOnce(t *testing.T) {
	tmp := t.TempDir()
	binDir := filepath.Join(tmp, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	count := filepath.Join(tmp, "builds")
	fakeGo := "#!/bin/sh\n" +
		"[ \"$1\" = install ] || exit 2\n" +
		"echo \"$2\" >> " + count + "\n" +
		"printf '#!/bin/sh\\n' > \"$GOBIN/minio\" && chmod +x \"$GOBIN/minio\"\n"
	if err := os.WriteFile(filepath.Join(binDir, "go"), []byte(fakeGo), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("XDG_CACHE_HOME", filepath.Join(tmp, "cache"))
	t.Setenv("HAUL_MINIO", "")

	paths := make([]string, 4)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range paths {
		wg.Go(func() { paths[i], errs[i] = MinIOBinary() })
	}
	wg.Wait()
	want := filepath.Join(tmp, "cache", "haul", "minio-"+MinIOVersion, "minio")
	for i := range paths {
		if errs[i] != nil || paths[i] != want {
			t.Fatalf("MinIOBinary() = %q, %v; want %q", paths[i], errs[i], want)
		}
	}
	b, err := os.ReadFile(count)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "github.com/minio/minio@"+MinIOVersion {
		t.Fatalf("go install calls:\n%s\nwant exactly one for the pinned version", got)
	}

	t.Setenv("HAUL_MINIO", filepath.Join(tmp, "nope"))
	if _, err := MinIOBinary(); err == nil {
		t.Fatal("MinIOBinary accepted a HAUL_MINIO that does not exist")
	}
}
