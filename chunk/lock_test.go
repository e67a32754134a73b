package chunk

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLockHelperProcess is not a test: it is the other haul run, started by
// TestLockAcrossProcesses. It takes the lock on $HAUL_LOCK_HELPER_DEST,
// says so on stdout, and holds it until it is killed (or a minute passes).
func TestLockHelperProcess(t *testing.T) {
	dest := os.Getenv("HAUL_LOCK_HELPER_DEST")
	if dest == "" {
		t.Skip("helper process for TestLockAcrossProcesses")
	}
	l, err := LockFor(dest, "run")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute)
	l.Unlock()
	os.Exit(0)
}

func TestLockAcrossProcesses(t *testing.T) {
	dest := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), "HAUL_LOCK_HELPER_DEST="+dest)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	// Wait for the helper to hold the lock (bounded: the helper exits
	// within a minute on its own, and the read ends with it).
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if strings.TrimSpace(s) != "locked" {
			t.Fatalf("helper said %q", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("helper did not take the lock")
	}

	before := time.Now()
	l, err := LockFor(dest, "fetch")
	if err == nil {
		l.Unlock()
		t.Fatal("took a lock another process holds")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
	if d := time.Since(before); d > time.Second {
		t.Errorf("finding the lock held took %v; cron runs must give up at once", d)
	}
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("err %T is not a *LockedError", err)
	}
	if le.PID != cmd.Process.Pid || le.Cmd != "run" || le.Since.IsZero() || le.Path != LockPath(dest) {
		t.Errorf("LockedError = %+v, want pid %d, cmd run", le, cmd.Process.Pid)
	}
	msg := err.Error()
	for _, want := range []string{fmt.Sprintf("pid %d", cmd.Process.Pid), LockPath(dest), "75", "since " + le.Since.Local().Format("15:04")} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}

	// A crashed holder leaves no stale lock.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true
	l, err = LockFor(dest, "fetch")
	if err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
}

func TestLockInProcess(t *testing.T) {
	dest := t.TempDir()
	l, err := LockFor(dest, "run")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(LockPath(dest))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v, %v", fi, err)
	}
	data, _ := os.ReadFile(LockPath(dest))
	if !strings.Contains(string(data), fmt.Sprintf(`"pid":%d`, os.Getpid())) {
		t.Errorf("lock file holds %q, want our pid", data)
	}

	// flock locks belong to the open file, so a second Lock in the same
	// process is refused too, and names us.
	_, err = LockFor(dest, "verify")
	var le *LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() || le.Cmd != "run" {
		t.Fatalf("second lock: %v", err)
	}

	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatalf("second Unlock: %v", err)
	}
	if _, err := os.Stat(LockPath(dest)); err != nil {
		t.Errorf("the lock file must stay after Unlock: %v", err)
	}
	l2, err := LockFor(dest, "")
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	if err := l2.Unlock(); err != nil {
		t.Fatal(err)
	}
	var nilLock *LockFile
	if nilLock.Unlock() != nil {
		t.Fatal("nil Unlock")
	}
}

func TestLockedErrorMessage(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name string
		e    LockedError
		want []string
	}{
		{"full", LockedError{Path: "/d/.haul/lock", PID: 1234, Cmd: "run", Since: now},
			[]string{"another haul run (pid 1234, haul run, since " + now.Format("15:04") + ") holds /d/.haul/lock; this run exits 75"}},
		{"yesterday", LockedError{Path: "/d/.haul/lock", PID: 1, Since: now.Add(-48 * time.Hour)},
			[]string{now.Add(-48 * time.Hour).Format("Jan 2 15:04")}},
		{"holder not written yet", LockedError{Path: "/d/.haul/lock"},
			[]string{"another haul run holds /d/.haul/lock; this run exits 75 — try again later"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, w := range tt.want {
				if !strings.Contains(tt.e.Error(), w) {
					t.Errorf("%q lacks %q", tt.e.Error(), w)
				}
			}
		})
	}
}

func TestPlainCommand(t *testing.T) {
	for _, tt := range []struct {
		arg  string
		want string
	}{
		{"run", "run"},
		{"", ""},
		{"--bwlimit=1M", ""},
		{"https://host/x?X-Amz-Signature=secret", ""},
		{"/mnt/dest", ""},
	} {
		if got := plainCommand(tt.arg); got != tt.want {
			t.Errorf("plainCommand(%q) = %q, want %q", tt.arg, got, tt.want)
		}
	}
}
