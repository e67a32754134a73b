package fetch

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kevinburke/ssh_config"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
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
func resolveSSHTarget(u *url.URL, opts SSHOptions) (*sshTarget, error) {
	alias := u.Hostname()
	if alias == "" {
		return nil, Permanent(fmt.Errorf("%s: no host: %w", Redact(u.String()), ErrBadSource))
	}
	if _, hasPass := u.User.Password(); hasPass {
		return nil, Permanent(fmt.Errorf("%s: a password in the URL is not supported; use a key (-i), ssh-agent or ~/.ssh/config: %w", Redact(u.String()), ErrBadSource))
	}
	home, _ := os.UserHomeDir()
	cfg, err := loadSSHConfig(opts.ConfigFile, home)
	if err != nil {
		return nil, err
	}
	t, err := resolveHost(cfg, home, alias, u.User.Username(), u.Port(), Redact(u.String()), true)
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
func jumpsFor(cfg *ssh_config.Config, home string, t *sshTarget, opts SSHOptions, seen []string) ([]*sshTarget, error) {
	specs, err := parseProxyJump(t.proxyJump)
	if err != nil {
		return nil, Permanent(fmt.Errorf("ssh config: ProxyJump %q for %s: %v: %w", t.proxyJump, t.alias, err, ErrBadSource))
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
				return nil, Permanent(fmt.Errorf("ssh config: ProxyJump loop %s → %s: the Host block of %s must not send it through itself; add \"ProxyJump none\" to a Host %s block placed before the block that sets ProxyJump: %w",
					strings.Join(seen, " → "), name, sp.host, sp.host, ErrBadSource))
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
		return nil, Permanent(fmt.Errorf("ssh config: ProxyJump for %s goes through %d hosts, more than haul's limit of %d (a loop?): %w", t.alias, len(hops), sshMaxJumps, ErrBadSource))
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
			return nil, Permanent(fmt.Errorf("ssh config: ProxyCommand for %s is not supported: haul does not run shell commands from the ssh config; "+
				"if it goes through a bastion, write \"ProxyJump bastion\" in its Host block instead (haul follows ProxyJump), or give a host haul can reach directly: %w", alias, ErrBadSource))
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
			return nil, Permanent(fmt.Errorf("%s: bad port %q: %w", where, port, ErrBadSource))
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
		return nil, Permanent(fmt.Errorf("%s: no user name: write USER@%s: %w", where, alias, ErrBadSource))
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
		return nil, Permanent(fmt.Errorf("ssh config: %w", err))
	}
	defer f.Close()
	cfg, err := ssh_config.Decode(f)
	if err != nil {
		return nil, Permanent(fmt.Errorf("ssh config %s: %v: %w", file, err, ErrBadSource))
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

// sshAuth gathers the keys to offer, in OpenSSH's spirit: the -i file,
// then the agent's keys, then the config's IdentityFile keys, or the
// default ~/.ssh/id_* keys when neither -i nor the config names one.
type sshAuth struct {
	signers []ssh.Signer
	seen    map[string]bool // marshalled public keys already offered
	tried   []string        // what was offered, for the failure message
	locked  []string        // encrypted keys that could not be unlocked
	notes   []string        // keys skipped, and why
	agent   io.Closer
	// onPrompt is told when a passphrase prompt starts and ends.
	onPrompt func(waiting bool)

	mu      sync.Mutex
	signErr error // an encrypted key that could not be unlocked
}

func (a *sshAuth) setSignErr(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.signErr == nil {
		a.signErr = err
	}
}

func (a *sshAuth) getSignErr() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.signErr
}

func (a *sshAuth) close() {
	if a.agent != nil {
		_ = a.agent.Close()
	}
}

func (a *sshAuth) add(s ssh.Signer, what string) {
	k := string(s.PublicKey().Marshal())
	if a.seen[k] {
		return
	}
	a.seen[k] = true
	a.signers = append(a.signers, s)
	a.tried = append(a.tried, what)
}

// newSSHAuth gathers the keys for one login to t. Encrypted key files
// are shared through keys (nil: not shared), so that a key unlocked for an
// earlier login of the same source is not asked for again.
func newSSHAuth(t *sshTarget, opts SSHOptions, keys *keyCache, onPrompt func(bool)) (*sshAuth, error) {
	a := &sshAuth{seen: map[string]bool{}, onPrompt: onPrompt}
	home, _ := os.UserHomeDir()

	// Keys from files are parsed first so that an encrypted file whose key
	// the agent holds is signed for by the agent without a prompt.
	var files []keyFile
	load := func(path string, explicit bool) error {
		s, lk, err := loadPrivateKey(path)
		if lk != nil {
			lk = keys.share(lk)
		}
		switch {
		case err == nil && (s != nil || lk != nil):
			files = append(files, keyFile{path: path, signer: s, locked: lk})
		case explicit && err != nil:
			return Permanent(fmt.Errorf("identity file %s: %v: %w", path, err, ErrAuth))
		case err != nil && !errors.Is(err, os.ErrNotExist):
			a.notes = append(a.notes, fmt.Sprintf("%s: %v", path, err))
		}
		return nil
	}
	if opts.Identity != "" {
		if err := load(opts.Identity, true); err != nil {
			return nil, err
		}
	}
	nFirst := len(files)
	for _, f := range t.identityFiles {
		if err := load(f, false); err != nil {
			return nil, err
		}
	}
	if opts.Identity == "" && len(t.identityFiles) == 0 && home != "" {
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			if err := load(filepath.Join(home, ".ssh", n), false); err != nil {
				return nil, err
			}
		}
	}

	var agentSigners []ssh.Signer
	if sock := t.agentSocket(); sock != "" {
		if c, err := net.DialTimeout("unix", sock, 5*time.Second); err == nil {
			a.agent = c
			if ss, err := agent.NewClient(c).Signers(); err == nil {
				agentSigners = ss
			} else {
				a.notes = append(a.notes, fmt.Sprintf("ssh-agent: %v", err))
			}
		} else {
			a.notes = append(a.notes, fmt.Sprintf("ssh-agent at %s: %v", sock, errors.Unwrap(err)))
		}
	}
	agentHas := map[string]bool{}
	for _, s := range agentSigners {
		agentHas[string(s.PublicKey().Marshal())] = true
	}
	fileKeys := map[string]bool{}
	for _, f := range files {
		if pub := f.pub(); pub != nil {
			fileKeys[string(pub.Marshal())] = true
		}
	}

	addFile := func(f keyFile) {
		switch {
		case f.signer != nil:
			a.add(f.signer, f.path)
		case f.locked.pub != nil && agentHas[string(f.locked.pub.Marshal())]:
			// The agent holds it unlocked: it is offered with the agent's keys.
		case opts.Passphrase != nil:
			if s := f.locked.signer(opts.Passphrase, a.prompting, a.setSignErr); s != nil {
				a.add(s, f.path)
			}
		default:
			a.locked = append(a.locked, f.path)
		}
	}
	for _, f := range files[:nFirst] {
		addFile(f)
	}
	for _, s := range agentSigners {
		if t.identitiesOnly && !fileKeys[string(s.PublicKey().Marshal())] {
			continue
		}
		a.add(s, "ssh-agent key "+ssh.FingerprintSHA256(s.PublicKey()))
	}
	for _, f := range files[nFirst:] {
		addFile(f)
	}
	return a, nil
}

func (t *sshTarget) agentSocket() string {
	switch t.identityAgent {
	case "none":
		return ""
	case "":
		return os.Getenv("SSH_AUTH_SOCK")
	}
	return t.identityAgent
}

func (a *sshAuth) prompting(waiting bool) {
	if a.onPrompt != nil {
		a.onPrompt(waiting)
	}
}

// failure explains a refused authentication: what was offered, and for
// encrypted keys how to make them usable.
func (a *sshAuth) failure(where string, err error) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: authentication refused", where)
	if len(a.tried) == 0 && len(a.locked) == 0 {
		b.WriteString(": no key to offer (give one with -i/--identity, load one into ssh-agent, or set IdentityFile in ~/.ssh/config)")
	} else if len(a.tried) > 0 {
		fmt.Fprintf(&b, " (offered: %s)", strings.Join(a.tried, ", "))
	}
	for _, k := range a.locked {
		fmt.Fprintf(&b, "; key %s is encrypted and no passphrase can be asked for here: load it into ssh-agent (ssh-add %s) or run haul from a terminal to type its passphrase", k, shellQuote(k))
	}
	if len(a.notes) > 0 {
		fmt.Fprintf(&b, "; skipped: %s", strings.Join(a.notes, "; "))
	}
	if err != nil {
		fmt.Fprintf(&b, " [%v]", err)
	}
	return Permanent(fmt.Errorf("%s: %w", b.String(), ErrAuth))
}

