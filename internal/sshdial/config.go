package sshdial

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"

	"github.com/haul-dev/haul/internal/redact"
)

const (
	sshDefaultConnectTimeout = 30 * time.Second
	// sshHandshakeTimeout bounds key exchange and authentication, except
	// while a passphrase prompt waits for a person.
	sshHandshakeTimeout = 2 * time.Minute
	// A connection whose server answers no keepalive for
	// interval × count is closed, so that workers reconnect instead of
	// waiting on a dead link (OpenSSH's ServerAliveInterval/CountMax).
	sshKeepAliveInterval = 15 * time.Second
	sshKeepAliveCount    = 4
	// sshPassphraseTries is how often a wrong passphrase may be typed.
	sshPassphraseTries = 3
)

// sshTarget is where and as whom to connect, after ~/.ssh/config.
type sshTarget struct {
	alias    string // the host as written in the URL or in ProxyJump
	hostName string // the host to dial (HostName, or alias)
	port     int
	user     string

	identityFiles    []string // IdentityFile from the config, expanded
	identitiesOnly   bool
	identityAgent    string // IdentityAgent: "" = $SSH_AUTH_SOCK, "none" = no agent
	userKnownHosts   []string
	globalKnownHosts []string
	hostKeyAlias     string
	hashKnownHosts   bool
	connectTimeout   time.Duration
	aliveInterval    time.Duration
	aliveCount       int

	// proxyJump is the config's ProxyJump as written ("" or "none": none).
	proxyJump string
	// jumps are the hosts to go through, first hop first: haul connects
	// to jumps[0], through it to jumps[1], …, and through the last to
	// the target. Empty for a jump host itself.
	jumps []*sshTarget
	// spec is how a jump host was written in ProxyJump ("u@bastion:22").
	spec string
}

// addr is host:port to dial.
func (t *sshTarget) addr() string {
	return net.JoinHostPort(t.hostName, strconv.Itoa(t.port))
}

// sshMaxJumps bounds a ProxyJump chain, so that a loop through several
// Host blocks ends with an error instead of recursing forever.
const sshMaxJumps = 8

// resolveSSHTarget applies the ssh config to the URL's host: Host blocks
// match the host as written (an alias), HostName/User/Port/IdentityFile
// and friends fill in what the URL does not say. The URL's user and port
// win over the config, as ssh's command line does. ProxyJump hosts are
// resolved the same way, each with its own Host blocks (see jumpsFor).
func resolveSSHTarget(u *url.URL, opts Options) (*sshTarget, error) {
	alias := u.Hostname()
	if alias == "" {
		return nil, permanent(fmt.Errorf("%s: no host: %w", redact.URL(u.String()), ErrConfig))
	}
	if _, hasPass := u.User.Password(); hasPass {
		return nil, permanent(fmt.Errorf("%s: a password in the URL is not supported; use a key (-i), ssh-agent or ~/.ssh/config: %w", redact.URL(u.String()), ErrConfig))
	}
	home, _ := os.UserHomeDir()
	cfg, err := loadSSHConfig(opts.ConfigFile, home)
	if err != nil {
		return nil, err
	}
	t, err := resolveHost(cfg, home, alias, u.User.Username(), u.Port(), redact.URL(u.String()), true)
	if err != nil {
		return nil, err
	}
	if t.jumps, err = jumpsFor(cfg, home, t, opts, []string{strings.ToLower(alias)}); err != nil {
		return nil, err
	}
	return t, nil
}

// jumpsFor returns the hosts to go through to reach t, first hop first,
// as OpenSSH builds them: for "ProxyJump a,b" it connects to a, through
// a to b, and through b to t. The first hop's own ProxyJump is followed
// (ssh reaches it with an ssh of its own, which reads the config), the
// later hops' are not (ssh hands them the rest of the list with -J, which
// wins over their config). seen holds the hosts on the way, lower-cased,
// to refuse a loop as ssh does. --known-hosts, when given, is the
// known_hosts file of every hop.
func jumpsFor(cfg *ssh_config.Config, home string, t *sshTarget, opts Options, seen []string) ([]*sshTarget, error) {
	specs, err := parseProxyJump(t.proxyJump)
	if err != nil {
		return nil, permanent(fmt.Errorf("ssh config: ProxyJump %q for %s: %v: %w", t.proxyJump, t.alias, err, ErrConfig))
	}
	var hops []*sshTarget
	for i, sp := range specs {
		where := fmt.Sprintf("ssh config: ProxyJump %s for %s", sp.spec, t.alias)
		port := ""
		if sp.port != 0 {
			port = strconv.Itoa(sp.port)
		}
		h, err := resolveHost(cfg, home, sp.host, sp.user, port, where, i == 0)
		if err != nil {
			return nil, err
		}
		h.spec = sp.spec
		if opts.KnownHosts != "" {
			h.userKnownHosts, h.globalKnownHosts = []string{opts.KnownHosts}, nil
		}
		if i == 0 {
			name := strings.ToLower(sp.host)
			if slices.Contains(seen, name) {
				return nil, permanent(fmt.Errorf("ssh config: ProxyJump loop %s → %s: the Host block of %s must not send it through itself; add \"ProxyJump none\" to a Host %s block placed before the block that sets ProxyJump: %w",
					strings.Join(seen, " → "), name, sp.host, sp.host, ErrConfig))
			}
			before, err := jumpsFor(cfg, home, h, opts, append(slices.Clone(seen), name))
			if err != nil {
				return nil, err
			}
			hops = append(hops, before...)
		}
		h.proxyJump = ""
		hops = append(hops, h)
	}
	if len(hops) > sshMaxJumps {
		return nil, permanent(fmt.Errorf("ssh config: ProxyJump for %s goes through %d hosts, more than haul's limit of %d (a loop?): %w", t.alias, len(hops), sshMaxJumps, ErrConfig))
	}
	return hops, nil
}

