// Uploading test objects to MinIO: single-part or multipart, with S3
// additional checksums.

package testenv

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// PutOption changes how Put uploads an object.
type PutOption func(*putConfig)

type putConfig struct {
	partSize  int64
	parts     []int64
	multipart bool
	checksum  minio.ChecksumType
}

// PutMultipart uploads the object as a multipart upload with parts of
// partSize bytes, the last one shorter. The object's ETag then ends in -N.
// S3 wants every part but the last to be at least 5 MiB; smaller parts make
// the server refuse the upload.
func PutMultipart(partSize int64) PutOption {
	return func(c *putConfig) {
		c.multipart = true
		c.partSize = partSize
		c.parts = nil
	}
}

// PutParts uploads the object as a multipart upload whose parts have
// exactly the given sizes; bytes beyond their sum form one more part. Use it
// for uneven part sizes (all but the last at least 5 MiB).
func PutParts(sizes ...int64) PutOption {
	return func(c *putConfig) {
		c.multipart = true
		c.parts = append([]int64(nil), sizes...)
		c.partSize = 0
	}
}

// PutChecksum asks the server to store an additional checksum of type ct:
// minio.ChecksumCRC32, ChecksumCRC32C, ChecksumSHA1, ChecksumSHA256,
// ChecksumCRC64NVME, or the full-object forms ChecksumFullObjectCRC32 and
// ChecksumFullObjectCRC32C. For multipart uploads CRC64NVME and the
// full-object forms give a whole-object value; the others give a composite
// value (a checksum of the part checksums, "…-N").
func PutChecksum(ct minio.ChecksumType) PutOption {
	return func(c *putConfig) { c.checksum = ct }
}

// Put uploads data as bucket/key or fails the test. Without options it is a
// single PUT with no additional checksum (the ETag is the MD5 of data).
func (m *MinIO) Put(t testing.TB, bucket, key string, data []byte, opts ...PutOption) minio.UploadInfo {
	t.Helper()
	var cfg putConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.checksum != minio.ChecksumNone && !cfg.checksum.IsSet() {
		t.Fatalf("testenv: put %s/%s: invalid checksum type %v", bucket, key, cfg.checksum)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if !cfg.multipart {
		info, err := m.putSingle(ctx, bucket, key, data, cfg.checksum)
		if err != nil {
			t.Fatalf("testenv: put %s/%s: %v", bucket, key, err)
		}
		return info
	}
	sizes, err := splitParts(int64(len(data)), cfg)
	if err != nil {
		t.Fatalf("testenv: put %s/%s: %v", bucket, key, err)
	}
	info, err := m.putMultipart(ctx, bucket, key, data, sizes, cfg.checksum)
	if err != nil {
		t.Fatalf("testenv: put %s/%s: %v", bucket, key, err)
	}
	if want := "-" + strconv.Itoa(len(sizes)); !strings.HasSuffix(info.ETag, want) {
		t.Fatalf("testenv: put %s/%s: multipart upload of %d parts has ETag %q, want suffix %s", bucket, key, len(sizes), info.ETag, want)
	}
	return info
}

func splitParts(size int64, cfg putConfig) ([]int64, error) {
	var sizes []int64
	var sum int64
	if cfg.parts != nil {
		for _, s := range cfg.parts {
			if s <= 0 {
				return nil, fmt.Errorf("part size %d is not positive", s)
			}
			sizes = append(sizes, s)
			sum += s
		}
		if sum > size {
			return nil, fmt.Errorf("part sizes add up to %d, more than the %d bytes of data", sum, size)
		}
		if sum < size || len(sizes) == 0 {
			sizes = append(sizes, size-sum)
		}
		return sizes, nil
	}
	if cfg.partSize <= 0 {
		return nil, fmt.Errorf("part size %d is not positive", cfg.partSize)
	}
	for sum < size || len(sizes) == 0 {
		n := min(cfg.partSize, size-sum)
		sizes = append(sizes, n)
		sum += n
	}
	return sizes, nil
}

func checksumOf(ct minio.ChecksumType, b []byte) string {
	h := ct.Hasher()
	h.Write(b)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func contentSums(b []byte) (md5b64, sha256hex string) {
	m := md5.Sum(b)
	s := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(m[:]), hex.EncodeToString(s[:])
}

func (m *MinIO) putSingle(ctx context.Context, bucket, key string, data []byte, ct minio.ChecksumType) (minio.UploadInfo, error) {
	opts := minio.PutObjectOptions{UserMetadata: map[string]string{}}
	if ct.IsSet() {
		opts.UserMetadata[ct.Key()] = checksumOf(ct, data)
	}
	md5b64, shaHex := contentSums(data)
	return m.core.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), md5b64, shaHex, opts)
}

func (m *MinIO) putMultipart(ctx context.Context, bucket, key string, data []byte, sizes []int64, ct minio.ChecksumType) (info minio.UploadInfo, err error) {
	initOpts := minio.PutObjectOptions{UserMetadata: map[string]string{}}
	if ct.IsSet() {
		initOpts.UserMetadata["x-amz-checksum-algorithm"] = ct.String()
		mode := "COMPOSITE"
		if ct.FullObjectRequested() {
			mode = "FULL_OBJECT"
		}
		initOpts.UserMetadata["x-amz-checksum-type"] = mode
	}
	uploadID, err := m.core.NewMultipartUpload(ctx, bucket, key, initOpts)
	if err != nil {
		return info, fmt.Errorf("create multipart upload: %w", err)
	}
	defer func() {
		if err != nil {
			actx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = m.core.AbortMultipartUpload(actx, bucket, key, uploadID)
		}
	}()
	parts := make([]minio.CompletePart, 0, len(sizes))
	var off int64
	for i, n := range sizes {
		b := data[off : off+n]
		off += n
		md5b64, shaHex := contentSums(b)
		popts := minio.PutObjectPartOptions{Md5Base64: md5b64, Sha256Hex: shaHex}
		var sum string
		if ct.IsSet() {
			sum = checksumOf(ct, b)
			popts.CustomHeader = http.Header{}
			popts.CustomHeader.Set(ct.Key(), sum)
		}
		p, err := m.core.PutObjectPart(ctx, bucket, key, uploadID, i+1, bytes.NewReader(b), n, popts)
		if err != nil {
			return info, fmt.Errorf("upload part %d (%d bytes): %w", i+1, n, err)
		}
		cp := minio.CompletePart{PartNumber: i + 1, ETag: p.ETag}
		setPartChecksum(&cp, ct, sum)
		parts = append(parts, cp)
	}
	info, err = m.core.CompleteMultipartUpload(ctx, bucket, key, uploadID, parts, minio.PutObjectOptions{})
	if err != nil {
		return info, fmt.Errorf("complete multipart upload: %w", err)
	}
	return info, nil
}

func setPartChecksum(cp *minio.CompletePart, ct minio.ChecksumType, sum string) {
	switch ct.Base() {
	case minio.ChecksumCRC32:
		cp.ChecksumCRC32 = sum
	case minio.ChecksumCRC32C:
		cp.ChecksumCRC32C = sum
	case minio.ChecksumSHA1:
		cp.ChecksumSHA1 = sum
	case minio.ChecksumSHA256:
		cp.ChecksumSHA256 = sum
	case minio.ChecksumCRC64NVME:
		cp.ChecksumCRC64NVME = sum
	}
}