// keyFile is a private key file to offer: unlocked, or locked.
type keyFile struct {
	path   string
	signer ssh.Signer
	locked *lockedKey
}

// pub returns the key's public half, nil when an encrypted file does not
// say it.
func (f keyFile) pub() ssh.PublicKey {
	if f.signer != nil {
		return f.signer.PublicKey()
	}
	return f.locked.pub
}

// lockedKey is an encrypted private key file. Once a passphrase has
// unlocked it, it keeps the signer: the logins that share it (see
// keyCache) sign without asking again.
type lockedKey struct {
	path string
	data []byte
	pub  ssh.PublicKey // from the file or path.pub; nil if neither says

	// asking is held while a passphrase is asked for, so that a login
	// that needs the key meanwhile waits for that answer instead of
	// asking too.
	asking sync.Mutex
	mu     sync.Mutex
	s      ssh.AlgorithmSigner // nil until unlocked
}

// unlocked returns the key's signer, nil while it is locked.
func (k *lockedKey) unlocked() ssh.AlgorithmSigner {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.s
}

// unlock asks for the passphrase, sshPassphraseTries times at most, and
// decrypts the key; unless it has been unlocked already, by this login or
// another that shares it. A failure is not kept: the next login asks
// again, as before a key was shared.
func (k *lockedKey) unlock(ask func(string) ([]byte, error)) (ssh.AlgorithmSigner, error) {
	k.asking.Lock()
	defer k.asking.Unlock()
	if s := k.unlocked(); s != nil {
		return s, nil
	}
	for try := 0; try < sshPassphraseTries; try++ {
		pass, err := ask(k.path)
		if err != nil {
			return nil, fmt.Errorf("passphrase for %s: %w", k.path, err)
		}
		s, err := ssh.ParsePrivateKeyWithPassphrase(k.data, pass)
		clear(pass)
		if errors.Is(err, x509.IncorrectPasswordError) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k.path, err)
		}
		as, ok := s.(ssh.AlgorithmSigner)
		if !ok {
			return nil, fmt.Errorf("key %s: unsupported key type %s", k.path, s.PublicKey().Type())
		}
		if k.pub != nil && !keysEqual(k.pub, s.PublicKey()) {
			return nil, fmt.Errorf("key %s does not match its public key", k.path)
		}
		k.mu.Lock()
		k.s = as
		k.mu.Unlock()
		return as, nil
	}
	return nil, fmt.Errorf("key %s: wrong passphrase, %d tries", k.path, sshPassphraseTries)
}

