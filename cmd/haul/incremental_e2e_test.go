package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gnuLevel archives src with GNU tar --listed-incremental into a
// directory of three parts and a SHA256SUMS, as a backup server would
// publish a level.
func gnuLevel(t *testing.T, src, snap, dir string) {
	t.Helper()
	if _, err := exec.LookPath("tar"); err != nil {
		t.Fatal("GNU tar is needed (Debian package tar)")
	}
	var b, stderr bytes.Buffer
	cmd := exec.Command("tar", "-C", src, "--listed-incremental="+snap, "-czf", "-", ".")
	cmd.Stdout, cmd.Stderr = &b, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tar: %v: %s", err, stderr.Bytes())
	}
	data := b.Bytes()
	var parts []e2ePart
	step := len(data)/3 + 1
	for i := 0; i*step < len(data); i++ {
		parts = append(parts, e2ePart{fmt.Sprintf("site.tar.gz.%03d", i), data[i*step : min((i+1)*step, len(data))]})
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e2eWriteDir(t, dir, parts)
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), e2eSHA256SUMS(parts), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A weekly level 0 and a daily level 1 made by GNU tar, fetched into two
// DESTs, restore as one tree with --incremental: the tree at level 1,
// deleted names gone. Several DESTs without --incremental are a usage
// error; the same command again does nothing.
func TestRestoreIncrementalChain(t *testing.T) {
	base := t.TempDir()
	src, snap := filepath.Join(base, "src"), filepath.Join(base, "snap")
	for i := range 30 {
		p := filepath.Join(src, fmt.Sprintf("mod%d/f%02d.php", i%3, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, e2eBytes(uint64(i), 3000+i*100), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gnuLevel(t, src, snap, filepath.Join(base, "pub0"))
	if err := os.RemoveAll(filepath.Join(src, "mod2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(src, "mod0/f00.php")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "mod1/new.php"), []byte("new at level 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	gnuLevel(t, src, snap, filepath.Join(base, "pub1"))

	d0, d1 := filepath.Join(base, "dest0"), filepath.Join(base, "dest1")
	wantCode(t, runHaul(t, nil, "fetch", "--progress", "none", filepath.Join(base, "pub0")+"/", d0), 0)
	wantCode(t, runHaul(t, nil, "fetch", "--progress", "none", filepath.Join(base, "pub1")+"/", d1), 0)
	into := filepath.Join(base, "www")

	r := runHaul(t, nil, "restore", d0, d1, "--into", into)
	wantCode(t, r, 2)
	if !strings.Contains(r.stderr, "--incremental") {
		t.Fatalf("the usage error does not say what to add: %s", r.stderr)
	}
	wantCode(t, runHaul(t, nil, "restore", d0, d1, "--into", into, "--incremental", "--progress", "none"), 0)
	if same, err := sameTree(src, into); err != nil || !same {
		t.Fatalf("the restored chain is not the tree at level 1: %v", err)
	}
	for _, gone := range []string{"mod2", "mod0/f00.php"} {
		if _, err := os.Lstat(filepath.Join(into, gone)); !os.IsNotExist(err) {
			t.Fatalf("%s, deleted before level 1, is still there", gone)
		}
	}
	wantCode(t, runHaul(t, nil, "restore", d0, d1, "--into", into, "--incremental", "--progress", "none"), 0)

	// haul run with the earlier level as --base: the tree at level 1.
	into2 := filepath.Join(base, "www2")
	wantCode(t, runHaul(t, nil, "run", "--progress", "none", filepath.Join(base, "pub1")+"/", d1,
		"--into", into2, "--incremental", "--base", d0), 0)
	if same, err := sameTree(src, into2); err != nil || !same {
		t.Fatalf("haul run --base: not the tree at level 1: %v", err)
	}
}

// deepSet is a tar.gz of a tree 2,000 directories deep with a file at
// every level, published with its SHA256SUMS.
func deepSet(t *testing.T, dir string) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for i := 1; i <= 2000; i++ {
		d := strings.Repeat("d/", i)
		for _, h := range []*tar.Header{{Typeflag: tar.TypeDir, Name: d, Mode: 0o755}, {Typeflag: tar.TypeReg, Name: d + "f", Mode: 0o644, Size: 1}} {
			h.Format, h.ModTime = tar.FormatPAX, time.Unix(1700000000, 0)
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if h.Size > 0 {
				tw.Write([]byte("x"))
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	cmd := exec.Command("gzip", "-1")
	cmd.Stdin, cmd.Stdout = &b, &z
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	parts := []e2ePart{{"deep.tar.gz", z.Bytes()}}
	e2eWriteDir(t, dir, parts)
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), e2eSHA256SUMS(parts), 0o644); err != nil {
		t.Fatal(err)
	}
}

// SIGTERM at any moment of a deep restore: exit 75 (or 0 when it had
// finished), no staging directory left, nothing half-made at the target.
func TestSIGTERMDeepRestore(t *testing.T) {
	base := t.TempDir()
	pub, dest := filepath.Join(base, "pub"), filepath.Join(base, "dest")
	if err := os.Mkdir(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	deepSet(t, pub)
	wantCode(t, runHaul(t, nil, "fetch", "--progress", "none", pub+"/", dest), 0)
	for i, d := range []time.Duration{0, 30 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond, 800 * time.Millisecond} {
		into := filepath.Join(base, fmt.Sprint("www", i))
		code, late := termDuringRestore(t, into, d, "restore", dest, "--into", into, "--progress", "none")
		t.Logf("SIGTERM %v into the restore: exit %d, %v after the signal", d, code, late)
		if code != 75 && code != 0 {
			t.Fatalf("SIGTERM %v into the restore: exit %d, want 75", d, code)
		}
		if left, _ := filepath.Glob(into + ".haul-staging-*"); len(left) > 0 {
			t.Fatalf("SIGTERM %v into the restore left staging: %v", d, left)
		}
		if _, err := os.Lstat(into); code == 75 && !os.IsNotExist(err) {
			t.Fatalf("SIGTERM %v into the restore left something at %s", d, into)
		}
	}
}

// termDuringRestore starts haul, waits until its staging directory for
// into exists (the restore is writing), sends SIGTERM d later, and
// returns the exit code and how long haul took to exit after the signal.
func termDuringRestore(t *testing.T, into string, d time.Duration, args ...string) (int, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := haulCmd(ctx, nil, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var err error
	ended := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if m, _ := filepath.Glob(into + ".haul-staging-*"); len(m) > 0 {
			break
		}
		select {
		case err = <-exited:
			ended = true
		default:
		}
		if ended {
			break
		}
	}
	var sent time.Time
	if !ended {
		time.Sleep(d)
		sent = time.Now()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		err = <-exited
	}
	if ctx.Err() != nil {
		t.Fatalf("haul did not end within a minute\n%s", out.String())
	}
	late := time.Duration(0)
	if !sent.IsZero() {
		late = time.Since(sent)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), late
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	return 0, late
}
