package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIOVersion is the pinned MinIO server release, as a Go module version of
// github.com/minio/minio. .ci/test reads it from this line; keep the form.
const MinIOVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

// MinIORegion is the region the test server runs in and clients sign for.
const MinIORegion = "us-east-1"

const (
	minioModule       = "github.com/minio/minio"
	minioStartTimeout = 30 * time.Second
	minioStopTimeout  = 10 * time.Second
	minioBuildTimeout = 25 * time.Minute
	minioStartTries   = 3
)

// MinIOBinary returns the path of the pinned MinIO server binary. It uses,
// in order: $HAUL_MINIO; the cached build at
// ${XDG_CACHE_HOME:-~/.cache}/haul/minio-<MinIOVersion>/minio; a fresh
// `go install github.com/minio/minio@<MinIOVersion>` into that directory
// (about five minutes), done under an exclusive file lock so that parallel
// test binaries build it once.
func MinIOBinary() (string, error) {
	return minioBinary(nil)
}

// MinIOCacheDir returns the directory MinIOBinary installs the server into.
func MinIOCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("minio cache dir: %w", err)
	}
	return filepath.Join(base, "haul", "minio-"+MinIOVersion), nil
}

func minioBinary(logf func(format string, args ...any)) (string, error) {
	if p := os.Getenv("HAUL_MINIO"); p != "" {
		if err := checkExecutable(p); err != nil {
			return "", fmt.Errorf("HAUL_MINIO: %w", err)
		}
		return p, nil
	}
	dir, err := MinIOCacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "minio")
	if checkExecutable(bin) == nil {
		return bin, nil
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("minio not in %s and no go tool to build it (set HAUL_MINIO or run .ci/test): %w", dir, err)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("minio cache dir: %w", err)
	}
	unlock, err := lockFile(filepath.Join(parent, "minio-"+MinIOVersion+".lock"))
	if err != nil {
		return "", fmt.Errorf("minio build lock: %w", err)
	}
	defer unlock()
	// Another process may have finished the build while we waited.
	if checkExecutable(bin) == nil {
		return bin, nil
	}
	if logf != nil {
		logf("testenv: building MinIO %s into %s (about 5 minutes, once)", MinIOVersion, dir)
	}
	// Build into a staging directory and rename, so the final path exists
	// only when the binary is complete.
	stage, err := os.MkdirTemp(parent, "minio-build-")
	if err != nil {
		return "", fmt.Errorf("minio build dir: %w", err)
	}
	defer os.RemoveAll(stage)
	ctx, cancel := context.WithTimeout(context.Background(), minioBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "install", minioModule+"@"+MinIOVersion)
	cmd.Dir = stage
	cmd.Env = append(os.Environ(), "GOBIN="+stage, "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", minioModule, MinIOVersion, err, tailLines(out, 30))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("minio cache dir: %w", err)
	}
	if err := os.Rename(filepath.Join(stage, "minio"), bin); err != nil {
		return "", fmt.Errorf("install minio binary: %w", err)
	}
	return bin, nil
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// MinIO is a running MinIO server on 127.0.0.1 with its own data directory
// and random root credentials.
type MinIO struct {
	// Endpoint is the S3 endpoint, http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are the root credentials.
	AccessKey string
	SecretKey string

	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
	client  *minio.Client
	core    *minio.Core

	stopOnce sync.Once
	stopErr  error
}

// StartMinIO starts a MinIO server for one test and stops it in t.Cleanup.
// Its data lives in t.TempDir(). When the binary cannot be had, the test
// fails under CI and is skipped otherwise.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin, err := minioBinary(t.Logf)
	if err != nil {
		Missing(t, "testenv: MinIO server unavailable: %v", err)
	}
	dir := t.TempDir()
	m, err := startMinIO(bin, dir)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := m.stop(); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return m
}

var shared struct {
	once    sync.Once
	m       *MinIO
	missing error
	err     error
}