// jumpSpec is one hop of a ProxyJump value.
type jumpSpec struct {
	spec string // as written
	user string // "" = from the config
	host string
	port int // 0 = from the config
}

// parseProxyJump reads a ProxyJump value: "none" or a comma-separated
// list of [USER@]HOST[:PORT] or ssh://[USER@]HOST[:PORT], an IPv6 address
// in brackets. "" and "none" mean no jump.
func parseProxyJump(v string) ([]jumpSpec, error) {
	v = strings.TrimSpace(v)
	if v == "" || strings.EqualFold(v, "none") {
		return nil, nil
	}
	var specs []jumpSpec
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		sp, err := parseJumpHost(s)
		if err != nil {
			return nil, err
		}
		specs = append(specs, sp)
	}
	return specs, nil
}

func parseJumpHost(s string) (jumpSpec, error) {
	sp := jumpSpec{spec: s}
	if s == "" {
		return sp, errors.New("an empty host in the list")
	}
	if strings.EqualFold(s, "none") {
		return sp, errors.New(`"none" stands alone, not in a list`)
	}
	hostPort := s
	if rest, ok := strings.CutPrefix(s, "ssh://"); ok {
		u, err := url.Parse(s)
		if err != nil {
			return sp, fmt.Errorf("%s: %v", s, errors.Unwrap(err))
		}
		if _, hasPass := u.User.Password(); hasPass {
			return sp, errors.New("a password in ProxyJump is not supported")
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return sp, fmt.Errorf("%s: only ssh://[USER@]HOST[:PORT]", s)
		}
		sp.user = u.User.Username()
		hostPort = rest
		if i := strings.LastIndexByte(hostPort, '@'); i >= 0 {
			hostPort = hostPort[i+1:]
		}
		hostPort = strings.TrimSuffix(hostPort, "/")
	} else if i := strings.LastIndexByte(s, '@'); i >= 0 {
		sp.user, hostPort = s[:i], s[i+1:]
		if sp.user == "" {
			return sp, fmt.Errorf("%s: empty user name", s)
		}
	}
	host, port := hostPort, ""
	switch {
	case strings.HasPrefix(hostPort, "["):
		end := strings.IndexByte(hostPort, ']')
		if end < 0 {
			return sp, fmt.Errorf("%s: missing ]", s)
		}
		host, port = hostPort[1:end], hostPort[end+1:]
		if port != "" {
			if port[0] != ':' {
				return sp, fmt.Errorf("%s: expected :PORT after ]", s)
			}
			port = port[1:]
		}
	case strings.Count(hostPort, ":") == 1:
		host, port, _ = strings.Cut(hostPort, ":")
	case strings.Count(hostPort, ":") > 1:
		return sp, fmt.Errorf("%s: write an IPv6 address in brackets, [ADDR]:PORT", s)
	}
	if host == "" || strings.ContainsAny(host, "/@ \t") {
		return sp, fmt.Errorf("%s: bad host name %q", s, host)
	}
	sp.host = host
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p <= 0 || p > 65535 {
			return sp, fmt.Errorf("%s: bad port %q", s, port)
		}
		sp.port = p
	}
	return sp, nil
}

