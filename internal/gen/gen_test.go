package gen

import (
	"archive/tar"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zip"
	"golang.org/x/crypto/blowfish"
)

// listing describes a tree: path, type and mode, size, mtime, content or
// link target, link count.
func listing(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		s := fmt.Sprintf("%s %v %d", rel, fi.Mode(), fi.ModTime().Unix())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			s += " -> " + target
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			sum := sha256.Sum256(b)
			s += fmt.Sprintf(" %d %x nlink=%d", len(b), sum[:8], fi.Sys().(*syscall.Stat_t).Nlink)
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tempDir is t.TempDir, made removable when the tree has read-only
// directories and the test does not run as root.
func tempDir(t *testing.T) string {
	dir := t.TempDir()
	t.Cleanup(func() {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	return dir
}

func TestTree(t *testing.T) {
	dir := tempDir(t)
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	for _, d := range []struct {
		path string
		seed int64
	}{{a, 3}, {b, 3}, {c, 4}} {
		if err := Tree(d.path, d.seed, 400<<10); err != nil {
			t.Fatal(err)
		}
	}
	la, lb, lc := listing(t, a), listing(t, b), listing(t, c)
	if strings.Join(la, "\n") != strings.Join(lb, "\n") {
		t.Fatal("the same seed gave different trees")
	}
	if strings.Join(la, "\n") == strings.Join(lc, "\n") {
		t.Fatal("different seeds gave the same tree")
	}
	var size int64
	var links, hard, long, readOnlyDir, utf8 bool
	_ = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
		fi, _ := os.Lstat(p)
		rel, _ := filepath.Rel(a, p)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			links = true
		case fi.Mode().IsRegular():
			size += fi.Size()
			hard = hard || fi.Sys().(*syscall.Stat_t).Nlink > 1
		case fi.IsDir() && fi.Mode().Perm() == 0o555:
			readOnlyDir = true
		}
		long = long || len(rel) > 100
		utf8 = utf8 || strings.Contains(rel, "отчёт")
		return nil
	})
	if !links || !hard || !long || !readOnlyDir || !utf8 {
		t.Fatalf("tree lacks something: symlinks %v, hard links %v, long names %v, 0555 dir %v, utf-8 names %v", links, hard, long, readOnlyDir, utf8)
	}
	if size < 300<<10 || size > 600<<10 {
		t.Fatalf("tree holds %d bytes, asked for %d", size, 400<<10)
	}
}

