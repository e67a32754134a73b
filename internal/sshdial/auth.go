// Authentication: the keys to offer, passphrases asked for once per run,
// and the agent.

package sshdial

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

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
func newSSHAuth(t *sshTarget, opts Options, keys *keyCache, onPrompt func(bool)) (*sshAuth, error) {
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
			return permanent(fmt.Errorf("identity file %s: %v: %w", path, err, ErrAuth))
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
		fmt.Fprintf(&b, "; key %s is encrypted and no passphrase can be asked for here: load it into ssh-agent (ssh-add %s) or run haul from a terminal to type its passphrase", k, ShellQuote(k))
	}
	if len(a.notes) > 0 {
		fmt.Fprintf(&b, "; skipped: %s", strings.Join(a.notes, "; "))
	}
	if err != nil {
		fmt.Fprintf(&b, " [%v]", err)
	}
	return permanent(fmt.Errorf("%s: %w", b.String(), ErrAuth))
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