// keyCache holds the encrypted keys of one source, so that each is
// unlocked at most once per source: every login of it (pooled
// connections, reconnects after a dropped link, the jump hosts of each)
// offers the same *lockedKey for a key file, and a passphrase typed for
// one serves them all, as ssh-agent would for the run. A key is known by
// its file's path and a SHA-256 of its bytes, so a file rewritten during
// the run is a new key. The unlocked signers stay in memory until the
// source is closed; nothing of them is ever printed.
type keyCache struct {
	mu   sync.Mutex
	keys map[keyID]*lockedKey
}

type keyID struct {
	path string
	sum  [sha256.Size]byte // of the encrypted file
}

// share returns the cache's key for lk's file and bytes, storing lk when
// it has none. A nil cache shares nothing.
func (c *keyCache) share(lk *lockedKey) *lockedKey {
	if c == nil {
		return lk
	}
	id := keyID{path: lk.path, sum: sha256.Sum256(lk.data)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if have := c.keys[id]; have != nil {
		return have
	}
	if c.keys == nil {
		c.keys = map[keyID]*lockedKey{}
	}
	c.keys[id] = lk
	return lk
}

// forget drops every key: logins that start later load and ask anew.
func (c *keyCache) forget() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys = nil
}

// loadPrivateKey reads a private key file. It returns a signer, or for an
// encrypted key a lockedKey, or an error (os.ErrNotExist when missing).
func loadPrivateKey(path string) (ssh.Signer, *lockedKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, os.ErrNotExist
		}
		return nil, nil, err
	}
	s, err := ssh.ParsePrivateKey(data)
	if err == nil {
		return s, nil, nil
	}
	var pm *ssh.PassphraseMissingError
	if !errors.As(err, &pm) {
		return nil, nil, fmt.Errorf("not a usable private key: %w", err)
	}
	lk := &lockedKey{path: path, data: data, pub: pm.PublicKey}
	if lk.pub == nil {
		if b, err := os.ReadFile(path + ".pub"); err == nil {
			if k, _, _, _, err := ssh.ParseAuthorizedKey(b); err == nil {
				lk.pub = k
			}
		}
	}
	return nil, lk, nil
}

