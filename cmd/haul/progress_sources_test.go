package main

import (
	"strings"
	"testing"
)

// TestSourceLabels: the progress names each source by host[:port] alone
// (no user, password, path or query string), and by its redacted name
// when it has no host or shares its host with another source.
func TestSourceLabels(t *testing.T) {
	for _, c := range []struct {
		name       string
		in, want   []string
		notInclude string
	}{
		{"hosts", []string{"https://u:pw@a.example:8443/dir/x.tar?X-Amz-Signature=S3CR3T (+4 URLs)", "sftp://backup@db2:2222/srv/"},
			[]string{"a.example:8443", "db2:2222"}, "S3CR3T"},
		{"a path", []string{"s3://bucket/dir/", "/mnt/nas/parts"}, []string{"bucket", "/mnt/nas/parts"}, ""},
		{"same host", []string{"http://127.0.0.1:9/a/", "http://127.0.0.1:9/b/?sig=S3CR3T"},
			[]string{"http://127.0.0.1:9/a/", "http://127.0.0.1:9/b/?…"}, "S3CR3T"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := sourceLabels(c.in)
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("labels %q, want %q", got, c.want)
			}
			if c.notInclude != "" && strings.Contains(strings.Join(got, " "), c.notInclude) {
				t.Errorf("labels %q show %q", got, c.notInclude)
			}
		})
	}
}
