package sshdial

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"
)

// Options configures SSH connections.
type Options struct {
	// Identity is an extra private key file (-i); tried before the agent
	// and ~/.ssh/config's IdentityFile keys.
	Identity string
	// KnownHosts is the known_hosts file to check and record host keys in;
	// "" means ~/.ssh/known_hosts.
	KnownHosts string
	// AcceptNewHostKey records an unknown host's key (OpenSSH accept-new).
	// A changed key is always refused.
	AcceptNewHostKey bool
	// ConfigFile is the ssh config to read; "" means ~/.ssh/config.
	ConfigFile string
	// Passphrase asks for a key's passphrase; nil when there is no
	// terminal, so an encrypted key without an agent is a clear error.
	Passphrase func(keyFile string) ([]byte, error)
	// Timeout (--timeout), when not 0, bounds the TCP connect (below
	// ConnectTimeout) and the handshake: a server that accepts and says
	// nothing fails the dial as a transient fault after this long.
	Timeout time.Duration
}

// Dialer connects to one SSH destination, through its ProxyJump hosts,
// as often as asked: every connection checks the same host keys and
// shares the keys unlocked so far, so an encrypted key's passphrase is
// asked for once per Dialer, however many connections it makes.
type Dialer struct {
	t    *sshTarget
	hk   *hostKeyChecker
	opts Options
	keys *keyCache
}

// New resolves the URL's host with ~/.ssh/config (alias, HostName, User,
// Port, IdentityFile, ProxyJump …) and reads the known_hosts files of the
// target and of every jump host. It dials nothing yet.
func New(u *url.URL, opts Options) (*Dialer, error) {
	t, err := resolveSSHTarget(u, opts)
	if err != nil {
		return nil, err
	}
	userFile := opts.KnownHosts
	files := []string{userFile}
	if userFile == "" {
		if len(t.userKnownHosts) == 0 {
			return nil, noHomeKnownHosts(t)
		}
		userFile = t.userKnownHosts[0]
		files = append(append([]string{}, t.userKnownHosts...), t.globalKnownHosts...)
	}
	hk, err := newHostKeyChecker(t, files, userFile, opts.AcceptNewHostKey)
	if err != nil {
		return nil, err
	}
	return &Dialer{t: t, hk: hk, opts: opts, keys: &keyCache{}}, nil
}

// Dial connects and logs in (see dialSSH). Closing the client closes the
// jump connections under it.
func (d *Dialer) Dial(ctx context.Context) (*ssh.Client, error) {
	return dialSSH(ctx, d.t, d.hk, d.opts, d.keys)
}

// Forget drops the keys unlocked so far; a later Dial asks again.
func (d *Dialer) Forget() { d.keys.forget() }

// User is the login name, after the URL and the config.
func (d *Dialer) User() string { return d.t.user }

// HostPort is the host as written (an alias) with the port to dial, for
// messages.
func (d *Dialer) HostPort() string { return net.JoinHostPort(d.t.alias, strconv.Itoa(d.t.port)) }

// Addr is the host:port dialled (HostName from the config).
func (d *Dialer) Addr() string { return d.t.addr() }

// noHomeKnownHosts is the error for a host whose key cannot be checked
// because HOME is not set (a systemd unit without User=): it names the
// file looked for and the ways to give one.
func noHomeKnownHosts(t *sshTarget) error {
	return permanent(fmt.Errorf("ssh %s: HOME is not set, so there is no ~/.ssh/known_hosts to check its host key against (the ssh config names no UserKnownHostsFile): "+
		"pass --known-hosts FILE (or HAUL_KNOWN_HOSTS=FILE in the unit's EnvironmentFile), or run as a user with a home (User= in the unit): %w", t.alias, ErrConfig))
}
