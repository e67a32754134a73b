package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHDPath is the OpenSSH server the tests run.
const SSHDPath = "/usr/sbin/sshd"

const (
	sshdStartTries   = 3
	sshdReadyTimeout = 15 * time.Second
	sshdStopTimeout  = 10 * time.Second
	sftpQuietTimeout = 15 * time.Second
	sshdPoll         = 20 * time.Millisecond
)

// sftpServerPaths are where distributions put OpenSSH's sftp-server.
var sftpServerPaths = []string{
	"/usr/lib/openssh/sftp-server",     // Debian, Ubuntu
	"/usr/libexec/openssh/sftp-server", // Fedora, RHEL
	"/usr/libexec/sftp-server",         // Alpine, macOS
	"/usr/lib/ssh/sftp-server",         // Arch
}

// SSHD is a real OpenSSH sshd listening on 127.0.0.1 with a temporary
// ed25519 host key and user key, serving SFTP through OpenSSH's
// sftp-server (its transfer log lets tests count the bytes read) and,
// unless forbidden, remote commands. It logs in as the current user.
type SSHD struct {
	// Host is "127.0.0.1"; Port the port sshd listens on; Addr both.
	Host string
	Port int
	Addr string
	// User is the login name (the current user).
	User string
	// Dir holds the config, keys, authorized_keys and logs.
	Dir string
	// HostKey is the server's current public host key, HostKeyPub the same
	// in authorized_keys form ("ssh-ed25519 AAAA…") and
	// HostKeyFingerprint its "SHA256:…" fingerprint.
	HostKey            ssh.PublicKey
	HostKeyPub         string
	HostKeyFingerprint string
	// UserKeyFile is an unencrypted private key (mode 0600) the server
	// accepts; UserPubKey is its public half in authorized_keys form.
	UserKeyFile string
	UserPubKey  string
	// SFTPLog is the sftp-server transfer log ("" when no sftp-server
	// binary was found and internal-sftp serves instead).
	SFTPLog string

	cfg      sshdConfig
	confFile string
	hostKey  string // private host key file
	authKeys string
	errLog   string

	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when the running sshd process has been reaped.
	exited chan struct{}
}

type sshdConfig struct {
	forceCommand string
	sftpOnly     bool
	extra        []string
	authorized   []string
}

// SSHDOption changes how StartSSHD configures the server.
type SSHDOption func(*sshdConfig)

// SFTPOnly makes every session an SFTP session, whatever command the client
// asks for, like `ForceCommand internal-sftp`, but through the logging
// sftp-server so that SFTPBytesRead keeps working. Remote hashing must fail
// against such a server.
func SFTPOnly() SSHDOption {
	return func(c *sshdConfig) { c.sftpOnly = true }
}

// ForceCommand sets sshd's ForceCommand, e.g. "internal-sftp" (the usual
// SFTP-only setup; its reads are not in SFTPLog) or "/bin/false".
func ForceCommand(cmd string) SSHDOption {
	return func(c *sshdConfig) { c.forceCommand = cmd }
}

// SSHDConfigLines appends raw lines to sshd_config.
func SSHDConfigLines(lines ...string) SSHDOption {
	return func(c *sshdConfig) { c.extra = append(c.extra, lines...) }
}

// AuthorizedKey lets one more public key (authorized_keys form) log in.
func AuthorizedKey(pub string) SSHDOption {
	return func(c *sshdConfig) { c.authorized = append(c.authorized, strings.TrimSpace(pub)) }
}