// volumeTar decompresses one Bitrix volume (all its members).
func volumeTar(t *testing.T, p string) []byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBitrixSet(t *testing.T) {
	dir := tempDir(t)
	src := filepath.Join(dir, "src")
	if err := Tree(src, 5, 300<<10); err != nil {
		t.Fatal(err)
	}
	const vol = 64 << 10
	tests := []struct {
		name, base string
		o          BitrixOptions
	}{
		{"plain", "site.tar.gz", BitrixOptions{}},
		{"aes", "site.enc.gz", BitrixOptions{Password: "s3cret"}},
		{"blowfish", "site.enc.gz", BitrixOptions{Password: "s3cret", Cipher: BitrixBlowfish}},
		{"aes no gzip", "site.enc", BitrixOptions{Password: "s3cret", NoGzip: true}},
		{"blowfish no gzip", "site.enc", BitrixOptions{Password: "s3cret", Cipher: BitrixBlowfish, NoGzip: true}},
		{"no gzip", "site.tar", BitrixOptions{NoGzip: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			tc.o.VolumeSize = vol
			paths, err := BitrixSetOf(src, out, "site", tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if len(paths) < 3 {
				t.Fatalf("%d volumes, want several", len(paths))
			}
			var stream []byte
			for i, p := range paths {
				want := tc.base
				if i > 0 {
					want += fmt.Sprintf(".%d", i)
				}
				if filepath.Base(p) != want {
					t.Fatalf("volume %d is %s, want %s", i, filepath.Base(p), want)
				}
				var tarBytes []byte
				if tc.o.NoGzip {
					tarBytes, err = os.ReadFile(p)
					if err != nil {
						t.Fatal(err)
					}
				} else {
					tarBytes = gzipVolume(t, p, i, len(paths))
				}
				if i < len(paths)-1 && len(tarBytes) != vol {
					t.Fatalf("%s holds %d tar bytes, want %d", want, len(tarBytes), vol)
				}
				stream = append(stream, tarBytes...)
			}
			if tc.o.Password != "" {
				stream = decryptBitrix(t, stream, tc.o.Password, tc.o.Cipher)
			}
			checkBitrixTar(t, stream)
		})
	}
	t.Run("same bytes twice", func(t *testing.T) {
		o := BitrixOptions{VolumeSize: vol, Password: "s3cret"}
		a, err := BitrixSetOf(src, filepath.Join(dir, "twice-a"), "site", o)
		if err != nil {
			t.Fatal(err)
		}
		b, err := BitrixSetOf(src, filepath.Join(dir, "twice-b"), "site", o)
		if err != nil {
			t.Fatal(err)
		}
		for i := range a {
			x, _ := os.ReadFile(a[i])
			y, _ := os.ReadFile(b[i])
			if !bytes.Equal(x, y) {
				t.Fatalf("volume %d differs between two runs", i)
			}
		}
	})
}

// gzipVolume checks the fields of volume i of n and returns its tar bytes.
func gzipVolume(t *testing.T, p string, i, n int) []byte {
	t.Helper()
	head := make([]byte, len(BitrixEmptyMember))
	f, _ := os.Open(p)
	_, err := io.ReadFull(f, head)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(p)
	ln := []byte{0, 0, 0, 0}
	if i == 0 {
		ln = []byte{'L', 'N', byte(n - 1), 0}
	}
	if !bytes.Equal(head[12:16], ln) {
		t.Fatalf("%s: bytes 12-15 are %q, want %q", name, head[12:16], ln)
	}
	if string(head[16:18]) != "BX" {
		t.Fatalf("%s: no BX at 16", name)
	}
	tarBytes := volumeTar(t, p)
	if bx := binary.LittleEndian.Uint32(head[18:22]); int(bx) != len(tarBytes) {
		t.Fatalf("%s: BX %d, volume holds %d tar bytes", name, bx, len(tarBytes))
	}
	clean := bytes.Clone(head)
	copy(clean[12:16], []byte{0, 0, 0, 0})
	copy(clean[18:22], []byte{0, 0, 0, 0})
	if !bytes.Equal(clean, BitrixEmptyMember) {
		t.Fatalf("%s does not start with Bitrix's empty member: % x", name, head)
	}
	return tarBytes
}

// decryptBitrix checks the encryption header as Bitrix writes it and
// returns the plain tar.
func decryptBitrix(t *testing.T, s []byte, password string, c BitrixCipher) []byte {
	t.Helper()
	if string(bytes.TrimRight(s[100:190], "\x00")) != BitrixSignature || string(bytes.TrimRight(s[190:200], "\x00")) != "1.2" {
		t.Fatalf("no encryption header: %q", s[:200])
	}
	for i, ch := range s[:100] {
		hexDigit := ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f'
		if i < 32 && !hexDigit || i >= 32 && ch != 0 {
			t.Fatalf("bytes 0-99 are %q, want 32 lowercase hex digits then zeros", s[:100])
		}
	}
	if !bytes.Equal(s[200:256], make([]byte, 56)) {
		t.Fatal("bytes 200-255 are not zero")
	}
	sum := md5.Sum([]byte(password))
	key := []byte(hex.EncodeToString(sum[:]))
	var b cipher.Block
	var err error
	if c == BitrixBlowfish {
		b, err = blowfish.NewCipher(key)
	} else {
		b, err = aes.NewCipher(key) // 32 key bytes: AES-256
	}
	if err != nil {
		t.Fatal(err)
	}
	bs := b.BlockSize()
	if (len(s)-512)%bs != 0 {
		t.Fatalf("the encrypted stream is %d bytes, not whole %d-byte blocks", len(s)-512, bs)
	}
	plain := bytes.Clone(s)
	for i := 256; i+bs <= len(plain); i += bs {
		b.Decrypt(plain[i:i+bs], plain[i:i+bs])
	}
	if !bytes.Equal(plain[256:512], s[:256]) {
		t.Fatal("the header's encrypted half does not decrypt to its plain half")
	}
	return plain[512:]
}

// checkBitrixTar checks the old-style headers and that Go's tar reads it.
func checkBitrixTar(t *testing.T, s []byte) {
	t.Helper()
	first := s[:512]
	if m := first[100:108]; m[0] == '0' || !bytes.Contains(m, []byte{0}) {
		t.Fatalf("mode field %q: want octal without zero padding, NUL-terminated", m)
	}
	if !bytes.Equal(first[257:265], make([]byte, 8)) {
		t.Fatalf("magic/version %q, want empty", first[257:265])
	}
	if !bytes.Contains(s, []byte("././@LongLink\x00")) {
		t.Fatal("no GNU long name record")
	}
	tr := tar.NewReader(bytes.NewReader(s))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Typeflag == tar.TypeReg {
			if _, err := io.Copy(io.Discard, tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(names) < 50 {
		t.Fatalf("%d entries", len(names))
	}
	if bytes.HasSuffix(s, make([]byte, 1024)) {
		t.Fatal("stream ends with end-of-archive blocks; CTar writes none")
	}
}

func TestSplitTarGz(t *testing.T) {
	dir := tempDir(t)
	src := filepath.Join(dir, "src")
	if err := Tree(src, 6, 300<<10); err != nil {
		t.Fatal(err)
	}
	t.Run("gz split", func(t *testing.T) {
		paths, err := SplitTarGz(src, filepath.Join(dir, "gz"), "site.tar.gz", 50<<10, FormatGzip)
		if err != nil {
			t.Fatal(err)
		}
		var all []byte
		for i, p := range paths {
			b, _ := os.ReadFile(p)
			if filepath.Base(p) != fmt.Sprintf("site.tar.gz.%03d", i) || (i < len(paths)-1 && len(b) != 50<<10) {
				t.Fatalf("part %d: %s, %d bytes", i, filepath.Base(p), len(b))
			}
			all = append(all, b...)
		}
		zr, err := gzip.NewReader(bytes.NewReader(all))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		seen := map[byte]bool{}
		long := false
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			seen[h.Typeflag] = true
			long = long || len(h.Name) > 100
		}
		if !seen[tar.TypeSymlink] || !seen[tar.TypeLink] || !seen[tar.TypeDir] || !long {
			t.Fatalf("types %v, long names %v", seen, long)
		}
	})
	t.Run("zip whole", func(t *testing.T) {
		paths, err := SplitTarGz(src, filepath.Join(dir, "zip"), "site.zip", 0, FormatZip)
		if err != nil {
			t.Fatal(err)
		}
		if len(paths) != 1 || filepath.Base(paths[0]) != "site.zip" {
			t.Fatalf("paths %v", paths)
		}
		zr, err := zip.OpenReader(paths[0])
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		links := 0
		for _, f := range zr.File {
			if f.Mode()&fs.ModeSymlink != 0 {
				links++
			}
		}
		if links == 0 {
			t.Fatal("no symlinks in the zip")
		}
	})
	t.Run("unknown format", func(t *testing.T) {
		if _, err := SplitTarGz(src, filepath.Join(dir, "x"), "x", 0, "rar"); err == nil {
			t.Fatal("no error")
		}
	})
}
