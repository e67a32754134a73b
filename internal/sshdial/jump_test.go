package sshdial

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haul-dev/haul/internal/retry"
)

func TestParseProxyJump(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []jumpSpec // nil with bad "" = no jump
		bad  string     // a part of the error, "" = no error
	}{
		{in: "", want: nil},
		{in: "none", want: nil},
		{in: " NONE ", want: nil},
		{in: "bastion", want: []jumpSpec{{spec: "bastion", host: "bastion"}}},
		{in: "ops@bastion:2222", want: []jumpSpec{{spec: "ops@bastion:2222", user: "ops", host: "bastion", port: 2222}}},
		{in: "a, b@c:23", want: []jumpSpec{{spec: "a", host: "a"}, {spec: "b@c:23", user: "b", host: "c", port: 23}}},
		{in: "me@corp.example@gw", want: []jumpSpec{{spec: "me@corp.example@gw", user: "me@corp.example", host: "gw"}}},
		{in: "[2001:db8::1]:2200", want: []jumpSpec{{spec: "[2001:db8::1]:2200", host: "2001:db8::1", port: 2200}}},
		{in: "u@[::1]", want: []jumpSpec{{spec: "u@[::1]", user: "u", host: "::1"}}},
		{in: "ssh://ops@bastion:2022", want: []jumpSpec{{spec: "ssh://ops@bastion:2022", user: "ops", host: "bastion", port: 2022}}},
		{in: "ssh://bastion/", want: []jumpSpec{{spec: "ssh://bastion/", host: "bastion"}}},
		{in: "a,,b", bad: "empty host"},
		{in: "a,none", bad: "stands alone"},
		{in: "bastion:0", bad: "bad port"},
		{in: "bastion:ssh", bad: "bad port"},
		{in: "bastion:70000", bad: "bad port"},
		{in: "@bastion", bad: "empty user"},
		{in: "u@", bad: "bad host"},
		{in: "::1", bad: "brackets"},
		{in: "[::1", bad: "missing ]"},
		{in: "[::1]2200", bad: "expected :PORT"},
		{in: "ssh://u:secret@bastion", bad: "password"},
		{in: "ssh://bastion/some/path", bad: "only ssh://"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseProxyJump(tc.in)
			if tc.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("got %+v, %v; want an error about %q", got, err, tc.bad)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Fatalf("the password is in the message: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("hop %d: %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestResolveProxyJump: each hop gets its own Host block; the URL's user
// and port are the target's only; the first hop's own ProxyJump is
// followed and the later hops' are not, as ssh does; loops and
// ProxyCommand are refused with the fix.
func TestResolveProxyJump(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	cfg := filepath.Join(home, "cfg")
	conf := `
Host db
    HostName 10.0.0.5
    ProxyJump bastion

Host chained
    HostName 10.0.0.6
    ProxyJump inner,ops@second:2200

Host inner
    HostName 10.9.0.1
    User innie
    ProxyJump outer

Host second
    HostName 10.9.0.2
    IdentityFile ~/.ssh/second_key
    ProxyJump ignored-because-not-first

Host outer bastion
    ProxyJump none

Host bastion
    HostName bastion.example
    Port 2022
    User jumper
    IdentityFile ~/.ssh/jump_key
    UserKnownHostsFile ~/.ssh/jump_known_hosts

Host loopy
    ProxyJump loopy2
Host loopy2
    ProxyJump loopy

Host piped
    ProxyCommand ssh -W %h:%p bastion

Host *
    User fallback
`
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := Options{ConfigFile: cfg}

	tg, err := resolveSSHTarget(mustURL(t, "sftp://root@db:2200/x"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if tg.user != "root" || tg.port != 2200 || len(tg.jumps) != 1 {
		t.Fatalf("target %+v", tg)
	}
	j := tg.jumps[0]
	if j.alias != "bastion" || j.addr() != "bastion.example:2022" || j.user != "jumper" ||
		strings.Join(j.identityFiles, "|") != home+"/.ssh/jump_key" ||
		strings.Join(j.userKnownHosts, "|") != home+"/.ssh/jump_known_hosts" || len(j.jumps) != 0 {
		t.Fatalf("jump host %+v", j)
	}

	tg, err = resolveSSHTarget(mustURL(t, "sftp://chained/x"), opts)
	if err != nil {
		t.Fatal(err)
	}
	var chain []string
	for _, h := range tg.jumps {
		chain = append(chain, h.user+"@"+h.addr())
	}
	if want := "fallback@outer:22|innie@10.9.0.1:22|ops@10.9.0.2:2200"; strings.Join(chain, "|") != want {
		t.Fatalf("chain %s, want %s", strings.Join(chain, "|"), want)
	}
	if ids := tg.jumps[2].identityFiles; len(ids) != 1 || ids[0] != home+"/.ssh/second_key" {
		t.Fatalf("second hop's identity files %q", ids)
	}
	if via := keyscanVia(tg.jumps); via != "ssh -J outer,inner ops@second:2200" {
		t.Fatalf("keyscan via %q", via)
	}

	// --known-hosts is every hop's known_hosts file.
	kh := filepath.Join(home, "kh")
	tg, err = resolveSSHTarget(mustURL(t, "sftp://db/x"), Options{ConfigFile: cfg, KnownHosts: kh})
	if err != nil {
		t.Fatal(err)
	}
	if j := tg.jumps[0]; len(j.userKnownHosts) != 1 || j.userKnownHosts[0] != kh || len(j.globalKnownHosts) != 0 {
		t.Fatalf("jump host known_hosts %q %q, want only %s", j.userKnownHosts, j.globalKnownHosts, kh)
	}
	hk, err := newHostKeyChecker(tg, []string{kh}, kh, false)
	if err != nil || len(hk.jumps) != 1 || hk.jumps[0].name != "[bastion.example]:2022" {
		t.Fatalf("host key checkers: %v %+v", err, hk)
	}

	for _, tc := range []struct{ url, want string }{
		{"sftp://loopy/x", "ProxyJump none"},
		{"sftp://piped/x", "ProxyJump bastion"},
	} {
		_, err := resolveSSHTarget(mustURL(t, tc.url), opts)
		if !errors.Is(err, ErrConfig) || !retry.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrConfig suggesting %q", tc.url, err, tc.want)
		}
	}

	// A bad ProxyJump value names the host and the value.
	bad := filepath.Join(home, "bad")
	if err := os.WriteFile(bad, []byte("Host h\n    ProxyJump a:99999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = resolveSSHTarget(mustURL(t, "sftp://h/x"), Options{ConfigFile: bad})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "a:99999") || !strings.Contains(err.Error(), "for h") {
		t.Errorf("bad ProxyJump: %v", err)
	}
}
