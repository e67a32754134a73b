package s3

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/integrity"
	"github.com/haul-dev/haul/internal/redact"
	"github.com/haul-dev/haul/internal/testhook"
)

// s3Source reads objects under one "directory" of a bucket.
type s3Source struct {
	core   minio.Core
	bucket string
	dir    string // key prefix ending in "/", or ""
	label  string
}

var (
	_ source.Source      = (*s3Source)(nil)
	_ source.Checksummer = (*s3Source)(nil)
)

// s3Credentials follows the AWS chain users expect: the environment, the
// profile's keys, credential_process or SSO in the shared credentials and
// config files, then instance roles unless AWS_EC2_METADATA_DISABLED is
// set. It asks the chain before any request to the server: with no
// credentials anywhere it says so, where a server would only answer
// AccessDenied to an anonymous request.
func s3Credentials(ctx context.Context, aws *awsSettings, anonymous bool) (*credentials.Credentials, error) {
	if anonymous {
		return credentials.NewStaticV4("", "", ""), nil
	}
	imds := !strings.EqualFold(os.Getenv("AWS_EC2_METADATA_DISABLED"), "true")
	file := &credentials.FileAWSCredentials{Profile: aws.profile}
	chain := []credentials.Provider{&credentials.EnvAWS{}, file}
	if imds {
		chain = append(chain, &credentials.IAM{})
	}
	creds := credentials.NewChainCredentials(chain)
	cctx, cancel := context.WithTimeout(ctx, credentialsTimeout)
	defer cancel()
	v, err := creds.GetWithContext(&credentials.CredContext{Client: http.DefaultClient, Context: cctx})
	if err == nil && (v.AccessKeyID != "" || v.SecretAccessKey != "") {
		return creds, nil
	}
	why := ""
	if _, ferr := file.Retrieve(); ferr != nil && !errors.Is(ferr, fs.ErrNotExist) && !aws.noHome {
		why = " (" + ferr.Error() + ")"
	}
	msg := fmt.Sprintf("no AWS credentials found (looked in %s%s); set them, or use --anonymous for a public bucket", aws.looked(imds), why)
	return nil, source.Also(errors.New(msg), source.ErrAuth)
}

// credentialsTimeout bounds the credential chain (the instance metadata
// service does not answer off EC2).
const credentialsTimeout = 10 * time.Second

// Identity names the S3 service and bucket u reaches with opts, with no
// secret in it: the key of haul's record of which sources were reached.
func Identity(u *url.URL, opts source.S3Options) (addr, setting string, err error) {
	aws, err := resolveAWS(opts, os.Getenv)
	if err != nil {
		return "", "", err
	}
	eu, err := endpointURL(aws)
	if err != nil {
		return "", "", err
	}
	return eu.Scheme + "://" + eu.Host, aws.endpointFrom, nil
}

// endpointURL is the endpoint to dial: the configured one or AWS's.
func endpointURL(aws *awsSettings) (*url.URL, error) {
	endpoint := aws.endpoint
	if endpoint == "" {
		endpoint = "https://s3.amazonaws.com"
	}
	eu, err := url.Parse(endpoint)
	if err != nil || eu.Host == "" || (eu.Scheme != "http" && eu.Scheme != "https") {
		return nil, source.Permanent(fmt.Errorf("%s %q: not an http:// or https:// URL (want e.g. https://s3.example.com): %w", aws.endpointFrom, endpoint, source.ErrBadSource))
	}
	return eu, nil
}

