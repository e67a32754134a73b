package integrity

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// BenchmarkChecker compares, in one run, the Checker's SHA-256 throughput
// with crypto/sha256 alone on the same bytes and write size (1 MiB, as
// VerifyFile reads), plus the dearer mixes a part can need. MB/s is the
// figure to read.
//
//	go test -run '^$' -bench Checker ./integrity/
func BenchmarkChecker(b *testing.B) {
	const total = 64 << 20
	const write = readBufferSize
	data := randBytes(40, total)
	sums := independentSums(data)
	manifest, err := BuildManifestPart("p", bytes.NewReader(data), DefaultPieceSize)
	if err != nil {
		b.Fatal(err)
	}
	gz, _ := gzipMembers(b, mixedBytes(total/4)) // about 2.5:1, as a site backup

	feed := func(b *testing.B, newWriter func(tb testing.TB) (write func([]byte), finish func()), data []byte) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			w, finish := newWriter(b)
			for off := 0; off < len(data); off += write {
				w(data[off:min(off+write, len(data))])
			}
			finish()
		}
	}
	checker := func(data []byte, refs []Reference, opts CheckOptions) func(testing.TB) (func([]byte), func()) {
		return func(tb testing.TB) (func([]byte), func()) {
			c := NewChecker("p", int64(len(data)), refs, opts)
			return func(p []byte) { c.Write(p) }, func() {
				if res := c.Result(); !res.Verified() {
					tb.Fatal(res.Err)
				}
			}
		}
	}

	b.Run("crypto-sha256", func(b *testing.B) {
		feed(b, func(testing.TB) (func([]byte), func()) {
			h := sha256.New()
			return func(p []byte) { h.Write(p) }, func() { h.Sum(nil) }
		}, data)
	})
	b.Run("checker-sha256", func(b *testing.B) {
		feed(b, checker(data, []Reference{{Algo: SHA256, Sum: sums[SHA256], Origin: "SHA256SUMS"}}, CheckOptions{}), data)
	})
	b.Run("checker-manifest-pieces", func(b *testing.B) {
		feed(b, checker(data, manifest.References(), CheckOptions{}), data)
	})
	b.Run("checker-sha256+manifest", func(b *testing.B) {
		refs := append([]Reference{{Algo: SHA256, Sum: sums[SHA256], Origin: "SHA256SUMS"}}, manifest.References()...)
		feed(b, checker(data, refs, CheckOptions{}), data)
	})
	b.Run("checker-sha256+md5+crc32c+crc64nvme", func(b *testing.B) {
		refs := []Reference{
			{Algo: SHA256, Sum: sums[SHA256], Origin: "SHA256SUMS"},
			{Algo: MD5, Sum: sums[MD5], Origin: OriginETag},
			{Algo: CRC32C, Sum: sums[CRC32C], Origin: OriginS3},
			{Algo: CRC64NVME, Sum: sums[CRC64NVME], Origin: OriginS3},
		}
		feed(b, checker(data, refs, CheckOptions{}), data)
	})
	b.Run("checker-gzip", func(b *testing.B) {
		feed(b, checker(gz, nil, CheckOptions{Gzip: true}), gz)
	})
	b.Run("checker-sha256+gzip", func(b *testing.B) {
		s := sha256.Sum256(gz)
		ref := Reference{Algo: SHA256, Sum: hex.EncodeToString(s[:]), Origin: "SHA256SUMS"}
		feed(b, checker(gz, []Reference{ref}, CheckOptions{Gzip: true}), gz)
	})
}

// mixedBytes returns n bytes that compress about as a site backup does:
// words drawn at random from a small vocabulary, with random binary runs.
func mixedBytes(n int) []byte {
	noise := randBytes(41, n)
	out := make([]byte, 0, n)
	for i := 0; len(out) < n; i++ {
		if i%16 == 15 {
			out = append(out, noise[len(out):min(len(out)+12, n)]...)
			continue
		}
		word := noise[len(out)] % 200
		out = append(out, "w"...)
		out = append(out, 'a'+word%26, 'a'+word/26, ' ')
	}
	return out[:n]
}
