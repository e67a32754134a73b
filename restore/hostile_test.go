package restore

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zip"
)

// tent is one entry of a hand-made archive.
type tent struct {
	typ  byte
	name string
	link string
	body string
	mode int64
	size int64 // when not 0, the header claims this size (body is still what is written)
}

var tmtime = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// tarOf builds a tar stream; it does not end it properly when an entry
// claims more than its body (that is the point of such an entry).
func tarOf(t testing.TB, ents ...tent) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
			if e.typ == tar.TypeDir {
				mode = 0o755
			}
		}
		h := &tar.Header{Typeflag: e.typ, Name: e.name, Linkname: e.link, Mode: mode, ModTime: tmtime, Format: tar.FormatGNU}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
			if e.size != 0 {
				h.Size = e.size
			}
		}
		if e.typ == tar.TypeChar || e.typ == tar.TypeBlock {
			h.Devmajor, h.Devminor = 1, 3
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.body != "" {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
		if e.size != 0 {
			return b.Bytes() // truncated on purpose
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gzipOf(t testing.TB, data []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func zipOf(t testing.TB, ents ...tent) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range ents {
		fh := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: tmtime}
		mode := fs.FileMode(0o644)
		if e.typ == tar.TypeSymlink {
			mode |= fs.ModeSymlink
			e.body = e.link
		}
		fh.SetMode(mode)
		w, err := zw.CreateHeader(fh)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Every hostile archive is refused with *UnsafeError: nothing outside the
// target changes, nothing appears at the target, no staging is left.
func TestHostileArchives(t *testing.T) {
	const (
		reg  = tar.TypeReg
		dir  = tar.TypeDir
		sym  = tar.TypeSymlink
		hard = tar.TypeLink
	)
	tests := []struct {
		name   string
		file   string // archive file name
		build  func(t *testing.T, outside string) []byte
		reason string
	}{
		{"absolute path", "x.tar", func(t *testing.T, out string) []byte {
			return tarOf(t, tent{typ: reg, name: filepath.Join(out, "evil"), body: "x"})
		}, "absolute path"},
		{"dot-dot", "x.tar", func(t *testing.T, out string) []byte {
			return tarOf(t, tent{typ: reg, name: "../../outside/evil", body: "x"})
		}, `".."`},
		{"dot-dot in the middle", "x.tar", func(t *testing.T, out string) []byte {
			return tarOf(t, tent{typ: dir, name: "a/"}, tent{typ: reg, name: "a/../../../outside/evil", body: "x"})
		}, `".."`},
		{"symlink out, then write through it", "x.tar", func(t *testing.T, out string) []byte {
			return tarOf(t, tent{typ: sym, name: "l", link: "../../outside"}, tent{typ: reg, name: "l/evil", body: "x"})
		}, "leaves the tree"},
		{"absolute symlink", "x.tar", func(t *testing.T, out string) []byte {
			return tarOf(t, tent{typ: sym, name: "l", link: out}, tent{typ: reg, name: "l/evil", body: "x"})
		}, "absolute"},
		{"symlink inside, then write through it", "x.tar", func(t *testing.T, out string) []byte {
			return tarOf(t, tent{typ: dir, name: "sub/"}, tent{typ: sym, name: "l", link: "sub"}, tent{typ: reg, name: "l/evil", body: "x"})
		}, "writes through the symlink l"},
		{"symlink up, then write through it", "x.tar", func(t *testing.T, out string) []byte {
			return tarOf(t, tent{typ: dir, name: "d/"}, tent{typ: sym, name: "d/up", link: ".."}, tent{typ: reg, name: "d/up/evil", body: "x"})
		}, "writes through the symlink d/up"},
		{"symlink chain that climbs out", "x.tar", func(t *testing.T, out string) []byte {
			return tarOf(t, tent{typ: dir, name: "d/"}, tent{typ: sym, name: "d/up", link: ".."}, tent{typ: sym, name: "x", link: "d/up/../.."})
		}, "goes back up after a name"},
		{"hard link outside", "x.tar", func(t *testing.T, out string) []byte {
			return tarOf(t, tent{typ: hard, name: "h", link: "../../outside/sentinel"})
		}, `".."`},
		{"hard link to an absolute path", "x.tar", func(t *testing.T, out string) []byte {
			return tarOf(t, tent{typ: hard, name: "h", link: filepath.Join(out, "sentinel")})
		}, "absolute path"},
		{"hard link through a symlink", "x.tar", func(t *testing.T, out string) []byte {
			return tarOf(t, tent{typ: dir, name: "sub/"}, tent{typ: reg, name: "sub/f", body: "x"},
				tent{typ: sym, name: "s", link: "sub"}, tent{typ: hard, name: "h", link: "s/f"})
		}, "not a file in the tree"},
		{"hard link to nothing", "x.tar", func(t *testing.T, out string) []byte {
			return tarOf(t, tent{typ: hard, name: "h", link: "nothere"})
		}, "not a file in the tree"},
		{"symlink replacing a directory", "x.tar", func(t *testing.T, out string) []byte {
			return tarOf(t, tent{typ: dir, name: "d/"}, tent{typ: reg, name: "d/f", body: "x"}, tent{typ: sym, name: "d", link: "e"})
		}, "would replace the directory"},
		{"file replacing a directory", "x.tar", func(t *testing.T, out string) []byte {
			return tarOf(t, tent{typ: dir, name: "d/"}, tent{typ: reg, name: "d", body: "x"})
		}, "would replace the directory"},
		{"file under a file", "x.tar", func(t *testing.T, out string) []byte {
			return tarOf(t, tent{typ: reg, name: "f", body: "x"}, tent{typ: reg, name: "f/evil", body: "x"})
		}, "is not a directory"},
		{"character device", "x.tar", func(t *testing.T, out string) []byte {
			return tarOf(t, tent{typ: tar.TypeChar, name: "null"})
		}, "device"},
		{"block device", "x.tar", func(t *testing.T, out string) []byte {
			return tarOf(t, tent{typ: tar.TypeBlock, name: "sda"})
		}, "device"},
		{"fifo", "x.tar", func(t *testing.T, out string) []byte {
			return tarOf(t, tent{typ: tar.TypeFifo, name: "pipe"})
		}, "FIFO"},
		{"absurd size", "x.tar", func(t *testing.T, out string) []byte {
			return tarOf(t, tent{typ: reg, name: "ok", body: "fine"}, tent{typ: reg, name: "big", body: "tiny", size: 1 << 40})
		}, "claims"},
		{"absurd size, compressed", "x.tar.gz", func(t *testing.T, out string) []byte {
			return gzipOf(t, tarOf(t, tent{typ: reg, name: "ok", body: "fine"}, tent{typ: reg, name: "big", body: "tiny", size: 1 << 40}))
		}, "claims more data"},
		{"zip dot-dot", "x.zip", func(t *testing.T, out string) []byte {
			return zipOf(t, tent{typ: reg, name: "../../outside/evil", body: "x"})
		}, `".."`},
		{"zip absolute symlink", "x.zip", func(t *testing.T, out string) []byte {
			return zipOf(t, tent{typ: sym, name: "l", link: out}, tent{typ: reg, name: "l/evil", body: "x"})
		}, "absolute"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			work := filepath.Join(base, "work")
			for _, d := range []string{outside, work, filepath.Join(base, "parts")} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			sentinel := filepath.Join(outside, "sentinel")
			if err := os.WriteFile(sentinel, []byte("keep"), 0o644); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(base, "parts", tc.file)
			if err := os.WriteFile(p, tc.build(t, outside), 0o644); err != nil {
				t.Fatal(err)
			}
			into := filepath.Join(work, "site")
			err := Restore(context.Background(), []Part{{Name: tc.file, Path: p}}, Options{Into: into})
			var ue *UnsafeError
			if !errors.As(err, &ue) || !errors.Is(err, ErrUnsafe) {
				t.Fatalf("err = %v, want *UnsafeError", err)
			}
			if !strings.Contains(ue.Reason, tc.reason) {
				t.Errorf("reason %q, want it to say %q", ue.Reason, tc.reason)
			}
			if b, err := os.ReadFile(sentinel); err != nil || string(b) != "keep" {
				t.Fatalf("sentinel changed: %q, %v", b, err)
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 1 {
				t.Fatalf("outside has %d entries, want only the sentinel", len(ents))
			}
			if ents, _ := os.ReadDir(work); len(ents) != 0 {
				t.Fatalf("left in the target's parent: %v", ents)
			}
		})
	}
}

// Some archive oddities are neutralised rather than refused.
func TestNeutralised(t *testing.T) {
	const (
		reg = tar.TypeReg
		dir = tar.TypeDir
		sym = tar.TypeSymlink
	)
	tests := []struct {
		name  string
		tar   []byte
		check func(t *testing.T, into string, rec *recorder)
	}{
		{"setuid and setgid are cleared", tarOf(t, tent{typ: reg, name: "su", body: "#!/bin/sh\n", mode: 0o6755}),
			func(t *testing.T, into string, rec *recorder) {
				fi, err := os.Stat(filepath.Join(into, "su"))
				if err != nil || fi.Mode() != 0o755 {
					t.Fatalf("mode %v, %v; want -rwxr-xr-x", fi.Mode(), err)
				}
				if len(rec.warns) != 1 || !strings.Contains(rec.warns[0], "setuid") {
					t.Fatalf("warnings %q", rec.warns)
				}
			}},
		{"duplicate names: the last one wins, links are replaced not followed",
			tarOf(t, tent{typ: reg, name: "a", body: "one"}, tent{typ: reg, name: "a", body: "two"},
				tent{typ: sym, name: "b", link: "a"}, tent{typ: reg, name: "b", body: "three"}),
			func(t *testing.T, into string, rec *recorder) {
				a, _ := os.ReadFile(filepath.Join(into, "a"))
				b, _ := os.ReadFile(filepath.Join(into, "b"))
				fi, _ := os.Lstat(filepath.Join(into, "b"))
				if string(a) != "two" || string(b) != "three" || !fi.Mode().IsRegular() {
					t.Fatalf("a=%q b=%q (%v)", a, b, fi.Mode())
				}
			}},
		{"a directory entry after its contents sets its mode and mtime",
			tarOf(t, tent{typ: reg, name: "d/f", body: "x"}, tent{typ: dir, name: "d/", mode: 0o750}),
			func(t *testing.T, into string, rec *recorder) {
				fi, err := os.Stat(filepath.Join(into, "d"))
				if err != nil || fi.Mode().Perm() != 0o750 || !fi.ModTime().Equal(tmtime) {
					t.Fatalf("d: %v %v, %v", fi.Mode(), fi.ModTime(), err)
				}
			}},
		{"a symlink that climbs only as far as the top is fine",
			tarOf(t, tent{typ: dir, name: "a/b/"}, tent{typ: sym, name: "a/b/l", link: "../../top"}, tent{typ: reg, name: "top", body: "t"}),
			func(t *testing.T, into string, rec *recorder) {
				b, err := os.ReadFile(filepath.Join(into, "a/b/l"))
				if err != nil || string(b) != "t" {
					t.Fatalf("%q, %v", b, err)
				}
			}},
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
			if err := Restore(context.Background(), []Part{{Name: "x.tar", Path: p}}, Options{Into: into, Progress: rec}); err != nil {
				t.Fatal(err)
			}
			tc.check(t, into, rec)
		})
	}
}

func TestSameOwner(t *testing.T) {
	data := tarOf(t, tent{typ: tar.TypeReg, name: "f", body: "x"})
	// Set uid/gid 4321 in the header and fix its checksum.
	h := data[:512]
	copy(h[108:116], "0010341\x00")
	copy(h[116:124], "0010341\x00")
	copy(h[148:156], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:156], []byte(fmt.Sprintf("%06o\x00 ", sum)))
	base := t.TempDir()
	p := filepath.Join(base, "x.tar")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	into := filepath.Join(base, "site")
	rec := &recorder{}
	if err := Restore(context.Background(), []Part{{Name: "x.tar", Path: p}}, Options{Into: into, SameOwner: true, Progress: rec}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(into, "f"))
	if err != nil {
		t.Fatal(err)
	}
	uid := fi.Sys().(*syscall.Stat_t).Uid
	if os.Geteuid() == 0 {
		if uid != 4321 {
			t.Fatalf("uid %d, want 4321 from the archive", uid)
		}
	} else if int(uid) != os.Geteuid() || len(rec.warns) == 0 {
		t.Fatalf("uid %d, warnings %q; want our uid and a warning", uid, rec.warns)
	}
}

// Cancelling stops the restore: the context's error, nothing at the target,
// no staging left.
func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	into := filepath.Join(t.TempDir(), "site")
	chmodWritable(t, filepath.Dir(into))
	err := Restore(ctx, fixture(t, "tar.zst"), Options{Into: into, Progress: &cancelAfter{n: 20, cancel: cancel}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := os.Lstat(into); !os.IsNotExist(err) {
		t.Fatal("something is at the target")
	}
	if s := staged(t, into); len(s) > 0 {
		t.Fatalf("staging left behind: %v", s)
	}
}

type cancelAfter struct {
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) RestoreStart(int64) {}
func (c *cancelAfter) RestoreBytes(int64) {}
func (c *cancelAfter) Warn(string)        {}
func (c *cancelAfter) RestoreFile(string) {
	if c.n--; c.n == 0 {
		c.cancel()
	}
}