// resolveHost applies the config's Host blocks for alias; user and port,
// when not "", win over them. where names the host in errors. With proxy
// false, ProxyJump and ProxyCommand are ignored (a later hop of a chain).
func resolveHost(cfg *ssh_config.Config, home, alias, user, port, where string, proxy bool) (*sshTarget, error) {
	// OpenSSH matches Host patterns against the lower-cased name.
	match := strings.ToLower(alias)
	get := func(key string) string {
		if cfg == nil {
			return ""
		}
		v, _ := cfg.Get(match, key)
		return strings.TrimSpace(v)
	}
	getAll := func(key string) []string {
		if cfg == nil {
			return nil
		}
		v, _ := cfg.GetAll(match, key)
		return v
	}

	t := &sshTarget{alias: alias, hostName: alias, port: 22, connectTimeout: sshDefaultConnectTimeout,
		aliveInterval: sshKeepAliveInterval, aliveCount: sshKeepAliveCount}
	if proxy {
		// ProxyCommand runs a shell command from the config: haul runs
		// none. Connecting straight to the host instead would surprise.
		if v := get("ProxyCommand"); v != "" && !strings.EqualFold(v, "none") {
			return nil, permanent(fmt.Errorf("ssh config: ProxyCommand for %s is not supported: haul does not run shell commands from the ssh config; "+
				"if it goes through a bastion, write \"ProxyJump bastion\" in its Host block instead (haul follows ProxyJump), or give a host haul can reach directly: %w", alias, ErrConfig))
		}
		t.proxyJump = get("ProxyJump")
	}
	if hn := get("HostName"); hn != "" {
		t.hostName = strings.ReplaceAll(strings.ReplaceAll(hn, "%h", alias), "%%", "%")
	}
	if port == "" {
		port = get("Port")
	}
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p <= 0 || p > 65535 {
			return nil, permanent(fmt.Errorf("%s: bad port %q: %w", where, port, ErrConfig))
		}
		t.port = p
	}
	local := localUserName()
	t.user = user
	if t.user == "" {
		t.user = get("User")
	}
	if t.user == "" {
		t.user = local
	}
	if t.user == "" {
		return nil, permanent(fmt.Errorf("%s: no user name: write USER@%s: %w", where, alias, ErrConfig))
	}

	tok := tokenExpander{home: home, alias: alias, host: t.hostName, port: t.port, user: t.user, local: local}
	for _, f := range getAll("IdentityFile") {
		t.identityFiles = append(t.identityFiles, tok.path(f))
	}
	t.identitiesOnly = strings.EqualFold(get("IdentitiesOnly"), "yes")
	if a := get("IdentityAgent"); a != "" && a != "SSH_AUTH_SOCK" {
		if strings.EqualFold(a, "none") {
			t.identityAgent = "none"
		} else {
			t.identityAgent = tok.path(strings.Trim(a, `"`))
		}
	}
	for _, f := range strings.Fields(get("UserKnownHostsFile")) {
		if f != "none" {
			t.userKnownHosts = append(t.userKnownHosts, tok.path(f))
		}
	}
	if len(t.userKnownHosts) == 0 && home != "" {
		t.userKnownHosts = []string{filepath.Join(home, ".ssh", "known_hosts")}
	}
	if g := get("GlobalKnownHostsFile"); g != "" {
		for _, f := range strings.Fields(g) {
			if f != "none" {
				t.globalKnownHosts = append(t.globalKnownHosts, tok.path(f))
			}
		}
	} else {
		t.globalKnownHosts = []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}
	}
	t.hostKeyAlias = get("HostKeyAlias")
	t.hashKnownHosts = strings.EqualFold(get("HashKnownHosts"), "yes")
	if s := get("ConnectTimeout"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			t.connectTimeout = time.Duration(n) * time.Second
		}
	}
	if s := get("ServerAliveInterval"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			t.aliveInterval = time.Duration(n) * time.Second
		}
	}
	if s := get("ServerAliveCountMax"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			t.aliveCount = n
		}
	}
	return t, nil
}

// loadSSHConfig reads file ("" = ~/.ssh/config). A missing default file is
// no config; a missing explicit file or one haul cannot parse is an error
// naming it.
func loadSSHConfig(file, home string) (*ssh_config.Config, error) {
	explicit := file != ""
	if !explicit {
		if home == "" {
			return nil, nil
		}
		file = filepath.Join(home, ".ssh", "config")
	}
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return nil, nil
	}
	if err != nil {
		return nil, permanent(fmt.Errorf("ssh config: %w", err))
	}
	defer f.Close()
	cfg, err := ssh_config.Decode(f)
	if err != nil {
		return nil, permanent(fmt.Errorf("ssh config %s: %v: %w", file, err, ErrConfig))
	}
	return cfg, nil
}

func localUserName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	for _, k := range []string{"USER", "LOGNAME"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// tokenExpander expands ssh_config's ~ and %-tokens in file names.
type tokenExpander struct {
	home, alias, host, user, local string
	port                           int
}

func (e tokenExpander) path(p string) string {
	p = strings.Trim(p, `"`)
	if p == "~" || strings.HasPrefix(p, "~/") {
		p = e.home + p[1:]
	}
	if !strings.Contains(p, "%") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' || i+1 == len(p) {
			b.WriteByte(p[i])
			continue
		}
		i++
		switch p[i] {
		case '%':
			b.WriteByte('%')
		case 'd':
			b.WriteString(e.home)
		case 'h':
			b.WriteString(e.host)
		case 'n':
			b.WriteString(e.alias)
		case 'p':
			b.WriteString(strconv.Itoa(e.port))
		case 'r':
			b.WriteString(e.user)
		case 'u':
			b.WriteString(e.local)
		default:
			b.WriteByte('%')
			b.WriteByte(p[i])
		}
	}
	return b.String()
}