// Open opens s3://BUCKET/KEY: the endpoint, region and credentials as the
// AWS tools find them (resolveAWS), the bucket checked to exist.
func Open(ctx context.Context, u *url.URL, opts source.S3Options) (*source.Opened, error) {
	bucket := u.Host
	key := strings.TrimPrefix(u.Path, "/")
	if bucket == "" {
		return nil, fmt.Errorf("source %s: no bucket (want s3://BUCKET/PREFIX): %w", redact.URL(u.String()), source.ErrBadSource)
	}
	aws, err := resolveAWS(opts, os.Getenv)
	if err != nil {
		return nil, err
	}
	eu, err := endpointURL(aws)
	if err != nil {
		return nil, err
	}
	creds, err := s3Credentials(ctx, aws, opts.Anonymous)
	if err != nil {
		return nil, err
	}
	tr, err := minio.DefaultTransport(eu.Scheme == "https")
	if err != nil {
		return nil, err
	}
	tr.DisableCompression = true
	tr.MaxIdleConnsPerHost = 64
	// Every wait bounded by --timeout: a listing or a HEAD that stalls
	// halfway fails as a transient fault instead of hanging.
	timeout := cmp.Or(opts.Timeout, source.DefaultTimeout)
	tr.DialContext = source.IdleDial(source.DialFunc(testhook.DialContext((&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext)), timeout)
	tr.TLSHandshakeTimeout = timeout
	tr.ResponseHeaderTimeout = timeout
	core, err := minio.NewCore(eu.Host, &minio.Options{
		Creds:     creds,
		Secure:    eu.Scheme == "https",
		Region:    aws.region,
		Transport: tr,
		// The engine retries with its own policy and stall timeout.
		MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", eu.Host, err)
	}
	s := &s3Source{core: *core, bucket: bucket, label: "s3://" + bucket + "/"}

	// A key that is empty or ends in "/" is a directory; otherwise it is a
	// name prefix unless only "key/…" objects exist.
	if key == "" || strings.HasSuffix(key, "/") {
		s.dir = key
		s.label += key
		return &source.Opened{Source: s}, s.checkBucket(ctx)
	}
	if err := s.checkBucket(ctx); err != nil {
		return nil, err
	}
	dir := ""
	if i := strings.LastIndex(key, "/"); i >= 0 {
		dir = key[:i+1]
	}
	prefix := key[len(dir):]
	isPrefix, isDir := false, false
	for obj := range s.core.Client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: key, Recursive: false, MaxKeys: 100}) {
		if obj.Err != nil {
			return nil, s3Error("list", bucket, key, obj.Err)
		}
		if obj.Key == key+"/" || strings.HasPrefix(obj.Key, key+"/") {
			isDir = true
		} else {
			isPrefix = true
		}
	}
	if isDir && !isPrefix {
		s.dir = key + "/"
		s.label += s.dir
		return &source.Opened{Source: s}, nil
	}
	s.dir = dir
	s.label += key
	return &source.Opened{Source: s, Prefix: prefix}, nil
}

func (s *s3Source) checkBucket(ctx context.Context) error {
	ok, err := s.core.BucketExists(ctx, s.bucket)
	if err != nil {
		return s3Error("open bucket", s.bucket, "", err)
	}
	if !ok {
		return fmt.Errorf("bucket %q does not exist at this endpoint (check the name, --endpoint and --region): %w", s.bucket, source.ErrNotFound)
	}
	return nil
}

// s3Error maps an S3 error response to the package's sentinels.
func s3Error(op, bucket, key string, err error) error {
	resp := minio.ToErrorResponse(err)
	where := "s3://" + bucket + "/" + key
	switch resp.Code {
	case "NoSuchBucket":
		return fmt.Errorf("%s %s: bucket %q does not exist: %w", op, where, bucket, source.ErrNotFound)
	case "NoSuchKey", "NotFound":
		return fmt.Errorf("%s %s: %w", op, where, source.ErrNotFound)
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "AllAccessDisabled":
		return fmt.Errorf("%s %s: %s (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or use --anonymous for a public bucket): %w", op, where, resp.Code, source.ErrAuth)
	case "PreconditionFailed":
		return fmt.Errorf("%s %s: %w", op, where, source.ErrChanged)
	case "InvalidRange":
		return fmt.Errorf("%s %s: %w (object shrank)", op, where, source.ErrChanged)
	}
	if resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%s %s: %w", op, where, source.ErrAuth)
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return fmt.Errorf("%s %s: %w: %w", op, where, source.ErrUnavailable, err)
	}
	return fmt.Errorf("%s %s: %w", op, where, err)
}

