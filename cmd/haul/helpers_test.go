package main

// Helpers shared by the end-to-end tests of several files: test sets of
// parts, serving them, checking what a run left in DEST, damaging a file
// on disk, and running haul on a pseudo-terminal. The haul process
// helpers themselves (runHaul, haulCmd, wantCode) are in main_test.go.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/haul-dev/haul/internal/testenv"
)

// e2ePart is one part of a test set.
type e2ePart struct {
	name string
	data []byte
}

// e2eBytes returns n deterministic pseudo-random bytes.
func e2eBytes(seed uint64, n int) []byte {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

// e2eNamedSet returns a set with the given sizes, part i named name(i),
// its content derived from seed: random bytes of no archive format, so
// that only references can prove them.
func e2eNamedSet(seed uint64, name func(i int) string, sizes ...int) []e2ePart {
	var out []e2ePart
	for i, n := range sizes {
		out = append(out, e2ePart{name(i), e2eBytes(seed*100+uint64(i), n)})
	}
	return out
}

// e2eSet returns the set backup.bak, backup.bak.1, … with the given
// sizes (see e2eNamedSet).
func e2eSet(seed uint64, sizes ...int) []e2ePart {
	return e2eNamedSet(seed, func(i int) string {
		if i == 0 {
			return "backup.bak"
		}
		return fmt.Sprintf("backup.bak.%d", i)
	}, sizes...)
}

// e2eNumberedSet returns the set BASE.000, BASE.001, … with the given
// sizes (see e2eNamedSet).
func e2eNumberedSet(base string, seed uint64, sizes ...int) []e2ePart {
	return e2eNamedSet(seed, func(i int) string { return fmt.Sprintf("%s.%03d", base, i) }, sizes...)
}

// e2eNames returns the parts' names, in order.
func e2eNames(parts []e2ePart) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p.name)
	}
	return out
}

// e2eTotal is the size of the set in bytes.
func e2eTotal(parts []e2ePart) int64 {
	var n int64
	for _, p := range parts {
		n += int64(len(p.data))
	}
	return n
}

// e2eReadDir reads the parts a generator wrote, in the order given.
func e2eReadDir(t *testing.T, paths []string) []e2ePart {
	t.Helper()
	var parts []e2ePart
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, e2ePart{filepath.Base(p), b})
	}
	return parts
}

// e2eWriteDir writes the parts into dir.
func e2eWriteDir(t *testing.T, dir string, parts []e2ePart) {
	t.Helper()
	for _, p := range parts {
		if err := os.WriteFile(filepath.Join(dir, p.name), p.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// e2eServe writes the parts into a fresh directory and serves it; the
// server is closed when the test ends.
func e2eServe(t *testing.T, parts []e2ePart, opts ...testenv.FaultOption) *testenv.FaultServer {
	t.Helper()
	dir := t.TempDir()
	e2eWriteDir(t, dir, parts)
	srv := testenv.NewFaultServer(dir, opts...)
	t.Cleanup(srv.Close)
	return srv
}

// e2eURLs are the parts' URLs on srv, in order.
func e2eURLs(srv *testenv.FaultServer, parts []e2ePart) []string {
	var urls []string
	for _, p := range parts {
		urls = append(urls, srv.URL(p.name))
	}
	return urls
}

// e2eSHA256SUMS is a coreutils sha256sum listing of the parts.
func e2eSHA256SUMS(parts []e2ePart) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		s := sha256.Sum256(p.data)
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(s[:]), p.name)
	}
	return b.Bytes()
}

// e2eIdentical fails unless every part is in dest under its final name,
// byte-identical, and no NAME.partial is left.
func e2eIdentical(t *testing.T, dest string, parts []e2ePart) {
	t.Helper()
	for _, p := range parts {
		got, err := os.ReadFile(filepath.Join(dest, p.name))
		if err != nil {
			t.Fatalf("part %s: %v", p.name, err)
		}
		if !bytes.Equal(got, p.data) {
			t.Fatalf("part %s (%d bytes) differs from the source (%d bytes)", p.name, len(got), len(p.data))
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dest, "*.partial")); len(left) > 0 {
		t.Fatalf("partial files left after success: %v", left)
	}
}

// e2eNoWrongFinal fails if any file under a part's final name differs from
// that part: whatever happened, a wrong file never carries the name. It
// returns how many parts are complete under their final names.
func e2eNoWrongFinal(t *testing.T, dest string, parts []e2ePart) (complete int) {
	t.Helper()
	for _, p := range parts {
		got, err := os.ReadFile(filepath.Join(dest, p.name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatalf("part %s: %v", p.name, err)
		}
		if !bytes.Equal(got, p.data) {
			t.Fatalf("part %s carries its final name but differs from the source", p.name)
		}
		complete++
	}
	return complete
}

// e2eFlipOnDisk flips the lowest bit of one byte of a file, as bit rot.
func e2eFlipOnDisk(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// openPTY opens a pseudo-terminal pair; the terminal is 40 rows by 120
// columns.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		master.Close()
		t.Fatalf("pty number: %v", err)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		t.Fatalf("open pty: %v", err)
	}
	unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120})
	return master, slave
}

// runOnPTY runs haul with stdin, stdout and stderr on a pseudo-terminal,
// with env added to the test environment (it names TERM). When prompt is
// not empty it types answer once prompt shows, and fails the test if haul
// never asks. It returns everything the terminal showed and the exit code.
func runOnPTY(t *testing.T, env []string, prompt, answer string, args ...string) (string, int) {
	t.Helper()
	master, slave := openPTY(t)
	defer master.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := haulCmd(ctx, env, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		slave.Close()
		t.Fatal(err)
	}
	slave.Close()
	var (
		mu  sync.Mutex
		buf bytes.Buffer
	)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		b := make([]byte, 4096)
		for {
			k, err := master.Read(b) // ends with EIO when the last slave closes
			mu.Lock()
			buf.Write(b[:k])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	typed := false
	var werr error
	for done := false; !done; {
		select {
		case werr = <-exited:
			done = true
		case <-time.After(20 * time.Millisecond):
			if prompt == "" || typed {
				continue
			}
			mu.Lock()
			seen := strings.Contains(buf.String(), prompt)
			mu.Unlock()
			if seen {
				typed = true
				if _, err := master.Write([]byte(answer + "\r")); err != nil {
					t.Fatalf("type on the pty: %v", err)
				}
			}
		}
	}
	master.SetReadDeadline(time.Now().Add(2 * time.Second))
	<-copied
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if prompt != "" && !typed {
		t.Fatalf("haul never asked %q on the terminal; it showed:\n%s", prompt, out)
	}
	code := 0
	var ee *exec.ExitError
	switch {
	case werr == nil:
	case errors.As(werr, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("haul on a terminal: %v", werr)
	}
	if ctx.Err() != nil {
		t.Fatalf("haul on a terminal did not finish in time:\n%s", out)
	}
	return out, code
}
