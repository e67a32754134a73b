//go:build unix

package testenv

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
)

// sshdLoginRe matches the line sshd logs for every connection that logs in.
var sshdLoginRe = regexp.MustCompile(`Accepted publickey for `)

// Logins returns how many SSH connections have logged in since the server
// first started: each client connection is one, whatever it runs in it.
func (s *SSHD) Logins(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile(s.errLog)
	if err != nil {
		t.Fatalf("testenv: sshd log: %v", err)
	}
	return len(sshdLoginRe.FindAllIndex(b, -1))
}

// KillSessions kills (SIGKILL) every process the running sshd started for
// its connections, and the programs they run (sftp-server, commands), as
// when a server's session processes are killed or crash: each client sees
// its connection drop. The listening sshd stays up, so clients can
// connect again. It returns how many connections were cut. It needs
// Linux's /proc; elsewhere the test fails under CI and is skipped
// otherwise.
func (s *SSHD) KillSessions(t testing.TB) int {
	t.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		t.Fatalf("testenv: KillSessions: sshd is not running")
	}
	children, err := procChildren()
	if err != nil {
		Missing(t, "testenv: KillSessions needs /proc: %v", err)
	}
	conns := children[cmd.Process.Pid]
	// Kill from the top down, so that no session process is left to
	// notice its child's death and tidy up in an orderly way.
	todo := append([]int(nil), conns...)
	for len(todo) > 0 {
		pid := todo[0]
		todo = append(todo[1:], children[pid]...)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
			t.Fatalf("testenv: kill sshd session process %d: %v", pid, err)
		}
	}
	return len(conns)
}

// procChildren maps each process id to its children's, from /proc.
func procChildren() (map[int][]int, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, err
	}
	if len(stats) == 0 {
		return nil, os.ErrNotExist
	}
	children := map[int][]int{}
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the process ended
		}
		// "PID (COMM) STATE PPID …"; COMM may hold spaces and ")".
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		fields := bytes.Fields(b[i+1:])
		if len(fields) < 2 {
			continue
		}
		pid, err1 := strconv.Atoi(string(bytes.Fields(b)[0]))
		ppid, err2 := strconv.Atoi(string(fields[1]))
		if err1 != nil || err2 != nil {
			continue
		}
		children[ppid] = append(children[ppid], pid)
	}
	return children, nil
}
