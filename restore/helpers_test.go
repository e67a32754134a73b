package restore

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/haul-dev/haul/internal/gen"
)

// fixtures are built once per test binary in a shared temp dir.
var (
	fixRoot  string
	fixMu    sync.Mutex
	fixCache = map[string][]Part{}
)

func TestMain(m *testing.M) {
	if os.Getenv("HAUL_RESTORE_HELPER") != "" {
		helperMain()
		return
	}
	dir, err := os.MkdirTemp("", "haul-restore-fixtures-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fixRoot = dir
	code := m.Run()
	_ = removeTree(dir)
	os.Exit(code)
}

const (
	fixSeed     = 7
	fixSize     = 2 << 20
	fixPassword = "correct horse battery staple"
)

// srcTree is the generated site every fixture archives.
func srcTree(t testing.TB) string {
	t.Helper()
	src := filepath.Join(fixRoot, "src")
	fixMu.Lock()
	defer fixMu.Unlock()
	if _, err := os.Stat(src); err != nil {
		if err := gen.Tree(src, fixSeed, fixSize); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

// fixture returns the parts of an archive of srcTree, built on first use.
// Kinds: bitrix, bitrix-enc, bitrix-small (16 volumes), tar.gz (split),
// tar.gz-single, tar.zst, tar.xz, tar.bz2, tar, zip, gnutar.gz.
func fixture(t testing.TB, kind string) []Part {
	t.Helper()
	src := srcTree(t)
	fixMu.Lock()
	defer fixMu.Unlock()
	if p, ok := fixCache[kind]; ok {
		return p
	}
	out := filepath.Join(fixRoot, "fx-"+kind)
	var paths []string
	var err error
	switch kind {
	case "bitrix":
		paths, err = gen.BitrixSet(src, out, "site", 512<<10, "")
	case "bitrix-enc":
		paths, err = gen.BitrixSet(src, out, "site", 512<<10, fixPassword)
	case "bitrix-small":
		paths, err = gen.BitrixSet(src, out, "site", 160<<10, "")
	case "tar.gz":
		paths, err = gen.SplitTarGz(src, out, "site.tar.gz", 300<<10, gen.FormatGzip)
	case "tar.gz-single":
		paths, err = gen.SplitTarGz(src, out, "site.tar.gz", 0, gen.FormatGzip)
	case "tar.zst":
		paths, err = gen.SplitTarGz(src, out, "site.tar.zst", 300<<10, gen.FormatZstd)
	case "tar.xz":
		paths, err = gen.SplitTarGz(src, out, "site.tar.xz", 300<<10, gen.FormatXz)
	case "tar.bz2":
		needCommand(t, "bzip2")
		paths, err = gen.SplitTarGz(src, out, "site.tar.bz2", 300<<10, gen.FormatBzip2)
	case "tar":
		paths, err = gen.SplitTarGz(src, out, "site.tar", 1<<20, gen.FormatTar)
	case "zip":
		paths, err = gen.SplitTarGz(src, out, "site.zip", 300<<10, gen.FormatZip)
	case "text.tar.gz":
		// Text only, in small parts: one gzip member over many parts.
		tsrc := filepath.Join(fixRoot, "textsrc")
		if err = textTree(tsrc); err == nil {
			paths, err = gen.SplitTarGz(tsrc, out, "text.tar.gz", 32<<10, gen.FormatGzip)
		}
	case "gnutar.gz":
		needCommand(t, "tar")
		if err = os.MkdirAll(out, 0o755); err == nil {
			p := filepath.Join(out, "site.tar.gz")
			cmd := exec.Command("tar", "-C", src, "-czf", p, ".")
			if b, cerr := cmd.CombinedOutput(); cerr != nil {
				err = fmt.Errorf("%v: %s", cerr, b)
			}
			paths = []string{p}
		}
	default:
		t.Fatalf("unknown fixture %q", kind)
	}
	if err != nil {
		t.Fatalf("fixture %s: %v", kind, err)
	}
	parts := partsOf(paths)
	fixCache[kind] = parts
	return parts
}

// textTree writes 300 PHP-like files of a few KiB.
func textTree(dir string) error {
	words := strings.Fields("element section property basket order price user group option event agent cache template component result filter")
	for i := range 300 {
		var b strings.Builder
		for j := range 60 + i%40 {
			fmt.Fprintf(&b, "\t$%s = $this->%s->get%s(%d, $%s); // %s %d\n",
				words[(i+j)%len(words)], words[(i*j)%len(words)], words[(j*7)%len(words)], i*j, words[j%len(words)], words[(i+3*j)%len(words)], j)
		}
		p := filepath.Join(dir, fmt.Sprintf("mod%02d/file%03d.php", i%12, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func partsOf(paths []string) []Part {
	var parts []Part
	for _, p := range paths {
		parts = append(parts, Part{Name: filepath.Base(p), Path: p})
	}
	return parts
}

// copyParts copies parts into dir, for tests that damage them.
func copyParts(t testing.TB, parts []Part, dir string) []Part {
	t.Helper()
	var out []Part
	for _, p := range parts {
		b, err := os.ReadFile(p.Path)
		if err != nil {
			t.Fatal(err)
		}
		q := filepath.Join(dir, p.Name)
		if err := os.WriteFile(q, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, Part{Name: p.Name, Path: q})
	}
	return out
}

func needCommand(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is needed (Debian package %s)", name, name)
		}
		t.Skipf("%s not installed", name)
	}
}

// view says how a restored tree is expected to differ from its source.
type view struct {
	deref       bool // symlinks stored as what they point to (Bitrix): file links become files, dir links vanish
	copiedLinks bool // hard links stored as separate files (Bitrix, zip)
}

// snapshot describes a tree as a user sees it: per path, the type,
// permissions, mtime (seconds), content digest or link target, and which
// paths share an inode.
func snapshot(t testing.TB, root string, v view) map[string]string {
	t.Helper()
	out := map[string]string{}
	inodes := map[uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 && v.deref {
			if fi, err = os.Stat(p); err != nil || fi.IsDir() {
				return nil
			}
		}
		mt := fi.ModTime().Unix()
		switch {
		case fi.IsDir():
			out[rel] = fmt.Sprintf("dir %v %d", fi.Mode(), mt)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = fmt.Sprintf("symlink %s %d", target, mt)
		case fi.Mode().IsRegular():
			out[rel] = fmt.Sprintf("file %v %d %d %s", fi.Mode(), mt, fi.Size(), digest(t, p))
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && !v.copiedLinks && st.Nlink > 1 {
				inodes[st.Ino] = append(inodes[st.Ino], rel)
			}
		default:
			out[rel] = "other " + fi.Mode().String()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, group := range inodes {
		sort.Strings(group)
		for _, p := range group {
			out[p] += " links=" + strings.Join(group, ",")
		}
	}
	return out
}

func digest(t testing.TB, p string) string {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// sameTree fails the test with the first differences between two trees.
func sameTree(t testing.TB, want, got map[string]string) {
	t.Helper()
	var diffs []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, "missing "+k+": "+w)
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s:\n\twant %s\n\tgot  %s", k, w, g))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "extra "+k+": "+g)
		}
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		if len(diffs) > 12 {
			diffs = append(diffs[:12], fmt.Sprintf("... %d more", len(diffs)-12))
		}
		t.Fatalf("trees differ (%d entries want, %d got):\n%s", len(want), len(got), strings.Join(diffs, "\n"))
	}
}

// chmodWritable lets t.TempDir's cleanup remove read-only directories when
// tests do not run as root.
func chmodWritable(t testing.TB, dir string) {
	t.Cleanup(func() {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o755)
			}
			return nil
		})
	})
}

// staged lists staging directories left beside dir.
func staged(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(filepath.Dir(dir), "*"+stagingMark+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// recorder is a Progress that keeps what it was told.
type recorder struct {
	mu    sync.Mutex
	total int64
	bytes int64
	files []string
	warns []string
}

func (r *recorder) RestoreStart(total int64) { r.mu.Lock(); r.total = total; r.mu.Unlock() }
func (r *recorder) RestoreBytes(n int64)     { r.mu.Lock(); r.bytes += n; r.mu.Unlock() }
func (r *recorder) RestoreFile(name string) {
	r.mu.Lock()
	r.files = append(r.files, name)
	r.mu.Unlock()
}
func (r *recorder) Warn(msg string) { r.mu.Lock(); r.warns = append(r.warns, msg); r.mu.Unlock() }

// TestPartsErrorNamesAFew: a set of 100,000 parts not ready makes one
// short line naming the first eight, counting the rest, and saying what
// to run.
func TestPartsErrorNamesAFew(t *testing.T) {
	e := &PartsError{Dest: "/d"}
	for i := range 100_000 {
		e.Parts = append(e.Parts, fmt.Sprintf("p%06d", i))
		e.Status = append(e.Status, "broken")
	}
	msg := e.Error()
	if len(msg) > 400 || !strings.HasPrefix(msg, "restore: 100000 part(s) not ready: p000000 (broken), ") ||
		!strings.Contains(msg, "p000007 (broken), and 99992 more; run: haul repair /d") || strings.Contains(msg, "p000008") {
		t.Fatalf("%d bytes: %.300s", len(msg), msg)
	}
	e = &PartsError{Parts: []string{"a", "b"}, Status: []string{"partial", "pending"}}
	if msg := e.Error(); !strings.HasPrefix(msg, "restore: 2 part(s) not ready: a (partial), b (pending); the fetch has not finished") {
		t.Fatal(msg)
	}
}
