package sshdial

import "testing"

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/srv/backup.tar.gz": "/srv/backup.tar.gz",
		"it's":               `'it'\''s'`,
		"a b":                "'a b'",
		"":                   "''",
		"[127.0.0.1]:2222":   "'[127.0.0.1]:2222'",
	} {
		if got := ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
