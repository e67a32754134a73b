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
		// A mirror's connections (#j=N) are no secret; the rest still is.
		{"https://m/set/#j=3", "https://m/set/#j=3"},
		{"https://u:pw@m/x?X-Amz-Signature=abc#j=2", "https://u@m/x?…#j=2"},
		{"/mnt/nas#j=0", "/mnt/nas#j=0"},
		{"https://m/x#j=2&token=s", "https://m/x"},
		// An unescaped "#" in a password: the URL does not parse, and
		// the password still does not show.
		{"https://u:pa#j=1@m/x", "https://u@m/x"},
		{"https://u:p?s#w@m/x?sig=1", "https://u@m/x?…"},
		// A "/" in a password: the URL parses no host, the password
		// still does not show.
		{"sftp://user:pa/ss@host/dir", "sftp://user@host/dir"},
		{"sftp://user:p/a@s/s@host/dir#j=2", "sftp://user@host/dir#j=2"},
	} {
		if got := URL(c.in); got != c.want {
			t.Errorf("URL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
