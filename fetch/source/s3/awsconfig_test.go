package s3

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haul-dev/haul/fetch/source"
)

const awsConfig = `# written by aws configure
[default]
region = eu-west-1
endpoint_url = https://default.example

[profile backup]
region=eu-central-1
services = local
s3 =
  addressing_style = path

[profile plain]
endpoint_url = https://plain.example
ignore_configured_endpoint_urls = true

[services local]
s3 =
  endpoint_url = http://127.0.0.1:9000
dynamodb =
  endpoint_url = http://127.0.0.1:8000

[profile noscheme]
endpoint_url = minio.local:9000
`

// TestResolveAWS: the AWS CLI's order for the endpoint and the region,
// profiles in both section forms, and what a message says about where a
// value came from.
func TestResolveAWS(t *testing.T) {
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".aws"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(home, ".aws", "config")
	if err := os.WriteFile(cfg, []byte(awsConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".aws", "credentials"), []byte("[onlykeys]\naws_access_key_id = A\naws_secret_access_key = B\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name               string
		opts               source.S3Options
		env                map[string]string
		endpoint, from     string
		region, errSays    string
		noHome, wantNoHome bool
	}{
		{name: "default profile", endpoint: "https://default.example", from: "endpoint_url in [default]", region: "eu-west-1"},
		{name: "services section of [profile backup]", env: map[string]string{"AWS_PROFILE": "backup"},
			endpoint: "http://127.0.0.1:9000", from: "s3 endpoint_url in [services local]", region: "eu-central-1"},
		{name: "AWS_ENDPOINT_URL beats the profile", env: map[string]string{"AWS_PROFILE": "backup", "AWS_ENDPOINT_URL": "http://env"},
			endpoint: "http://env", from: "AWS_ENDPOINT_URL", region: "eu-central-1"},
		{name: "AWS_ENDPOINT_URL_S3 beats AWS_ENDPOINT_URL", env: map[string]string{"AWS_ENDPOINT_URL": "http://env", "AWS_ENDPOINT_URL_S3": "http://s3env"},
			endpoint: "http://s3env", from: "AWS_ENDPOINT_URL_S3", region: "eu-west-1"},
		{name: "flags beat everything", opts: source.S3Options{Endpoint: "http://flag", Region: "r-flag"},
			env:      map[string]string{"AWS_ENDPOINT_URL_S3": "http://s3env", "AWS_REGION": "r-env"},
			endpoint: "http://flag", from: "--endpoint", region: "r-flag"},
		{name: "AWS_REGION, then AWS_DEFAULT_REGION", env: map[string]string{"AWS_DEFAULT_REGION": "r-default"}, endpoint: "https://default.example", from: "endpoint_url", region: "r-default"},
		{name: "ignore configured endpoints (env)", env: map[string]string{"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true", "AWS_ENDPOINT_URL": "http://env"}, region: "eu-west-1"},
		{name: "ignore configured endpoints (profile)", env: map[string]string{"AWS_PROFILE": "plain"}},
		{name: "a profile only in the credentials file", env: map[string]string{"AWS_PROFILE": "onlykeys"}},
		{name: "unknown profile", env: map[string]string{"AWS_PROFILE": "nosuch"}, errSays: "AWS_PROFILE=nosuch: no such profile"},
		{name: "endpoint without a scheme", env: map[string]string{"AWS_PROFILE": "noscheme"}, errSays: "needs a scheme: http://minio.local:9000"},
		{name: "AWS_CONFIG_FILE elsewhere", env: map[string]string{"AWS_CONFIG_FILE": filepath.Join(home, "none")}, noHome: true, wantNoHome: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := func(k string) string {
				if k == "HOME" && !c.noHome {
					return home
				}
				return c.env[k]
			}
			s, err := resolveAWS(c.opts, env)
			if c.errSays != "" {
				if err == nil || !strings.Contains(err.Error(), c.errSays) || !source.IsPermanent(err) {
					t.Fatalf("%v, want a permanent error saying %q", err, c.errSays)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.endpoint != c.endpoint || !strings.HasPrefix(s.endpointFrom, c.from) || s.region != c.region || s.noHome != c.wantNoHome {
				t.Errorf("endpoint %q from %q, region %q, noHome %v; want %q from %q…, %q, %v", s.endpoint, s.endpointFrom, s.region, s.noHome, c.endpoint, c.from, c.region, c.wantNoHome)
			}
		})
	}
}

func TestParseINI(t *testing.T) {
	f, err := parseINI([]byte(awsConfig))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ sec, key, want string }{
		{"default", "region", "eu-west-1"},
		{"profile backup", "region", "eu-central-1"},
		{"profile backup", "s3.addressing_style", "path"},
		{"services local", "s3.endpoint_url", "http://127.0.0.1:9000"},
		{"services local", "dynamodb.endpoint_url", "http://127.0.0.1:8000"},
	} {
		if got := f[c.sec][c.key]; got != c.want {
			t.Errorf("[%s] %s = %q, want %q", c.sec, c.key, got, c.want)
		}
	}
	for _, bad := range []string{"key = before any section\n", "[unclosed\n", "[s]\njust words\n"} {
		if _, err := parseINI([]byte(bad)); err == nil {
			t.Errorf("%q parsed; want an error naming the line", bad)
		}
	}
}
