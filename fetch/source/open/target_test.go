package open

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/internal/retry"
)

// TestTargetOf: the record key names the server(s) and never a secret
// (user, password, presigned query), and says where an S3 endpoint was set.
func TestTargetOf(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("AWS_ENDPOINT_URL", "http://minio.lan:9000")
	for _, c := range []struct {
		specs       []string
		opts        source.OpenOptions
		id, setting string
	}{
		{[]string{"https://h.example/a?X-Amz-Signature=SECRET", "https://h.example/b?sig=SECRET", "http://g.example:8080/c"}, source.OpenOptions{},
			"http://g.example:8080 https://h.example", "the SOURCE URL"},
		{[]string{"sftp://backup:pw@nas:2222/srv/x"}, source.OpenOptions{}, "sftp://nas:2222", "the SOURCE URL (or ~/.ssh/config)"},
		{[]string{"s3://bucket/prefix/"}, source.OpenOptions{}, "http://minio.lan:9000", "AWS_ENDPOINT_URL"},
		{[]string{"s3://bucket/prefix/"}, source.OpenOptions{S3: source.S3Options{Endpoint: "https://s3.example/"}}, "https://s3.example", "--endpoint"},
		{[]string{"/srv/local/set"}, source.OpenOptions{}, "", "the SOURCE URL"},
	} {
		got, err := TargetOf(c.specs, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != c.id || got.Setting != c.setting || strings.Contains(got.ID, "SECRET") || strings.Contains(got.ID, "pw") {
			t.Errorf("%v: ID %q setting %q, want %q, %q", c.specs, got.ID, got.Setting, c.id, c.setting)
		}
	}
}

// TestOpenSourcesReachError: a server that cannot be reached at all comes
// back as a *ReachError naming the address, the cause and the fix, and is
// still a network failure for retry.Classify.
func TestOpenSourcesReachError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = OpenSources(context.Background(), []string{fmt.Sprintf("http://%s/site.tar.gz?sig=SECRET", addr)}, source.OpenOptions{})
	var re *ReachError
	if !errors.As(err, &re) || re.Reach != retry.Refused {
		t.Fatalf("%v, want a *ReachError (refused)", err)
	}
	msg := err.Error()
	for _, s := range []string{"http://" + addr, "connection refused", "check the host and port in the SOURCE URL"} {
		if !strings.Contains(msg, s) {
			t.Errorf("%q does not say %q", msg, s)
		}
	}
	if strings.Contains(msg, "SECRET") || retry.Classify(err) != retry.Transient {
		t.Errorf("%q: leaks the query string or is no longer transient (%v)", msg, retry.Classify(err))
	}
}
