package sshdial

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/haul-dev/haul/internal/atomicfile"
)

var (
	// ErrHostKeyUnknown means the SSH server's host key is in no
	// known_hosts file: its fingerprint has to be checked and trusted
	// (--accept-new-host-key) before haul talks to it.
	ErrHostKeyUnknown = errors.New("ssh host key unknown")
	// ErrHostKeyChanged means known_hosts holds a different key for the
	// server (or the key is revoked): a possible man-in-the-middle. It is
	// always refused, --accept-new-host-key or not.
	ErrHostKeyChanged = errors.New("ssh host key changed")
)

// HostKeyError is a host key haul will not accept. It wraps
// ErrHostKeyUnknown or ErrHostKeyChanged; its message shows the
// fingerprint and what to do.
type HostKeyError struct {
	// Host is the name checked in known_hosts: "example.com", or
	// "[127.0.0.1]:2222" for a port other than 22, or a HostKeyAlias.
	Host string
	// KeyType is the offered key's type ("ssh-ed25519") and Fingerprint
	// its SHA-256 fingerprint ("SHA256:…"), as ssh-keygen -l shows it.
	KeyType     string
	Fingerprint string
	// Changed is true when known_hosts holds other keys for Host (they are
	// in Known, "file:line" → fingerprint) or the key is marked @revoked.
	Changed bool
	Revoked bool
	Known   map[string]string
	// File is the known_hosts file where the key would be recorded, or for
	// a changed key the file of the first conflicting entry.
	File string

	scanHost string
	port     int
	scanVia  string // "ssh -J a b": where ssh-keyscan can reach the host; "" = here
}

// Error says what is wrong and how to fix it, on one line.
func (e *HostKeyError) Error() string {
	kt, scanType := keyTypeNames(e.KeyType)
	switch {
	case e.Revoked:
		return fmt.Sprintf("WARNING: the host key of %s (%s %s) is marked @revoked in %s; haul refuses to connect", e.Host, kt, e.Fingerprint, e.File)
	case e.Changed:
		var was []string
		for _, where := range slices.Sorted(maps.Keys(e.Known)) {
			was = append(was, where+" has "+e.Known[where])
		}
		return fmt.Sprintf("WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for %s! The server offered %s key %s but %s. "+
			"Someone could be intercepting the connection (man-in-the-middle attack), or the host key was just replaced. "+
			"haul refuses to connect, with or without --accept-new-host-key. If the change is expected, remove the old key with: ssh-keygen -R %s -f %s",
			e.Host, kt, e.Fingerprint, strings.Join(was, ", "), ShellQuote(e.Host), ShellQuote(e.File))
	default:
		port := ""
		if e.port != 0 && e.port != 22 {
			port = "-p " + strconv.Itoa(e.port) + " "
		}
		via := ""
		if e.scanVia != "" {
			// Only the jump host before it can reach the host: scan from
			// there, record here.
			via = e.scanVia + " "
		}
		return fmt.Sprintf("the authenticity of host %s can't be established: %s key fingerprint is %s, and it is not in %s. "+
			"If the fingerprint is right (ask the host's administrator, or run ssh-keygen -lf on its host key), run again with --accept-new-host-key to record it, "+
			"or add it yourself: %sssh-keyscan %s-t %s %s >> %s",
			e.Host, kt, e.Fingerprint, e.File, via, port, scanType, e.scanHost, ShellQuote(e.File))
	}
}

// Unwrap returns ErrHostKeyChanged or ErrHostKeyUnknown.
func (e *HostKeyError) Unwrap() error {
	if e.Changed || e.Revoked {
		return ErrHostKeyChanged
	}
	return ErrHostKeyUnknown
}

// keyTypeNames returns OpenSSH's short name for a key type ("ED25519")
// and ssh-keyscan's -t name for it ("ed25519").
func keyTypeNames(t string) (short, scan string) {
	switch {
	case t == ssh.KeyAlgoED25519:
		return "ED25519", "ed25519"
	case t == ssh.KeyAlgoRSA:
		return "RSA", "rsa"
	case strings.HasPrefix(t, "ecdsa-"):
		return "ECDSA", "ecdsa"
	case t == ssh.KeyAlgoSKED25519:
		return "ED25519-SK", "ed25519-sk"
	case t == ssh.KeyAlgoSKECDSA256:
		return "ECDSA-SK", "ecdsa-sk"
	}
	return t, t
}

func keyTypeName(t string) string {
	short, _ := keyTypeNames(t)
	return short
}