// signer returns a signer that asks for the passphrase only when the
// server has accepted the public key and a signature is needed, as ssh
// does. Without a known public key it asks at once.
func (k *lockedKey) signer(ask func(string) ([]byte, error), prompting func(bool), failed func(error)) ssh.Signer {
	ls := &lazySigner{key: k, ask: ask, prompting: prompting, failed: failed}
	if k.pub != nil {
		return ls
	}
	if err := ls.unlock(); err != nil {
		return nil
	}
	return ls.s
}

// locked reports a key that stays locked, and returns its error.
func (l *lazySigner) locked(err error) error {
	l.err = err
	if l.failed != nil {
		l.failed(err)
	}
	return err
}

// lazySigner decrypts an encrypted key on first use, for one login: its
// callbacks belong to that login, the unlocked key to every login that
// shares it.
type lazySigner struct {
	key       *lockedKey
	ask       func(string) ([]byte, error)
	prompting func(bool)
	failed    func(error)

	mu  sync.Mutex
	s   ssh.AlgorithmSigner
	err error
}

var _ ssh.AlgorithmSigner = (*lazySigner)(nil)

func (l *lazySigner) PublicKey() ssh.PublicKey {
	if l.key.pub != nil {
		return l.key.pub
	}
	return l.s.PublicKey()
}

func (l *lazySigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	if err := l.unlock(); err != nil {
		return nil, err
	}
	return l.s.Sign(rand, data)
}

func (l *lazySigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	if err := l.unlock(); err != nil {
		return nil, err
	}
	return l.s.SignWithAlgorithm(rand, data, algorithm)
}

func (l *lazySigner) unlock() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s != nil || l.err != nil {
		return l.err
	}
	if s := l.key.unlocked(); s != nil {
		l.s = s
		return nil
	}
	// Waiting for another login's prompt is waiting for a person too.
	l.prompting(true)
	defer l.prompting(false)
	s, err := l.key.unlock(l.ask)
	if err != nil {
		return l.locked(err)
	}
	l.s = s
	return nil
}

// dialSSH connects and authenticates, through the target's ProxyJump
// hosts if it has any: it connects to the first, opens a direct-tcpip
// channel through it to the next and runs that host's SSH handshake over
// the channel, and so on to the target. Every hop is checked against its
// own known_hosts entry and logs in with its own config. Closing the
// returned client closes the jump connections under it.
//
// A refused login wraps ErrAuth, a host key problem is a *HostKeyError,
// both permanent; network failures (refused, unreachable, timed out, cut)
// are returned as they are, and retrying them makes sense. Messages name
// the hop that failed.
//
// Every hop takes its encrypted keys from keys, so that a key file asked
// for once (by this dial or an earlier one sharing keys) is not asked for
// again.
func dialSSH(ctx context.Context, t *sshTarget, hk *hostKeyChecker, opts SSHOptions, keys *keyCache) (*ssh.Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(hk.jumps) != len(t.jumps) {
		return nil, Permanent(fmt.Errorf("ssh %s: the host key checker has %d jump hosts, the target %d (a bug in haul)", t.alias, len(hk.jumps), len(t.jumps)))
	}
	var jumps []*ssh.Client
	for i, j := range t.jumps {
		c, err := dialHop(ctx, j, hk.jumps[i], opts, keys, t.jumps[:i], jumps, true)
		if err != nil {
			closeClients(jumps)
			return nil, err
		}
		jumps = append(jumps, c)
	}
	c, err := dialHop(ctx, t, hk, opts, keys, t.jumps, jumps, false)
	if err != nil {
		closeClients(jumps)
		return nil, err
	}
	return c, nil
}

// closeClients closes clients, last first.
func closeClients(cs []*ssh.Client) {
	for i := len(cs) - 1; i >= 0; i-- {
		_ = cs[i].Close()
	}
}