// SharedMinIO returns the one MinIO server of this test binary, starting it
// on first use. Tests that share it must use their own bucket names. The
// package's TestMain must be `func TestMain(m *testing.M) { testenv.Main(m) }`
// so that the server is stopped and its data removed when the tests end.
func SharedMinIO(t testing.TB) *MinIO {
	t.Helper()
	if !mainRunning.Load() {
		t.Fatal("testenv: SharedMinIO needs `func TestMain(m *testing.M) { testenv.Main(m) }` in this test package (or use StartMinIO)")
	}
	shared.once.Do(func() {
		bin, err := minioBinary(t.Logf)
		if err != nil {
			shared.missing = err
			return
		}
		dir, err := os.MkdirTemp("", "haul-minio-")
		if err != nil {
			shared.err = fmt.Errorf("minio data dir: %w", err)
			return
		}
		m, err := startMinIO(bin, dir)
		if err != nil {
			_ = os.RemoveAll(dir)
			shared.err = err
			return
		}
		shared.m = m
		AtExit(func() {
			if err := m.stop(); err != nil {
				fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
			}
			_ = os.RemoveAll(dir)
		})
	})
	if shared.missing != nil {
		Missing(t, "testenv: MinIO server unavailable: %v", shared.missing)
	}
	if shared.err != nil {
		t.Fatalf("testenv: %v", shared.err)
	}
	return shared.m
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// startMinIO runs the server with its files under dir and waits until it is
// live. A port lost to another process between picking and binding is
// retried with new ports.
func startMinIO(bin, dir string) (*MinIO, error) {
	var lastErr error
	for try := 0; try < minioStartTries; try++ {
		m, retry, err := startMinIOOnce(bin, filepath.Join(dir, "try"+strconv.Itoa(try)))
		if err == nil {
			return m, nil
		}
		lastErr = err
		if !retry {
			break
		}
	}
	return nil, lastErr
}

func startMinIOOnce(bin, dir string) (m *MinIO, retry bool, err error) {
	port, err := freePort()
	if err != nil {
		return nil, false, err
	}
	consolePort, err := freePort()
	if err != nil {
		return nil, false, err
	}
	dataDir := filepath.Join(dir, "data")
	certsDir := filepath.Join(dir, "certs")
	for _, d := range []string{dataDir, certsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, false, fmt.Errorf("minio dir: %w", err)
		}
	}
	logPath := filepath.Join(dir, "minio.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, false, fmt.Errorf("minio log: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	m = &MinIO{
		Endpoint:  "http://" + addr,
		AccessKey: "haul" + randomHex(8),
		SecretKey: randomHex(20),
		exited:    make(chan struct{}),
		logPath:   logPath,
	}
	cmd := exec.Command(bin, "server",
		"--address", addr,
		"--console-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(consolePort)),
		"--certs-dir", certsDir,
		"--anonymous", // keeps credentials out of its log
		dataDir)
	cmd.Dir = dir
	cmd.Env = append(minioFreeEnv(),
		"MINIO_ROOT_USER="+m.AccessKey,
		"MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
		"MINIO_SITE_REGION="+MinIORegion,
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	dieWithParent(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		return nil, false, fmt.Errorf("start minio: %w", err)
	}
	m.cmd = cmd
	go func() {
		_ = cmd.Wait()
		close(m.exited)
	}()

	if err := m.waitLive(); err != nil {
		_ = m.stop()
		log := m.logTail()
		retry = strings.Contains(log, "address already in use")
		return nil, retry, fmt.Errorf("minio on %s: %w\n--- minio log (tail) ---\n%s", addr, err, log)
	}

	m.client, err = minio.New(addr, &minio.Options{
		Creds:  credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
		Secure: false,
		Region: MinIORegion,
	})
	if err != nil {
		_ = m.stop()
		return nil, false, fmt.Errorf("minio client: %w", err)
	}
	m.core = &minio.Core{Client: m.client}
	return m, false, nil
}

// minioFreeEnv is the environment without MINIO_* and AWS_* variables, so
// an operator's settings cannot change the test server.
func minioFreeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "MINIO_") || strings.HasPrefix(kv, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// waitLive polls the liveness endpoint until it answers 200, the process
// exits, or minioStartTimeout passes.
func (m *MinIO) waitLive() error {
	const interval = 50 * time.Millisecond
	hc := &http.Client{Timeout: time.Second}
	url := m.Endpoint + "/minio/health/live"
	var lastErr error
	for i := 0; i < int(minioStartTimeout/interval); i++ {
		resp, err := hc.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("health: %s", resp.Status)
		}
		lastErr = err
		select {
		case <-m.exited:
			return fmt.Errorf("minio exited before it was live (%v)", m.cmd.ProcessState)
		case <-time.After(interval):
		}
	}
	return fmt.Errorf("not live after %v: %w", minioStartTimeout, lastErr)
}

// logTail returns the last lines of the server's log.
func (m *MinIO) logTail() string {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return tailLines(b, 40)
}

func tailLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop ends the server: SIGTERM, then SIGKILL if it has not exited within
// minioStopTimeout. It is safe to call more than once.
func (m *MinIO) stop() error {
	m.stopOnce.Do(func() {
		select {
		case <-m.exited:
			return
		default:
		}
		_ = m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.exited:
			return
		case <-time.After(minioStopTimeout):
		}
		_ = m.cmd.Process.Kill()
		select {
		case <-m.exited:
		case <-time.After(minioStopTimeout):
			m.stopErr = fmt.Errorf("minio pid %d did not exit after SIGKILL", m.cmd.Process.Pid)
		}
	})
	return m.stopErr
}

// Client returns a minio-go client for the server with root credentials.
func (m *MinIO) Client() *minio.Client { return m.client }

// Env returns the environment a subprocess (the haul binary) needs to reach
// the server with the standard AWS variables, as "KEY=value" strings.
func (m *MinIO) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + m.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + m.SecretKey,
		"AWS_ENDPOINT_URL=" + m.Endpoint,
		"AWS_REGION=" + MinIORegion,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// MakeBucket creates bucket name or fails the test.
func (m *MinIO) MakeBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: MinIORegion}); err != nil {
		t.Fatalf("testenv: make bucket %s: %v", name, err)
	}
}

// NewBucket creates a bucket with a fresh random name and returns the name;
// tests on a SharedMinIO use it to stay out of each other's way.
func (m *MinIO) NewBucket(t testing.TB) string {
	t.Helper()
	name := "haul-" + randomHex(8)
	m.MakeBucket(t, name)
	return name
}
