// Keys around a test sshd: known_hosts lines, user keys, an ssh-agent,
// and what the SFTP server read.

package testenv

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// KnownHostsLine returns a known_hosts line for the server's current key,
// in OpenSSH's "[127.0.0.1]:PORT key" form, or hashed (|1|salt|hash) as
// with HashKnownHosts yes.
func (s *SSHD) KnownHostsLine(hashed bool) string {
	name := knownhosts.Normalize(s.Addr)
	if hashed {
		name = knownhosts.HashHostname(name)
	}
	return name + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostKey)))
}

// WriteKnownHosts appends KnownHostsLine(hashed) to the file at path,
// creating it (mode 0600) if needed.
func (s *SSHD) WriteKnownHosts(t testing.TB, path string, hashed bool) {
	t.Helper()
	if err := sshdAppendLine(path, s.KnownHostsLine(hashed)); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// sshdAppendLine appends line and a newline to the file at path, creating it
// (mode 0600) if needed.
func sshdAppendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// SSHConfig returns a ~/.ssh/config block that makes alias reach this
// server: HostName, Port, User and IdentityFile.
func (s *SSHD) SSHConfig(alias string) string {
	return fmt.Sprintf("Host %s\n    HostName %s\n    Port %d\n    User %s\n    IdentityFile %s\n",
		alias, s.Host, s.Port, s.User, s.UserKeyFile)
}

// Authorize lets one more public key (authorized_keys form) log in, from
// the next connection on.
func (s *SSHD) Authorize(t testing.TB, pub string) {
	t.Helper()
	if err := sshdAppendLine(s.authKeys, strings.TrimSpace(pub)); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// NewUserKey writes a new ed25519 key pair into the server's directory
// (encrypted with passphrase unless it is ""), and returns the private key
// file and the public key. When authorize is true the server accepts it.
func (s *SSHD) NewUserKey(t testing.TB, name, passphrase string, authorize bool) (file, pub string) {
	t.Helper()
	file = filepath.Join(s.Dir, name)
	pub, err := WriteUserKey(file, passphrase)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if authorize {
		s.Authorize(t, pub)
	}
	return file, pub
}

// WriteUserKey writes a new ed25519 private key in OpenSSH format to file
// (mode 0600; encrypted when passphrase is not "") and its public key to
// file.pub, and returns the public key in authorized_keys form.
func WriteUserKey(file, passphrase string) (string, error) {
	pubKey, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "haul-test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "haul-test", []byte(passphrase))
	}
	if err != nil {
		return "", fmt.Errorf("marshal key: %w", err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", fmt.Errorf("write key: %w", err)
	}
	sp, err := ssh.NewPublicKey(pubKey)
	if err != nil {
		return "", fmt.Errorf("public key: %w", err)
	}
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " haul-test"
	if err := os.WriteFile(file+".pub", []byte(pub+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write public key: %w", err)
	}
	return pub, nil
}

var (
	sftpCloseRe  = regexp.MustCompile(`close "(.*)" bytes read (\d+) written (\d+)`)
	sftpOpenedRe = regexp.MustCompile(`session opened for local user`)
	sftpClosedRe = regexp.MustCompile(`session closed for local user`)
)

// SFTPReads returns, per remote path, the bytes the SFTP server has read
// from that file for clients since it started, summed over every open.
// sftp-server logs a file's count when the client closes it, or when the
// session ends with it still open; SFTPReads first waits (bounded) until
// every SFTP session that was opened has ended, so call it after the
// client has disconnected.
func (s *SSHD) SFTPReads(t testing.TB) map[string]int64 {
	t.Helper()
	if s.SFTPLog == "" {
		t.Fatalf("testenv: no sftp-server transfer log (sftp-server binary not found)")
	}
	var (
		data []byte
		err  error
	)
	deadline := time.Now().Add(sftpQuietTimeout)
	for {
		data, err = os.ReadFile(s.SFTPLog)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("testenv: %v", err)
		}
		opened := len(sftpOpenedRe.FindAllIndex(data, -1))
		closed := len(sftpClosedRe.FindAllIndex(data, -1))
		if opened == closed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: %d SFTP sessions still open after %s (is a client still connected?)", opened-closed, sftpQuietTimeout)
		}
		time.Sleep(sshdPoll)
	}
	reads := map[string]int64{}
	for _, line := range bytes.Split(data, []byte("\n")) {
		m := sftpCloseRe.FindSubmatch(line)
		if m == nil {
			continue
		}
		n, err := strconv.ParseInt(string(m[2]), 10, 64)
		if err != nil {
			t.Fatalf("testenv: sftp log line %q: %v", line, err)
		}
		reads[string(m[1])] += n
	}
	return reads
}

// SFTPBytesRead returns the bytes the SFTP server has read from files for
// clients since it started, over all files (see SFTPReads).
func (s *SSHD) SFTPBytesRead(t testing.TB) int64 {
	t.Helper()
	var n int64
	for _, v := range s.SFTPReads(t) {
		n += v
	}
	return n
}

// StartSSHAgent runs a real `ssh-agent -D -a SOCKET`, loads keyFiles into it
// with ssh-add, and returns the socket path for SSH_AUTH_SOCK. The agent
// stops when the test ends. Without ssh-agent the test fails under CI=true
// and is skipped otherwise.
func StartSSHAgent(t testing.TB, keyFiles ...string) string {
	t.Helper()
	agentBin := RequireTool(t, "ssh-agent")
	addBin := RequireTool(t, "ssh-add")
	// Unix socket paths are short (108 bytes): not under t.TempDir().
	dir, err := os.MkdirTemp("", "haul-agent")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
	var out bytes.Buffer
	cmd := exec.Command(agentBin, "-D", "-a", sock)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	dieWithParent(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start ssh-agent: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(sshdReadyTimeout)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("testenv: ssh-agent exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: ssh-agent socket %s not ready: %v", sock, err)
		}
		time.Sleep(sshdPoll)
	}
	for _, k := range keyFiles {
		add := exec.Command(addBin, k)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if b, err := add.CombinedOutput(); err != nil {
			t.Fatalf("testenv: ssh-add %s: %v: %s", k, err, b)
		}
	}
	return sock
}

// sshdShQuote quotes s for a POSIX shell.
func sshdShQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
