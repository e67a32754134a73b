package restore

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haul-dev/haul/integrity"
	"github.com/haul-dev/haul/internal/gen"
	"github.com/klauspost/compress/zip"
)

// Fuzz targets for the parsers of untrusted bytes in this package (issue
// 15): the Bitrix volume header, the encrypted-archive header, and the
// entry-name policy of tar and zip, alone and through a whole restore.
// Each input is one []byte; the seeds are the files of the repository's
// testdata/fuzz/<Target>/, added with f.Add so that they run in every
// plain `go test`. A crash found by fuzzing is added there as a file
// holding the raw input.

// inside reports whether a slash-separated relative path stays under the
// directory it is joined to.
func inside(p string) bool {
	return p != "" && !path.IsAbs(p) && path.Clean(p) == p && p != ".." && !strings.HasPrefix(p, "../") && !strings.ContainsRune(p, 0)
}

// FuzzBitrixHeader: restore's reading of the LN/BX fields agrees with the
// fetch side's (integrity), and a volume header is detected as Bitrix.
func FuzzBitrixHeader(f *testing.F) {
	gen.AddSeeds(f, "FuzzBitrixVolumeHeader")
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := parseBitrixHeader(b)
		ih, iok := integrity.ParseBitrixVolumeHeader(b)
		if ok != iok || ok && (h.last != ih.LastVolume || h.size != ih.TarBytes) {
			t.Fatalf("restore reads %+v (%v), integrity %+v (%v)", h, ok, ih, iok)
		}
		if fm, _ := detectBytes(b); ok && fm != FormatBitrix {
			t.Fatalf("a volume header detected as %q", fm)
		}
	})
}

// FuzzEncryptedHeader: the first byte chooses the mode. Raw: the rest is
// a 512-byte block read as an encryption header with a wrong password;
// the verdict never depends on the password's text (so cannot show it),
// and never opens. Built: the rest is the plaintext half of a header,
// sealed with AES or Blowfish (bit 1) under the right password; it opens
// with that cipher, or is refused for its version, never for the password.
func FuzzEncryptedHeader(f *testing.F) {
	gen.AddSeeds(f, "FuzzEncryptedHeader")
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		mode, rest := in[0], in[1:]
		block := make([]byte, encHeaderLen)
		copy(block, rest)
		if mode&1 == 0 {
			c1, err1 := bitrixCipher(block, "first password")
			c2, err2 := bitrixCipher(block, "second password, longer")
			if c1 != nil || c2 != nil {
				if isEncryptedHeader(block) && c1 != nil {
					got := bytes.Clone(block[256:])
					c1.decrypt(got)
					if bytes.Equal(got, block[:256]) {
						return // the fuzzer found a block that opens with this password: fine
					}
				}
				t.Fatalf("a wrong password opens the block (%v, %v)", c1, c2)
			}
			if (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error() {
				t.Fatalf("the verdict depends on the password: %v / %v", err1, err2)
			}
			if isEncryptedHeader(block) != (errors.Is(err1, ErrPassword) || errors.Is(err1, ErrUnsupported) && strings.Contains(err1.Error(), "version")) {
				t.Fatalf("header %v, error %v", isEncryptedHeader(block), err1)
			}
			return
		}
		sig := make([]byte, 90)
		copy(sig, bitrixSignature)
		copy(block[100:190], sig)
		c := gen.BitrixAES
		want := "AES-256"
		if mode&2 != 0 {
			c, want = gen.BitrixBlowfish, "Blowfish"
		}
		b, err := testBlock(c, "haul")
		if err != nil {
			t.Fatal(err)
		}
		copy(block[256:], block[:256])
		for i := 256; i < encHeaderLen; i += b.BlockSize() {
			b.Encrypt(block[i:i+b.BlockSize()], block[i:i+b.BlockSize()])
		}
		got, err := bitrixCipher(block, "haul")
		switch {
		case err == nil && got.name != want:
			t.Fatalf("opened with %s, sealed with %s", got.name, want)
		case err != nil && !errors.Is(err, ErrUnsupported):
			t.Fatalf("the right password is refused: %v", err)
		}
	})
}

// entryInput splits a fuzz input into a type flag, a name and a link.
func entryInput(in []byte) (byte, string, string) {
	if len(in) == 0 {
		return 0, "", ""
	}
	name, link, _ := strings.Cut(string(in[1:]), "\t")
	return in[0], name, link
}

// checkEntry holds an accepted entry to the policy: a clean relative name
// inside the tree ("." only for a directory), a symlink whose target,
// taken from the link's directory, stays in the tree, a hard link to a
// clean name inside it.
func checkEntry(t *testing.T, e entry) {
	t.Helper()
	if e.name != "." && !inside(e.name) {
		t.Fatalf("accepted %q as %q, outside the tree", e.raw, e.name)
	}
	if e.name == "." && e.kind != kindDir {
		t.Fatalf("accepted %q (kind %c) over the target directory", e.raw, e.kind)
	}
	switch e.kind {
	case kindSymlink:
		if to := path.Join(path.Dir(e.name), e.link); path.IsAbs(e.link) || to != "." && !inside(to) {
			t.Fatalf("accepted symlink %q -> %q, which leaves the tree", e.name, e.link)
		}
	case kindHardlink:
		if !inside(e.link) {
			t.Fatalf("accepted hard link %q -> %q, outside the tree", e.name, e.link)
		}
	}
}