// hopName names a connection in messages: "ssh USER@HOST:PORT", for a
// jump host "ssh jump host ALIAS (USER@HOST:PORT)", and for a target
// reached through jump hosts "ssh USER@HOST:PORT via A,B".
func hopName(t *sshTarget, isJump bool) string {
	switch {
	case isJump:
		return fmt.Sprintf("ssh jump host %s (%s@%s)", t.alias, t.user, t.addr())
	case len(t.jumps) > 0:
		var names []string
		for _, j := range t.jumps {
			names = append(names, j.alias)
		}
		return fmt.Sprintf("ssh %s@%s via %s", t.user, t.addr(), strings.Join(names, ","))
	}
	return fmt.Sprintf("ssh %s@%s", t.user, t.addr())
}

// dialHop connects to t: straight over TCP when via is empty, else
// through a direct-tcpip channel of via's last client (viaHosts are the
// hosts via connected to). When t is the target (isJump false) the
// returned client owns via: closing it, or its connection ending, closes
// them.
func dialHop(ctx context.Context, t *sshTarget, hk *hostKeyChecker, opts SSHOptions, keys *keyCache, viaHosts []*sshTarget, via []*ssh.Client, isJump bool) (*ssh.Client, error) {
	where := hopName(t, isJump)
	var raw net.Conn
	var err error
	if len(via) == 0 {
		d := net.Dialer{Timeout: t.connectTimeout}
		raw, err = d.DialContext(ctx, "tcp", t.addr())
		if err != nil {
			return nil, dialError(where, err)
		}
	} else {
		dctx, cancel := context.WithTimeout(ctx, t.connectTimeout)
		raw, err = via[len(via)-1].DialContext(dctx, "tcp", t.addr())
		cancel()
		if err != nil {
			return nil, jumpDialError(ctx, where, viaHosts[len(viaHosts)-1].alias, err)
		}
	}
	conn := newActivityConn(raw)
	deadline := &handshakeDeadline{conn: conn}

	auth, err := newSSHAuth(t, opts, keys, deadline.pause)
	if err != nil {
		conn.Close()
		return nil, err
	}
	defer auth.close()

	// The rejection is kept per connection: connections of one source
	// share hk and may be dialled at the same time.
	var hkMu sync.Mutex
	var hkErr error
	cfg := &ssh.ClientConfig{
		User: t.user,
		Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			return auth.signers, nil
		})},
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			err := hk.check(host, remote, key)
			hkMu.Lock()
			hkErr = err
			hkMu.Unlock()
			return err
		},
		HostKeyAlgorithms: hk.algorithms(),
		Timeout:           t.connectTimeout,
	}
	deadline.pause(false)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, t.addr(), cfg)
	stopped := stop()
	deadline.stop()
	if err != nil {
		conn.Close()
		hkMu.Lock()
		rejected := hkErr
		hkMu.Unlock()
		if rejected != nil {
			if len(via) > 0 || isJump {
				rejected = fmt.Errorf("%s: %w", where, rejected)
			}
			return nil, Permanent(rejected)
		}
		if !stopped || ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", where, context.Cause(ctx))
		}
		if deadline.expired.Load() {
			return nil, fmt.Errorf("%s: handshake: no answer within %s: %w", where, sshHandshakeTimeout, err)
		}
		if isAuthFailure(err) || auth.getSignErr() != nil && !isConnError(err) {
			return nil, auth.failure(where, err)
		}
		return nil, fmt.Errorf("%s: handshake: %w", where, err)
	}
	if !stopped {
		c.Close()
		return nil, fmt.Errorf("%s: %w", where, context.Cause(ctx))
	}
	if !isJump && len(via) > 0 {
		c = &jumpedConn{Conn: c, jumps: via}
	}
	client := ssh.NewClient(c, chans, reqs)
	go keepAlive(client, conn, t.aliveInterval, t.aliveCount)
	if !isJump && len(via) > 0 {
		go func() {
			// The target's connection can end alone (its server left,
			// keepalives found it dead): the jumps go with it.
			_ = client.Wait()
			closeClients(via)
		}()
	}
	return client, nil
}

// jumpedConn is the SSH connection to a target reached through jump
// hosts: closing it closes them too, so that no jump connection outlives
// the connection it carries.
type jumpedConn struct {
	ssh.Conn
	jumps []*ssh.Client
}

func (j *jumpedConn) Close() error {
	err := j.Conn.Close()
	closeClients(j.jumps)
	return err
}