// hostKeyChecker checks server keys against known_hosts the way OpenSSH
// does with StrictHostKeyChecking yes (or accept-new when asked). It is
// shared by every connection of one source, so a reconnect must present
// the same key. Each ProxyJump host has its own, in jumps.
type hostKeyChecker struct {
	name      string // known_hosts form: "host" or "[host]:port"
	matchAddr string // host:port as knownhosts matches it
	scanHost  string // host name for the ssh-keyscan hint
	port      int
	scanVia   string // see HostKeyError.scanVia
	writeFile string // user known_hosts file accept-new records into
	acceptNew bool
	hash      bool // record hashed names (HashKnownHosts yes)

	db    ssh.HostKeyCallback // nil when no known_hosts file exists
	known []knownhosts.KnownKey

	// jumps check the target's ProxyJump hosts, in its order. A hop
	// with the same known_hosts name and files as another shares its
	// checker, so that accept-new records a key once.
	jumps []*hostKeyChecker

	mu       sync.Mutex
	accepted ssh.PublicKey // recorded during this run
}

// newHostKeyChecker reads the known_hosts files that exist among files;
// writeFile is where accept-new records keys. A malformed file is an error
// naming it. The target's jump hosts get checkers of their own, each
// reading its own known_hosts files (--known-hosts, when given, already
// replaced them; see jumpsFor).
func newHostKeyChecker(t *sshTarget, files []string, writeFile string, acceptNew bool) (*hostKeyChecker, error) {
	h, err := newHopKeyChecker(t, files, writeFile, acceptNew)
	if err != nil {
		return nil, err
	}
	h.scanVia = keyscanVia(t.jumps)
	shared := map[string]*hostKeyChecker{h.sharingKey(files): h}
	for i, j := range t.jumps {
		if len(j.userKnownHosts) == 0 {
			return nil, fmt.Errorf("jump host: %w", noHomeKnownHosts(j))
		}
		jfiles := append(slices.Clone(j.userKnownHosts), j.globalKnownHosts...)
		jh, err := newHopKeyChecker(j, jfiles, j.userKnownHosts[0], acceptNew)
		if err != nil {
			return nil, fmt.Errorf("ssh jump host %s: %w", j.alias, err)
		}
		jh.scanVia = keyscanVia(t.jumps[:i])
		if prev, ok := shared[jh.sharingKey(jfiles)]; ok {
			jh = prev
		} else {
			shared[jh.sharingKey(jfiles)] = jh
		}
		h.jumps = append(h.jumps, jh)
	}
	return h, nil
}

// sharingKey is what makes two hops' checkers interchangeable: the
// same known_hosts name, read from and recorded in the same files.
func (h *hostKeyChecker) sharingKey(files []string) string {
	return strings.Join(append([]string{h.name, h.writeFile}, files...), "\x00")
}

// keyscanVia is the ssh command that reaches the last of jumps, through
// the others: ssh-keyscan for the host after them has to run there.
func keyscanVia(jumps []*sshTarget) string {
	if len(jumps) == 0 {
		return ""
	}
	last := jumps[len(jumps)-1]
	cmd := "ssh "
	if len(jumps) > 1 {
		var specs []string
		for _, j := range jumps[:len(jumps)-1] {
			specs = append(specs, j.spec)
		}
		cmd += "-J " + ShellQuote(strings.Join(specs, ",")) + " "
	}
	return cmd + ShellQuote(last.spec)
}

func newHopKeyChecker(t *sshTarget, files []string, writeFile string, acceptNew bool) (*hostKeyChecker, error) {
	h := &hostKeyChecker{
		scanHost:  t.hostName,
		port:      t.port,
		writeFile: writeFile,
		acceptNew: acceptNew,
		hash:      t.hashKnownHosts,
	}
	host := t.hostName
	port := t.port
	if t.hostKeyAlias != "" {
		host, port = t.hostKeyAlias, 22
	}
	h.matchAddr = net.JoinHostPort(host, strconv.Itoa(port))
	h.name = knownhosts.Normalize(h.matchAddr)

	var existing []string
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() {
			existing = append(existing, f)
		}
	}
	if len(existing) > 0 {
		db, err := knownhosts.New(existing...)
		if err != nil {
			return nil, permanent(fmt.Errorf("read known_hosts: %v (fix or remove the bad line): %w", err, ErrConfig))
		}
		h.db = db
		// knownhosts reports every key it holds for the host when the
		// offered one matches none of them: ask with a key nobody has.
		var ke *knownhosts.KeyError
		if errors.As(db(h.matchAddr, probeAddr, probeKey()), &ke) {
			h.known = ke.Want
		}
	}
	return h, nil
}

var probeAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}

// probeKey is a throwaway public key that no known_hosts file holds.
var probeKey = sync.OnceValue(func() ssh.PublicKey {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return k
})

// algorithms lists host key algorithms with the types known_hosts already
// holds for this host first, as OpenSSH orders them, so that a server with
// several host keys presents one we can check rather than an unknown type.
// nil means the library's defaults.
func (h *hostKeyChecker) algorithms() []string {
	if len(h.known) == 0 {
		return nil
	}
	var first []string
	for _, k := range h.known {
		for _, a := range algorithmsFor(k.Key.Type()) {
			if !slices.Contains(first, a) {
				first = append(first, a)
			}
		}
	}
	all := slices.Clone(first)
	for _, a := range ssh.SupportedAlgorithms().HostKeys {
		if !slices.Contains(all, a) {
			all = append(all, a)
		}
	}
	return all
}

// algorithmsFor maps a key type to the host key algorithms that use it.
func algorithmsFor(keyType string) []string {
	switch keyType {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// check is the ssh.HostKeyCallback.
func (h *hostKeyChecker) check(_ string, remote net.Addr, key ssh.PublicKey) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.checkLocked(remote, key)
}

func (h *hostKeyChecker) checkLocked(remote net.Addr, key ssh.PublicKey) error {
	if h.accepted != nil && keysEqual(h.accepted, key) {
		return nil
	}
	e := &HostKeyError{
		Host:        h.name,
		KeyType:     key.Type(),
		Fingerprint: ssh.FingerprintSHA256(key),
		File:        h.writeFile,
		scanHost:    h.scanHost,
		port:        h.port,
		scanVia:     h.scanVia,
	}
	if h.db != nil {
		if remote == nil {
			remote = probeAddr
		}
		err := h.db(h.matchAddr, remote, key)
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &re):
			e.Revoked, e.File = true, re.Revoked.Filename
			return e
		case errors.As(err, &ke) && len(ke.Want) > 0:
			// A known host with another key, of this type or another:
			// refused, as OpenSSH refuses under strict checking.
			e.Changed = true
			e.Known = map[string]string{}
			for _, w := range ke.Want {
				e.Known[w.Filename+":"+strconv.Itoa(w.Line)] = keyTypeName(w.Key.Type()) + " " + ssh.FingerprintSHA256(w.Key)
			}
			e.File = ke.Want[0].Filename
			return e
		case errors.As(err, &ke):
			// unknown host: below
		default:
			return fmt.Errorf("check host key of %s: %w", h.name, err)
		}
	}
	if !h.acceptNew {
		return e
	}
	if err := h.record(key); err != nil {
		return fmt.Errorf("record host key of %s (%s %s) in %s: %w", h.name, keyTypeName(key.Type()), e.Fingerprint, h.writeFile, err)
	}
	h.accepted = key
	return nil
}

func keysEqual(a, b ssh.PublicKey) bool {
	return string(a.Marshal()) == string(b.Marshal())
}

// record adds a line for key to the user's known_hosts file: the file is
// rewritten to a temporary file beside it and renamed over it, so a crash
// leaves the old or the new file, never a torn line. ~/.ssh is created
// with mode 0700 and the file with 0600 if missing.
func (h *hostKeyChecker) record(key ssh.PublicKey) error {
	name := h.name
	if h.hash {
		name = knownhosts.HashHostname(name)
	}
	line := name + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))) + "\n"
	return appendKnownHosts(h.writeFile, line)
}

func appendKnownHosts(file, line string) error {
	if file == "" {
		return errors.New("no known_hosts file to write")
	}
	// Keep a symlinked known_hosts (dotfiles) a symlink: write its target.
	if real, err := filepath.EvalSymlinks(file); err == nil {
		file = real
	}
	old, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(file); err == nil {
		mode = fi.Mode().Perm()
	}
	if len(old) > 0 && old[len(old)-1] != '\n' {
		old = append(old, '\n')
	}
	return atomicfile.WriteFile(file, append(old, line...), mode)
}

// ShellQuote quotes s for a POSIX shell (and csh and fish): single quotes,
// with each ' written as '\”.
func ShellQuote(s string) string {
	plain := s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("-_./:@%+=,", r))
	})
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
