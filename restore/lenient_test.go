package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tarBlock is one ustar header block with a valid checksum.
func tarBlock(name string, typ byte, size int64, mtime time.Time) []byte {
	h := make([]byte, 512)
	copy(h[0:100], name)
	copy(h[100:108], "0000644\x00")
	copy(h[108:116], "0000000\x00")
	copy(h[116:124], "0000000\x00")
	copy(h[124:136], fmt.Sprintf("%011o\x00", size))
	copy(h[136:148], fmt.Sprintf("%011o\x00", mtime.Unix()))
	h[156] = typ
	copy(h[257:265], "ustar\x0000")
	copy(h[148:156], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

func padBlock(b []byte) []byte {
	return append(b, make([]byte, (512-len(b)%512)%512)...)
}

// paxRecord formats "LEN key=value\n" with LEN counting itself.
func paxRecord(key, value string) string {
	n := len(key) + len(value) + 3
	for {
		s := fmt.Sprintf("%d %s=%s\n", n, key, value)
		if len(s) == n {
			return s
		}
		n = len(s)
	}
}

// paxFile is a tar with one file behind a PAX header of the given records.
func paxFile(name, body string, recs ...string) []byte {
	x := strings.Join(recs, "")
	var b []byte
	b = append(b, tarBlock("PaxHeaders/"+filepath.Base(name), 'x', int64(len(x)), tmtime)...)
	b = append(b, padBlock([]byte(x))...)
	b = append(b, tarBlock(name, '0', int64(len(body)), tmtime)...)
	b = append(b, padBlock([]byte(body))...)
	return append(b, make([]byte, 1024)...)
}

// Where GNU tar warns and goes on, haul does the same, with one warning
// naming the entry, and restores what GNU tar restores; a repaired name
// that is unsafe is still refused.
func TestLenientPAX(t *testing.T) {
	tests := []struct {
		name   string
		tar    []byte
		file   string // the file it restores ("" when refused)
		warn   string
		reason string
	}{
		{"malformed mtime", paxFile("site/index.php", "<?php", paxRecord("mtime", "1700000000.5x")),
			"site/index.php", "malformed PAX mtime", ""},
		{"malformed short mtime", paxFile("site/a", "a", paxRecord("mtime", "x")),
			"site/a", "malformed PAX mtime", ""},
		{"malformed atime beside a good path", paxFile("short", "b", paxRecord("atime", "yesterday"), paxRecord("path", "site/long/name.txt")),
			"site/long/name.txt", "malformed PAX atime", ""},
		{"path with a NUL", paxFile("ignored", "c", paxRecord("path", "site/ok.txt\x00../../evil")),
			"site/ok.txt", "cut at its NUL", ""},
		{"path with a NUL, absolute once cut", paxFile("ignored", "d", paxRecord("path", "/tmp/evil\x00x")),
			"", "", "absolute path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			p := filepath.Join(base, "x.tar")
			if err := os.WriteFile(p, tc.tar, 0o644); err != nil {
				t.Fatal(err)
			}
			into := filepath.Join(base, "site")
			rec := &recorder{}
			err := Restore(context.Background(), []Part{{Name: "x.tar", Path: p}}, Options{Into: into, Progress: rec})
			if tc.reason != "" {
				var ue *UnsafeError
				if !errors.As(err, &ue) || !strings.Contains(ue.Reason, tc.reason) {
					t.Fatalf("err = %v, want an unsafe entry: %s", err, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rec.warns) != 1 || !strings.Contains(rec.warns[0], tc.warn) || !strings.Contains(rec.warns[0], tc.file) {
				t.Fatalf("warnings %q, want one naming %s and saying %q", rec.warns, tc.file, tc.warn)
			}
			got := snapshot(t, into, view{})
			if _, ok := got[tc.file]; !ok {
				t.Fatalf("%s not restored: %v", tc.file, got)
			}
			// GNU tar restores the same tree.
			needCommand(t, "tar")
			gnu := filepath.Join(base, "gnu")
			if err := os.Mkdir(gnu, 0o755); err != nil {
				t.Fatal(err)
			}
			out, _ := exec.Command("tar", "-C", gnu, "-xf", p).CombinedOutput()
			want := snapshot(t, gnu, view{})
			delete(want, "site") // tar makes it with the umask's mode and now as mtime
			delete(got, "site")
			// The archives hold no directory entries: both tools make the
			// parents at extraction time, which may fall in different seconds.
			impliedDirTimes(want)
			impliedDirTimes(got)
			sameTree(t, want, got)
			t.Logf("GNU tar said: %s", bytes.TrimSpace(out))
		})
	}
}

// The repairs touch PAX headers only: a file whose bytes are a tar with
// a malformed PAX header (a tar inside a tar) restores byte for byte.
func TestLenientLeavesDataAlone(t *testing.T) {
	inner := string(paxFile("x", "y", paxRecord("mtime", "bad"), paxRecord("path", "a\x00b")))
	base := t.TempDir()
	p := filepath.Join(base, "x.tar")
	if err := os.WriteFile(p, tarOf(t, tent{typ: '0', name: "a.txt", body: "a"}, tent{typ: '0', name: "inner.tar", body: inner}), 0o644); err != nil {
		t.Fatal(err)
	}
	into := filepath.Join(base, "site")
	rec := &recorder{}
	if err := Restore(context.Background(), []Part{{Name: "x.tar", Path: p}}, Options{Into: into, Progress: rec}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(into, "inner.tar")); err != nil || string(b) != inner {
		t.Fatalf("inner.tar changed (%v)", err)
	}
	if len(rec.warns) > 0 {
		t.Fatalf("warnings about file data: %q", rec.warns)
	}
}

// impliedDirTimes drops the mtime of every directory in a snapshot, for
// trees whose directories were made at extraction time, not from an entry.
func impliedDirTimes(m map[string]string) {
	for k, v := range m {
		if f := strings.Fields(v); len(f) == 3 && f[0] == "dir" {
			m[k] = f[0] + " " + f[1]
		}
	}
}
