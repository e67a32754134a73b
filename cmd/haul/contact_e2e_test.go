package main

// Issue 16 acceptance 4 through the binary, against a real MinIO: the AWS
// configuration read the way the AWS tools read it, a clear line when
// there are no credentials, and exit codes cron can trust — a source never
// reached that cannot be reached is a configuration problem (1), a source
// reached before that is down is "run again later" (75) until
// --give-up-after (1).

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/haul-dev/haul/internal/testenv"
)

// awsCleared blanks every AWS variable an operator's shell or CI may carry
// and points HOME at home, so only what a test writes is configuration.
func awsCleared(home string) []string {
	env := []string{"HOME=" + home}
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_SESSION_TOKEN",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
		env = append(env, k+"=")
	}
	return env
}

// wantSay checks that r exited with code and said, on one line of
// stderr, each of says.
func wantSay(t *testing.T, r result, code int, says ...string) {
	t.Helper()
	wantCode(t, r, code)
	e2eOneLine(t, r)
	t.Logf("exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	for _, s := range says {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("the message does not say %q: %s", s, r.stderr)
		}
	}
}

// writeAWS writes HOME/.aws/NAME.
func writeAWS(t *testing.T, home, name, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(home, ".aws"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".aws", name), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestS3AWSConfig: endpoint, region and keys from ~/.aws (HOME a temp dir,
// no AWS variable set) reach MinIO and the set arrives intact; the AWS
// CLI's precedence holds (a flag beats the environment beats the profile).
func TestS3AWSConfig(t *testing.T) {
	m := testenv.SharedMinIO(t)
	bucket := m.NewBucket(t)
	parts := e2eSet(41, 300_000, 200_000)
	e2ePutMinIO(t, m, bucket, "set/", parts)
	src := "s3://" + bucket + "/set/"
	dead := fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t))
	keys := fmt.Sprintf("aws_access_key_id = %s\naws_secret_access_key = %s\n", m.AccessKey, m.SecretKey)

	cases := []struct {
		name   string
		config string // ~/.aws/config
		creds  string // ~/.aws/credentials
		env    []string
		flags  []string
		code   int
		say    string
	}{
		{name: "services section of a named profile",
			config: "# haul test\n[profile backup]\nregion = " + testenv.MinIORegion + "\nservices = local-s3\n\n[services local-s3]\ns3 =\n  endpoint_url = " + m.Endpoint + "\n",
			creds:  "[backup]\n" + keys, env: []string{"AWS_PROFILE=backup"}},
		{name: "endpoint_url and keys of the default profile in config",
			config: "[default]\nregion = " + testenv.MinIORegion + "\nendpoint_url = " + m.Endpoint + "\n" + keys},
		{name: "AWS_ENDPOINT_URL_S3 beats the profile",
			config: "[default]\nendpoint_url = " + m.Endpoint + "\n", creds: "[default]\n" + keys,
			env: []string{"AWS_ENDPOINT_URL_S3=" + dead}, code: 1, say: "AWS_ENDPOINT_URL_S3"},
		{name: "--endpoint beats the environment",
			config: "[default]\nendpoint_url = " + dead + "\n", creds: "[default]\n" + keys,
			env: []string{"AWS_ENDPOINT_URL=" + dead}, flags: []string{"--endpoint", m.Endpoint}},
		{name: "AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE",
			env: []string{"AWS_CONFIG_FILE=" + filepath.Join("ELSEWHERE", "cfg"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join("ELSEWHERE", "keys")}},
		{name: "a profile that does not exist",
			config: "[default]\nendpoint_url = " + m.Endpoint + "\n", creds: "[default]\n" + keys,
			env: []string{"AWS_PROFILE=nosuch"}, code: 1, say: "AWS_PROFILE=nosuch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			home := t.TempDir()
			env := append(awsCleared(home), c.env...)
			if c.config != "" {
				writeAWS(t, home, "config", c.config)
			}
			if c.creds != "" {
				writeAWS(t, home, "credentials", c.creds)
			}
			if strings.Contains(strings.Join(c.env, " "), "ELSEWHERE") {
				// Files outside HOME, named by the environment alone.
				other := t.TempDir()
				writeAWS(t, other, "cfg", "[default]\nendpoint_url = "+m.Endpoint+"\nregion = "+testenv.MinIORegion+"\n")
				writeAWS(t, other, "keys", "[default]\n"+keys)
				env = append(env, "AWS_CONFIG_FILE="+filepath.Join(other, ".aws", "cfg"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(other, ".aws", "keys"))
			}
			dest := t.TempDir()
			r := runHaul(t, env, append([]string{"fetch", src, dest, "--progress", "log"}, c.flags...)...)
			wantCode(t, r, c.code)
			if c.code == 0 {
				e2eIdentical(t, dest, parts)
				return
			}
			e2eOneLine(t, r)
			t.Logf("exit %d: %s", r.code, strings.TrimSpace(r.stderr))
			if !strings.Contains(r.stderr, c.say) {
				t.Errorf("the message does not name %q: %s", c.say, r.stderr)
			}
			e2eNoSecret(t, dest, r, m.SecretKey)
		})
	}
}

// TestS3NoCredentials: no key anywhere and no --anonymous is said in one
// line naming where haul looked, exit 1, before any request reaches the
// server; with HOME unset (a systemd unit without User=) the line says so.
func TestS3NoCredentials(t *testing.T) {
	m := testenv.SharedMinIO(t)
	bucket := m.NewBucket(t)
	m.Put(t, bucket, "set/backup.bak", e2eBytes(42, 1000))
	proxy := testenv.StartCappedProxy(t, strings.TrimPrefix(m.Endpoint, "http://"), 1<<30)
	endpoint := "http://" + proxy.Addr
	for _, c := range []struct {
		name string
		home string
		say  []string
	}{
		{"empty home", t.TempDir(), []string{"no AWS credentials found", "AWS_ACCESS_KEY_ID", ".aws/credentials", "--anonymous"}},
		{"no HOME", "", []string{"no AWS credentials found", "HOME is not set", "EnvironmentFile=", "--anonymous"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dest := t.TempDir()
			r := runHaul(t, append(awsCleared(c.home), "AWS_ENDPOINT_URL="+endpoint), "fetch", "s3://"+bucket+"/set/", dest, "--progress", "log")
			wantSay(t, r, 1, c.say...)
			if n := proxy.Accepted(); n != 0 {
				t.Errorf("%d connections reached the server; want none before credentials are found", n)
			}
		})
	}
	t.Run("--anonymous still asks", func(t *testing.T) {
		// A private bucket then answers AccessDenied: the server was asked.
		r := runHaul(t, append(awsCleared(t.TempDir()), "AWS_ENDPOINT_URL="+endpoint), "fetch", "s3://"+bucket+"/set/", t.TempDir(), "--anonymous", "--progress", "log")
		wantCode(t, r, 1)
		if proxy.Accepted() == 0 || strings.Contains(r.stderr, "no AWS credentials found") {
			t.Errorf("--anonymous must send the request; %d connections: %s", proxy.Accepted(), r.stderr)
		}
	})
}

// TestFirstContact: a source this DEST never reached that cannot be reached
// is a configuration problem: exit 1 with the cause and the fix on one
// line, after at most one quick retry — not --retries tries ending in 75.
func TestFirstContact(t *testing.T) {
	m := testenv.SharedMinIO(t)
	port := testenv.FreePort(t) // nothing listens there
	cases := []struct {
		name     string
		endpoint string
		say      []string
	}{
		{"wrong port", fmt.Sprintf("http://127.0.0.1:%d", port), []string{"connection refused", "--endpoint"}},
		{"name that does not resolve", "http://minio.haul-test.invalid:9000", []string{"minio.haul-test.invalid", "does not resolve", "--endpoint"}},
		{"https to a plain http server", strings.Replace(m.Endpoint, "http://", "https://", 1), []string{"plain HTTP", "use " + m.Endpoint}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dest := t.TempDir()
			// HAUL_TEST_NO_DNS: the .invalid name fails in haul's dialler
			// as the resolver would say, with no query leaving the machine.
			r := runHaul(t, append(m.Env(), "HAUL_TEST_NO_DNS=1"), "fetch", "s3://bucket/set/", dest, "--endpoint", c.endpoint, "--retries", "10", "--progress", "log")
			wantSay(t, r, 1, c.say...)
			if n := strings.Count(r.stdout+r.stderr, "retrying ("); n > 1 {
				t.Errorf("a first contact was retried %d times; want at most once:\n%s%s", n, r.stdout, r.stderr)
			}
			e2eNoSecret(t, dest, r, m.SecretKey)
		})
	}
}