func (s *s3Source) String() string { return s.label }
func (s *s3Source) Close() error   { return nil }

func (s *s3Source) List(ctx context.Context) ([]source.Object, error) {
	var objs []source.Object
	for obj := range s.core.Client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.dir, Recursive: false}) {
		if obj.Err != nil {
			return nil, s3Error("list", s.bucket, s.dir, obj.Err)
		}
		name := strings.TrimPrefix(obj.Key, s.dir)
		if name == "" || strings.Contains(name, "/") {
			continue // directory markers and common prefixes
		}
		objs = append(objs, source.Object{Name: name, Size: obj.Size, ETag: strings.Trim(obj.ETag, `"`), ModTime: obj.LastModified})
	}
	return objs, nil
}

func (s *s3Source) ReadRange(ctx context.Context, obj source.Object, off, n int64) (io.ReadCloser, error) {
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, off+n-1); err != nil {
		return nil, err
	}
	if obj.ETag != "" {
		if err := opts.SetMatchETag(obj.ETag); err != nil {
			return nil, err
		}
	}
	body, info, _, err := s.core.GetObject(ctx, s.bucket, s.dir+obj.Name, opts)
	if err != nil {
		return nil, s3Error("get", s.bucket, s.dir+obj.Name, err)
	}
	if et := strings.Trim(info.ETag, `"`); obj.ETag != "" && et != "" && et != obj.ETag {
		body.Close()
		return nil, fmt.Errorf("get %s: %w", obj.Name, source.ErrChanged)
	}
	return source.ExactReader(body, n), nil
}

// References states what S3 knows of an object: additional checksums
// (asked for with checksum mode) and the ETag — an MD5 for single-part
// uploads, and for multipart uploads computed from the real part sizes,
// learned with one HEAD per part number.
func (s *s3Source) References(ctx context.Context, obj source.Object) ([]integrity.Reference, error) {
	key := s.dir + obj.Name
	info, err := s.core.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{Checksum: true})
	if err != nil {
		return nil, s3Error("stat", s.bucket, key, err)
	}
	// minio-go keeps the checksum headers in fields, not in Metadata.
	var refs []integrity.Reference
	for _, c := range []struct{ algo, value string }{
		{integrity.CRC32, info.ChecksumCRC32},
		{integrity.CRC32C, info.ChecksumCRC32C},
		{integrity.CRC64NVME, info.ChecksumCRC64NVME},
		{integrity.SHA1, info.ChecksumSHA1},
		{integrity.SHA256, info.ChecksumSHA256},
	} {
		if r, ok := integrity.S3ChecksumReference(c.algo, c.value); ok {
			refs = append(refs, r)
		}
	}
	etag := strings.Trim(info.ETag, `"`)
	if integrity.SSEHidesMD5(http.Header(info.Metadata)) {
		return refs, nil // the ETag of an SSE-KMS/SSE-C object is not an MD5
	}
	var sizes []int64
	if _, count, ok := strings.Cut(etag, "-"); ok {
		var n int
		if _, err := fmt.Sscanf(count, "%d", &n); err == nil && n > 0 && n <= 10000 {
			sizes, err = s.partSizes(ctx, key, n)
			if err != nil {
				return refs, nil // the ETag is then not a reference; others still are
			}
		}
	}
	if r, ok := integrity.ETagReference(etag, info.Size, sizes); ok {
		refs = append(refs, r)
	}
	return refs, nil
}

func (s *s3Source) partSizes(ctx context.Context, key string, n int) ([]int64, error) {
	sizes := make([]int64, 0, n)
	for i := 1; i <= n; i++ {
		info, err := s.core.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{PartNumber: i})
		if err != nil {
			return nil, s3Error("stat part", s.bucket, key, err)
		}
		sizes = append(sizes, info.Size)
	}
	return sizes, nil
}
