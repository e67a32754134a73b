package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ustarBlock is a ustar header block for name of typeflag and size, its
// checksum computed, as GNU tar writes it.
func ustarBlock(name string, typeflag byte, size int) []byte {
	h := make([]byte, 512)
	copy(h[0:], name)
	copy(h[100:], "0000644\x00")
	copy(h[108:], "0000000\x00")
	copy(h[116:], "0000000\x00")
	copy(h[124:], fmt.Sprintf("%011o\x00", size))
	copy(h[136:], fmt.Sprintf("%011o\x00", 1700000000))
	h[156] = typeflag
	copy(h[257:], "ustar\x0000")
	copy(h[148:], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

// padded is b followed by zeros up to a multiple of 512 bytes.
func padded(b []byte) []byte {
	return append(b, make([]byte, (512-len(b)%512)%512)...)
}

// paxArchive is a tar of one file whose PAX header holds record key=value
// as given (GNU tar's writer would never make a malformed one).
func paxArchive(name, body, key, value string) []byte {
	rec := fmt.Sprintf(" %s=%s\n", key, value)
	for n := len(rec); ; n++ {
		if l := len(fmt.Sprintf("%d%s", n, rec)); l == n {
			rec = fmt.Sprintf("%d%s", n, rec)
			break
		}
	}
	var b bytes.Buffer
	b.Write(ustarBlock("PaxHeaders/"+name, 'x', len(rec)))
	b.Write(padded([]byte(rec)))
	b.Write(ustarBlock(name, '0', len(body)))
	b.Write(padded([]byte(body)))
	b.Write(make([]byte, 1024))
	return b.Bytes()
}

// TestLenientPAXThroughTheBinary is issue 17 acceptance 3 as the user
// sees it: an archive GNU tar extracts with a warning (a malformed PAX
// mtime, a PAX path with a NUL) restores through haul restore and haul
// run, the file's bytes in place, with exactly one warning line naming
// the entry; a NUL-cut path that turns absolute stays refused (exit 1).
func TestLenientPAXThroughTheBinary(t *testing.T) {
	cases := []struct {
		name, key, value string
		file, warn       string // "" file: refused
	}{
		{"malformed mtime", "mtime", "1700000000.5x", "site/index.php", "malformed PAX mtime"},
		{"path with a NUL", "path", "site/ok.txt\x00../../evil", "site/ok.txt", "cut at its NUL byte"},
		{"path absolute once cut", "path", "/tmp/evil\x00x", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, dest := t.TempDir(), filepath.Join(t.TempDir(), "dest")
			body := "<?php echo 1;"
			if err := os.WriteFile(filepath.Join(src, "site.tar"), paxArchive("site/index.php", body, tc.key, tc.value), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, cmd := range []string{"restore", "run"} {
				into := filepath.Join(t.TempDir(), "into")
				args := []string{"run", "--progress", "log", src + "/", dest, "--into", into}
				if cmd == "restore" {
					wantCode(t, runHaul(t, nil, "fetch", "--progress", "none", src+"/", dest), 0)
					args = []string{"restore", "--progress", "log", dest, "--into", into}
				}
				r := runHaul(t, nil, args...)
				if tc.file == "" {
					wantCode(t, r, 1)
					if _, err := os.Lstat(into); !os.IsNotExist(err) {
						t.Fatalf("%s: %s exists after a refusal", cmd, into)
					}
					continue
				}
				wantCode(t, r, 0)
				var warns []string
				for _, l := range strings.Split(r.stdout+r.stderr, "\n") {
					if strings.Contains(l, "warning: ") && (strings.Contains(l, tc.file+":") || strings.Contains(l, tc.warn)) {
						warns = append(warns, l)
					}
				}
				if len(warns) != 1 || !strings.Contains(warns[0], tc.warn) {
					t.Fatalf("%s: want one warning line naming %s and saying %q, got %q\n%s%s", cmd, tc.file, tc.warn, warns, r.stdout, r.stderr)
				}
				got, err := os.ReadFile(filepath.Join(into, tc.file))
				if err != nil || string(got) != body {
					t.Fatalf("%s: %s holds %q (%v), want %q", cmd, tc.file, got, err, body)
				}
			}
		})
	}
}
