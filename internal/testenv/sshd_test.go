package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sshClient runs the OpenSSH client against s with strict host key
// checking against knownHosts.
func sshClient(t *testing.T, s *SSHD, knownHosts string, args ...string) (string, error) {
	t.Helper()
	bin := RequireTool(t, "ssh")
	base := []string{
		"-F", "/dev/null", "-i", s.UserKeyFile, "-p", strconv.Itoa(s.Port),
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + knownHosts,
		"-l", s.User, s.Host,
	}
	cmd := exec.Command(bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestSSHDCommandAndKnownHosts(t *testing.T) {
	s := StartSSHD(t)
	for _, hashed := range []bool{false, true} {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		s.WriteKnownHosts(t, kh, hashed)
		out, err := sshClient(t, s, kh, "echo", "hello")
		if err != nil || !strings.Contains(out, "hello") {
			t.Fatalf("hashed=%v: ssh: %v: %s", hashed, err, out)
		}
	}
	if !strings.HasPrefix(s.HostKeyFingerprint, "SHA256:") {
		t.Errorf("fingerprint %q", s.HostKeyFingerprint)
	}

	// A new host key: the OpenSSH client itself must refuse it.
	kh := filepath.Join(t.TempDir(), "known_hosts")
	s.WriteKnownHosts(t, kh, false)
	old := s.HostKeyFingerprint
	s.ChangeHostKey(t)
	if s.HostKeyFingerprint == old {
		t.Fatal("host key did not change")
	}
	if out, err := sshClient(t, s, kh, "true"); err == nil || !strings.Contains(out, "CHANGED") {
		t.Fatalf("ssh accepted a changed host key: %v: %s", err, out)
	}
}

func TestSSHDSFTPReadLog(t *testing.T) {
	bin := RequireTool(t, "sftp")
	s := StartSSHD(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	s.WriteKnownHosts(t, kh, false)
	src := filepath.Join(t.TempDir(), "data")
	data := bytes.Repeat([]byte("0123456789"), 10000)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy")
	cmd := exec.Command(bin, "-F", "/dev/null", "-b", "-", "-i", s.UserKeyFile, "-P", strconv.Itoa(s.Port),
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+kh,
		s.User+"@"+s.Host)
	cmd.Stdin = strings.NewReader("get " + src + " " + dst + "\n")
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sftp: %v: %s", err, out)
	}
	if got := s.SFTPReads(t)[src]; got != int64(len(data)) {
		t.Fatalf("log says %d bytes read from %s, want %d", got, src, len(data))
	}
	if got := s.SFTPBytesRead(t); got != int64(len(data)) {
		t.Fatalf("SFTPBytesRead = %d, want %d", got, len(data))
	}
}

func TestSSHDSFTPOnlyRefusesCommands(t *testing.T) {
	s := StartSSHD(t, SFTPOnly())
	kh := filepath.Join(t.TempDir(), "known_hosts")
	s.WriteKnownHosts(t, kh, false)
	out, _ := sshClient(t, s, kh, "echo", "hello")
	if strings.Contains(out, "hello") {
		t.Fatalf("command ran on an SFTP-only server: %s", out)
	}
}

func TestSSHAgent(t *testing.T) {
	s := StartSSHD(t)
	file, pub := s.NewUserKey(t, "agent_key", "", true)
	sock := StartSSHAgent(t, file)
	list := exec.Command("ssh-add", "-L")
	list.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	b, err := list.CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-add -L: %v: %s", err, b)
	}
	fields := strings.Fields(pub)
	if !strings.Contains(string(b), fields[1]) {
		t.Fatalf("agent does not hold the key: %s", b)
	}
}