// TestReachedThenDown: once a DEST has reached its source, the source
// going away is the network down (75), until it has been failing longer
// than --give-up-after across runs (1); a run that reaches it again resets
// that clock.
func TestReachedThenDown(t *testing.T) {
	m := testenv.SharedMinIO(t)
	bucket := m.NewBucket(t)
	parts := e2eSet(43, 150_000)
	e2ePutMinIO(t, m, bucket, "set/", parts)
	fw := startForwarder(t, strings.TrimPrefix(m.Endpoint, "http://"))
	dest := t.TempDir()
	fetch := func(extra ...string) result {
		return runHaul(t, m.Env(), append([]string{"fetch", "s3://" + bucket + "/set/", dest, "--endpoint", "http://" + fw.addr, "--retries", "2", "--progress", "log"}, extra...)...)
	}
	wantCode(t, fetch(), 0)
	e2eIdentical(t, dest, parts)

	fw.stop()
	r := fetch()
	wantCode(t, r, 75)
	e2eOneLine(t, r)
	t.Logf("exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	r = fetch("--give-up-after", "1h")
	wantCode(t, r, 75) // failing for milliseconds, not an hour
	r = fetch("--give-up-after", "1ms")
	wantCode(t, r, 1)
	e2eOneLine(t, r)
	t.Logf("exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	if !strings.Contains(r.stderr, "--give-up-after") || !strings.Contains(r.stderr, fw.addr) {
		t.Errorf("giving up must say why and name the source: %s", r.stderr)
	}
	// The same through the environment, as an EnvironmentFile sets it.
	r = runHaul(t, append(m.Env(), "HAUL_GIVE_UP_AFTER=1ms"), "fetch", "s3://"+bucket+"/set/", dest, "--endpoint", "http://"+fw.addr, "--retries", "2", "--progress", "log")
	wantCode(t, r, 1)

	// Back up: the run succeeds and the failure clock starts over.
	fw.start(t)
	wantCode(t, fetch(), 0)
	fw.stop()
	wantCode(t, fetch("--give-up-after", "1ms"), 75) // the first failure since the success
	e2eNoSecret(t, dest, r, m.SecretKey)

	// The record names the source without a secret and is private.
	fi, err := os.Stat(filepath.Join(dest, ".haul", "contact.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("contact.json mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(filepath.Join(dest, ".haul", "contact.json"))
	var rec struct {
		Sources map[string]json.RawMessage `json:"sources"`
	}
	if err := json.Unmarshal(data, &rec); err != nil || len(rec.Sources) != 1 || strings.Contains(string(data), m.SecretKey) {
		t.Errorf("contact.json: %v: %s", err, data)
	}
}

// forwarder is a TCP forwarder to a server that a test can take down and
// bring back on the same address: the network going away under a source.
type forwarder struct {
	addr, target string
	mu           sync.Mutex
	l            net.Listener
	conns        map[net.Conn]bool
	wg           sync.WaitGroup
}

func startForwarder(t *testing.T, target string) *forwarder {
	f := &forwarder{addr: "127.0.0.1:0", target: target}
	f.start(t)
	f.addr = f.l.Addr().String()
	t.Cleanup(f.stop)
	return f
}

func (f *forwarder) start(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", f.addr)
	if err != nil {
		t.Fatalf("forwarder: %v", err)
	}
	f.mu.Lock()
	f.l, f.conns = l, map[net.Conn]bool{}
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return // closed by stop
			}
			up, err := net.Dial("tcp", f.target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns[c], f.conns[up] = true, true
			f.mu.Unlock()
			f.wg.Add(2)
			go func() { defer f.wg.Done(); io.Copy(up, c); up.Close() }()
			go func() { defer f.wg.Done(); io.Copy(c, up); c.Close() }()
		}
	}()
}

// stop closes the listener and every connection forwarded: the address
// then refuses connections.
func (f *forwarder) stop() {
	f.mu.Lock()
	if f.l != nil {
		f.l.Close()
		f.l = nil
	}
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// TestSFTPContact: the contact rule holds for SSH sources too. A host
// name that does not resolve is exit 1 with the cause and the fix when
// this DEST never reached the server, after at most one quick retry; once
// reached (through an ~/.ssh/config alias), the same name failing to
// resolve is the network down: --retries tries, then exit 75.
func TestSFTPContact(t *testing.T) {
	h := newSSHHost(t)
	parts := e2eSet(44, 120_000, 80_000)
	h.put(t, parts)
	sshDir := filepath.Join(h.home, ".ssh")
	if err := os.MkdirAll(sshDir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeConfig := func(hostName string) {
		t.Helper()
		cfg := strings.Replace(h.d.SSHConfig("backup"), "HostName "+h.d.Host, "HostName "+hostName, 1)
		if err := os.WriteFile(filepath.Join(sshDir, "config"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// HAUL_TEST_NO_DNS: the .invalid name fails in haul's dialler as the
	// resolver would say, with no query leaving the machine.
	noDNS := []string{"HAUL_TEST_NO_DNS=1"}
	fetch := func(src, dest string) result {
		return h.run(t, noDNS, "fetch", src, dest, "--known-hosts", h.kh, "--retries", "3", "--progress", "log")
	}

	t.Run("never reached", func(t *testing.T) {
		r := fetch(fmt.Sprintf("sftp://%s@backup.haul-test.invalid:%d%s/", h.d.User, h.d.Port, h.remote), t.TempDir())
		wantSay(t, r, 1, "backup.haul-test.invalid", "does not resolve", "SOURCE URL")
		if n := strings.Count(r.stdout+r.stderr, "retrying ("); n > 1 {
			t.Errorf("a first contact was retried %d times; want at most once:\n%s%s", n, r.stdout, r.stderr)
		}
	})
	t.Run("reached before", func(t *testing.T) {
		dest := t.TempDir()
		src := "sftp://backup" + h.remote + "/"
		writeConfig(h.d.Host)
		wantCode(t, fetch(src, dest), 0)
		e2eIdentical(t, dest, parts)

		writeConfig("gone.haul-test.invalid")
		r := fetch(src, dest)
		wantSay(t, r, 75, "gone.haul-test.invalid")
		if n := strings.Count(r.stdout+r.stderr, "retrying ("); n < 2 {
			t.Errorf("a source reached before was retried %d times; want --retries 3 tries:\n%s%s", n, r.stdout, r.stderr)
		}
		e2eIdentical(t, dest, parts) // nothing lost by the failed run
	})
}