// StartSSHD starts /usr/sbin/sshd -D -e on 127.0.0.1 with fresh keys and
// stops it when the test ends. Without sshd the test fails under CI=true
// and is skipped otherwise. If sshd does not come up the test fails with
// its log.
func StartSSHD(t testing.TB, opts ...SSHDOption) *SSHD {
	t.Helper()
	if _, err := os.Stat(SSHDPath); err != nil {
		Missing(t, "testenv: OpenSSH server %s not available (install openssh-server): %v", SSHDPath, err)
	}
	s := &SSHD{Host: "127.0.0.1", Dir: t.TempDir()}
	for _, o := range opts {
		o(&s.cfg)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatalf("testenv: current user: %v", err)
	}
	s.User = u.Username
	if os.Geteuid() == 0 {
		// As root sshd insists on its privilege separation directory,
		// which the package's init scripts normally create at boot.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("testenv: create /run/sshd for sshd: %v", err)
		}
	}

	s.hostKey = filepath.Join(s.Dir, "ssh_host_ed25519_key")
	if err := s.newHostKey(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	s.UserKeyFile = filepath.Join(s.Dir, "id_ed25519")
	s.UserPubKey, err = WriteUserKey(s.UserKeyFile, "")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	s.authKeys = filepath.Join(s.Dir, "authorized_keys")
	keys := append([]string{s.UserPubKey}, s.cfg.authorized...)
	if err := os.WriteFile(s.authKeys, []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	s.errLog = filepath.Join(s.Dir, "sshd.log")

	subsystem := "internal-sftp"
	if server := findSFTPServer(); server != "" {
		s.SFTPLog = filepath.Join(s.Dir, "sftp.log")
		wrapper := filepath.Join(s.Dir, "sftp-server")
		script := fmt.Sprintf("#!/bin/sh\nexec %s -e -l INFO \"$@\" 2>>%s\n", sshdShQuote(server), sshdShQuote(s.SFTPLog))
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		subsystem = wrapper
	} else if s.cfg.sftpOnly {
		t.Fatalf("testenv: SFTPOnly needs OpenSSH's sftp-server binary (looked in %s)", strings.Join(sftpServerPaths, ", "))
	}
	if s.cfg.sftpOnly {
		s.cfg.forceCommand = subsystem
	}

	var lastErr error
	for try := 0; try < sshdStartTries; try++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		if err := s.writeConfig(port, subsystem); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		if lastErr = s.start(); lastErr == nil {
			break
		}
		if !strings.Contains(lastErr.Error(), "in use") {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("testenv: %v", lastErr)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return s
}

func findSFTPServer() string {
	for _, p := range sftpServerPaths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

func (s *SSHD) writeConfig(port int, subsystem string) error {
	s.Port = port
	s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(port))
	var b strings.Builder
	fmt.Fprintf(&b, "ListenAddress %s\n", s.Addr)
	fmt.Fprintf(&b, "HostKey %s\n", s.hostKey)
	fmt.Fprintf(&b, "AuthorizedKeysFile %s\n", s.authKeys)
	for _, l := range []string{
		"PidFile none",
		"StrictModes no",
		"UsePAM no",
		"UseDNS no",
		"PermitRootLogin prohibit-password",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"AuthenticationMethods publickey",
		"PrintMotd no",
		"PrintLastLog no",
		"MaxStartups 100:30:200",
		"MaxSessions 100",
		"LogLevel VERBOSE",
		// sshd runs every subsystem and command through the user's shell
		// (bash -c for root). Debian's bash sources ~/.bashrc when it sees
		// SSH_CLIENT at shell level 1, so the machine's rc files would run
		// before sftp-server answers: one that blocks (a stale pyenv rehash
		// lock waits 60 s) stalls every session. At SHLVL 1 the session's
		// bash is level 2 and skips the rc files.
		"SetEnv SHLVL=1",
	} {
		b.WriteString(l + "\n")
	}
	fmt.Fprintf(&b, "Subsystem sftp %s\n", subsystem)
	for _, l := range s.cfg.extra {
		b.WriteString(l + "\n")
	}
	if s.cfg.forceCommand != "" {
		// Last: ForceCommand applies globally only outside Match blocks,
		// and extra lines may open one.
		fmt.Fprintf(&b, "Match all\nForceCommand %s\n", s.cfg.forceCommand)
	}
	s.confFile = filepath.Join(s.Dir, "sshd_config")
	return os.WriteFile(s.confFile, []byte(b.String()), 0o600)
}

// start runs sshd and waits until it answers with its SSH banner.
func (s *SSHD) start() error {
	logf, err := os.OpenFile(s.errLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("sshd log: %w", err)
	}
	mark, _ := logf.Seek(0, 2)
	cmd := exec.Command(SSHDPath, "-D", "-e", "-f", s.confFile)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	dieWithParent(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", SSHDPath, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	deadline := time.Now().Add(sshdReadyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("sshd exited at start (%s); its log:\n%s", cmd.ProcessState, s.logSince(mark))
		default:
		}
		if sshBanner(s.Addr) {
			return nil
		}
		time.Sleep(sshdPoll)
	}
	_ = s.stop()
	return fmt.Errorf("sshd did not answer on %s within %s; its log:\n%s", s.Addr, sshdReadyTimeout, s.logSince(mark))
}

// sshBanner reports whether an SSH server answers on addr.
func sshBanner(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-2.0-")
}

func (s *SSHD) logSince(off int64) string {
	b, err := os.ReadFile(s.errLog)
	if err != nil {
		return err.Error()
	}
	if off > int64(len(b)) {
		off = 0
	}
	return string(b[off:])
}

// stop ends the listening sshd. Sessions already open live on in their
// own processes until their clients leave.
func (s *SSHD) stop() error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(sshdStopTimeout):
	}
	_ = cmd.Process.Kill()
	<-exited
	return nil
}

// Log returns everything sshd has logged so far.
func (s *SSHD) Log() string { return s.logSince(0) }

// Stop stops the server; Start starts it again on the same port with the
// same keys (sessions already open are not affected by either).
func (s *SSHD) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// Start starts a stopped server again on its port.
func (s *SSHD) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("testenv: restart sshd: %v", err)
	}
}

// ChangeHostKey gives the server a new ed25519 host key and restarts it on
// the same port: what a client sees when a host is reinstalled, or when
// someone is in the middle.
func (s *SSHD) ChangeHostKey(t testing.TB) {
	t.Helper()
	s.Stop(t)
	if err := s.newHostKey(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	s.Start(t)
}

func (s *SSHD) newHostKey() error {
	pub, err := WriteUserKey(s.hostKey, "")
	if err != nil {
		return fmt.Errorf("host key: %w", err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pub))
	if err != nil {
		return fmt.Errorf("host key: %w", err)
	}
	s.HostKey, s.HostKeyPub, s.HostKeyFingerprint = k, strings.TrimSpace(pub), ssh.FingerprintSHA256(k)
	return nil
}