// FuzzTarEntryName: the first byte is the tar type flag, then the name,
// a tab, the link name. An accepted entry obeys the policy (checkEntry).
func FuzzTarEntryName(f *testing.F) {
	gen.AddSeeds(f, "FuzzTarEntryName")
	f.Fuzz(func(t *testing.T, in []byte) {
		typ, name, link := entryInput(in)
		e, skip, err := fromTar(&tar.Header{Typeflag: typ, Name: name, Linkname: link, Mode: 0o6755})
		if err != nil {
			var ue *UnsafeError
			// An absurdly long name is shortened in the message.
			if !errors.As(err, &ue) || ue.Name != name && ue.Name != shorten(name) {
				t.Fatalf("error %v is not an *UnsafeError naming %q", err, name)
			}
			return
		}
		if !skip {
			checkEntry(t, e)
		}
	})
}

// FuzzZipEntryName: the first byte chooses the kind (file, directory,
// symlink, device, FIFO), the rest is the name. An accepted entry obeys
// the policy; a device or FIFO is never accepted as anything but a
// directory (a name ending in "/").
func FuzzZipEntryName(f *testing.F) {
	gen.AddSeeds(f, "FuzzZipEntryName")
	f.Fuzz(func(t *testing.T, in []byte) {
		kind, name, _ := entryInput(in)
		modes := []fs.FileMode{0o644, fs.ModeDir | 0o755, fs.ModeSymlink | 0o777, fs.ModeDevice | 0o644, fs.ModeNamedPipe | 0o644, fs.ModeSetuid | 0o755}
		fh := zip.FileHeader{Name: name}
		fh.SetMode(modes[int(kind)%len(modes)])
		e, err := fromZip(&zip.File{FileHeader: fh})
		if err != nil {
			return
		}
		// A name ending in "/" is a directory whatever its mode says (the
		// zip convention); it is made with mkdir, never as a device.
		if m := modes[int(kind)%len(modes)]; m&(fs.ModeDevice|fs.ModeNamedPipe) != 0 && e.kind != kindDir {
			t.Fatalf("accepted %q of mode %v as kind %c", name, m, e.kind)
		}
		checkEntry(t, e)
	})
}

// FuzzRestoreTar: the input lists entries, one per line: a tar type flag,
// the name, and after a tab the link name; files hold their name as data
// and carry setuid/setgid bits. The tar made of them is restored into a
// sandbox. Whatever the outcome, nothing outside the target changes, no
// staging is left, and a restored tree holds only files, directories and
// symlinks that stay inside it, without setuid/setgid bits.
func FuzzRestoreTar(f *testing.F) {
	gen.AddSeeds(f, "FuzzRestoreTar")
	f.Fuzz(func(t *testing.T, in []byte) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		lines := strings.Split(string(in), "\n")
		if len(lines) > 64 {
			lines = lines[:64]
		}
		when := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
		for _, l := range lines {
			if l == "" {
				continue
			}
			typ, name, link := entryInput([]byte(l))
			h := &tar.Header{Typeflag: typ, Name: name, Linkname: link, Mode: 0o755, ModTime: when, Format: tar.FormatPAX}
			data := []byte(nil)
			if typ == tar.TypeReg {
				data = []byte("data of " + name)
				h.Mode, h.Size = 0o6755, int64(len(data))
			}
			if err := tw.WriteHeader(h); err != nil {
				return // not writable as a tar: nothing to test
			}
			if _, err := tw.Write(data); err != nil {
				return
			}
		}
		if err := tw.Close(); err != nil {
			return
		}
		box := t.TempDir()
		outside := filepath.Join(box, "outside")
		if err := os.MkdirAll(outside, 0o755); err != nil {
			t.Fatal(err)
		}
		victim := filepath.Join(outside, "victim")
		if err := os.WriteFile(victim, []byte("victim"), 0o644); err != nil {
			t.Fatal(err)
		}
		archive := filepath.Join(box, "x.tar")
		if err := os.WriteFile(archive, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		into := filepath.Join(box, "into")
		chmodWritable(t, box)
		err := Restore(context.Background(), []Part{{Name: "x.tar", Path: archive}}, Options{Into: into})
		if err != nil {
			if _, serr := os.Lstat(into); serr == nil {
				t.Fatalf("restore failed (%v) yet %s exists", err, into)
			}
		}
		err = filepath.WalkDir(box, func(p string, d fs.DirEntry, werr error) error {
			if werr != nil {
				return werr
			}
			rel, _ := filepath.Rel(box, p)
			rel = filepath.ToSlash(rel)
			switch {
			case rel == "." || rel == "x.tar" || rel == "outside" || rel == "outside/victim" || rel == "into":
				return nil
			case !strings.HasPrefix(rel, "into/"):
				t.Fatalf("restore wrote %s outside the target", rel)
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				target, _ := os.Readlink(p)
				in := strings.TrimPrefix(rel, "into/")
				if to := path.Join(path.Dir(in), target); path.IsAbs(target) || to != "." && !inside(to) {
					t.Fatalf("restored symlink %s -> %s leaves the tree", in, target)
				}
			case fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0:
				t.Fatalf("%s kept setuid/setgid: %v", rel, fi.Mode())
			case !fi.IsDir() && !fi.Mode().IsRegular():
				t.Fatalf("restored %s of mode %v", rel, fi.Mode())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(victim); err != nil || string(b) != "victim" {
			t.Fatalf("the file outside the target changed: %q, %v", b, err)
		}
	})
}
