package redact

import "testing"

// TestRedact: what a message may print of a SOURCE: no password, query
// (presigned signatures) or fragment, and the rest as the user wrote it.
func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://u:secret@host/dir/x.tar?X-Amz-Signature=abc", "https://u@host/dir/x.tar?…"},
		{"https://host/x#frag", "https://host/x"},
		{"sftp://backup@db2:2222/srv/dump/", "sftp://backup@db2:2222/srv/dump/"},
		{"s3://", "s3://"},
		{"s3:///key", "s3:///key"},
		{"/srv/parts", "/srv/parts"},
		{"file?x=1", "file?…"},
	} {
		if got := URL(c.in); got != c.want {
			t.Errorf("URL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