// jumpDialError words a direct-tcpip channel the jump host refused or
// could not connect: a forwarding ban is permanent, a failed connect
// from the jump host may pass.
func jumpDialError(ctx context.Context, where, jump string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", where, context.Cause(ctx))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: jump host %s did not connect it in time: %w", where, jump, err)
	}
	var oc *ssh.OpenChannelError
	if errors.As(err, &oc) {
		switch oc.Reason {
		case ssh.Prohibited:
			return Permanent(fmt.Errorf("%s: jump host %s refuses to forward the connection (%s): its sshd needs AllowTcpForwarding yes (and no PermitOpen or permitopen= key restriction that excludes this host): %w",
				where, jump, oc.Message, ErrBadSource))
		case ssh.ConnectionFailed:
			return fmt.Errorf("%s: jump host %s could not connect to it (%s; is sshd running there and is the host name right as the jump host resolves it?): %w", where, jump, oc.Message, err)
		}
	}
	return fmt.Errorf("%s: connect through jump host %s: %w", where, jump, err)
}

// handshakeDeadline bounds key exchange and authentication on conn,
// except while a passphrase prompt waits for a person. A TCP connection
// takes a deadline; a connection through a jump host is an SSH channel,
// which has none, so a timer closes it instead.
type handshakeDeadline struct {
	conn    net.Conn
	expired atomic.Bool

	mu    sync.Mutex
	timer *time.Timer
}

// pause stops the clock while waiting is true, and starts it afresh
// when it turns false.
func (d *handshakeDeadline) pause(waiting bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if waiting {
		d.stopLocked()
		return
	}
	if d.conn.SetDeadline(time.Now().Add(sshHandshakeTimeout)) == nil {
		return
	}
	if d.timer == nil {
		d.timer = time.AfterFunc(sshHandshakeTimeout, func() {
			d.expired.Store(true)
			_ = d.conn.Close()
		})
		return
	}
	d.timer.Reset(sshHandshakeTimeout)
}

// stop ends the bound: the handshake is over.
func (d *handshakeDeadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopLocked()
}

func (d *handshakeDeadline) stopLocked() {
	_ = d.conn.SetDeadline(time.Time{})
	if d.timer != nil {
		d.timer.Stop()
	}
}

// isAuthFailure tells a refused login from a broken link after the host
// key was accepted. x/crypto/ssh has no typed error for it; this is the
// one place that reads its message.
func isAuthFailure(err error) bool {
	s := err.Error()
	return strings.Contains(s, "unable to authenticate") || strings.Contains(s, "Too many authentication failures")
}

// dialError words a failed TCP connect; an unknown host name is
// permanent, everything else may pass.
func dialError(where string, err error) error {
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns) && dns.IsNotFound:
		return Permanent(fmt.Errorf("%s: no such host %s: %w", where, dns.Name, ErrNotFound))
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s: connection refused (is sshd running and listening on that port?): %w", where, err)
	}
	return fmt.Errorf("%s: connect: %w", where, err)
}

// activityConn notes when bytes last arrived.
type activityConn struct {
	net.Conn
	last atomic.Int64 // unix nanoseconds
}

func newActivityConn(c net.Conn) *activityConn {
	a := &activityConn{Conn: c}
	a.last.Store(time.Now().UnixNano())
	return a
}

func (a *activityConn) Read(p []byte) (int, error) {
	n, err := a.Conn.Read(p)
	if n > 0 {
		a.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (a *activityConn) silentFor() time.Duration {
	return time.Since(time.Unix(0, a.last.Load()))
}

// keepAlive sends keepalive@openssh.com requests and closes the client
// when nothing at all has come from the server for interval × count, so
// that requests waiting on a dead link fail and their callers reconnect.
// Any byte counts as life: on a slow link a reply can queue behind
// megabytes of file data, and that link is not dead. It ends with the
// connection.
func keepAlive(c *ssh.Client, ac *activityConn, interval time.Duration, count int) {
	done := make(chan struct{})
	go func() {
		_ = c.Wait()
		close(done)
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var reply chan error // the request in flight, nil when none
	for {
		select {
		case <-done:
			return
		case err := <-reply:
			if err != nil {
				_ = c.Close()
				return
			}
			reply = nil
			continue
		case <-tick.C:
		}
		if ac.silentFor() > interval*time.Duration(count) {
			_ = c.Close()
			return
		}
		if reply == nil {
			reply = make(chan error, 1)
			go func(ch chan<- error) {
				_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
				ch <- err
			}(reply)
		}
	}
}
