package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Proc is what one finished child process cost.
type Proc struct {
	Wall   time.Duration
	User   time.Duration
	Sys    time.Duration
	MaxRSS int64 // bytes: the child's VmHWM (see watchRSS)
	Exit   int   // exit code; -1 when killed by a signal
	Tail   string
}

// CPU is user plus system time.
func (p Proc) CPU() time.Duration { return p.User + p.Sys }

// runProc runs cmd to its end (or until ctx or limit ends it, when the
// whole process group is killed) and reads its rusage from wait4.
func runProc(ctx context.Context, cmd *exec.Cmd, limit time.Duration) (Proc, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var out tailBuffer
	if cmd.Stdout == nil {
		cmd.Stdout = &out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &out
	}
	cmd.SysProcAttr = procAttr()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Proc{}, err
	}
	rss := watchRSS(cmd.Process.Pid)
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		case <-done:
		}
	}()
	werr := cmd.Wait()
	close(done)
	p := procOf(cmd, time.Since(start), rss())
	p.Tail = out.String()
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) {
		return p, werr
	}
	if ctx.Err() != nil {
		return p, fmt.Errorf("%s: no end after %s: killed", cmd.Args[0], limit)
	}
	return p, nil
}

func procOf(cmd *exec.Cmd, wall time.Duration, hwm int64) Proc {
	p := Proc{Wall: wall, Exit: -1, MaxRSS: hwm}
	st := cmd.ProcessState
	if st == nil {
		return p
	}
	p.Exit = st.ExitCode()
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		p.User = time.Duration(ru.Utime.Nano())
		p.Sys = time.Duration(ru.Stime.Nano())
		if p.MaxRSS == 0 {
			p.MaxRSS = ru.Maxrss * 1024 // KiB on Linux; see watchRSS
		}
	}
	return p
}

// watchRSS polls the peak resident set (VmHWM) of process pid every 10 ms
// until the returned function is called, which returns the largest value
// seen (0 when none could be read).
//
// ru_maxrss from wait4 would be simpler but is wrong here: Go starts
// children with vfork semantics (CLONE_VM), so a child's ru_maxrss starts
// at the RSS the parent had — haulbench's own ~20 MiB, whatever the child
// uses. VmHWM belongs to the new image after exec. Polling misses only
// growth in the last 10 ms of a process, which a steady-state peak does
// not have.
func watchRSS(pid int) func() int64 {
	var peak atomic.Int64
	stop := make(chan struct{})
	ended := make(chan struct{})
	path := fmt.Sprintf("/proc/%d/status", pid)
	read := func() {
		data, err := os.ReadFile(path)
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				var kb int64
				if _, err := fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb); err == nil && kb*1024 > peak.Load() {
					peak.Store(kb * 1024)
				}
			}
		}
	}
	go func() {
		defer close(ended)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			read()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(stop)
		<-ended
		return peak.Load()
	}
}

// tailBuffer keeps the last few KiB written to it.
type tailBuffer struct{ b bytes.Buffer }

const tailMax = 4 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b.Write(p)
	if t.b.Len() > 2*tailMax {
		keep := append([]byte(nil), t.b.Bytes()[t.b.Len()-tailMax:]...)
		t.b.Reset()
		t.b.Write(keep)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	s := t.b.String()
	if len(s) > tailMax {
		s = s[len(s)-tailMax:]
	}
	return strings.TrimSpace(s)
}
