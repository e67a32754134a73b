package restore

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/haul-dev/haul/integrity"
)

// A damaged part, with no reference to catch it, fails the restore with an
// *integrity.FormatError naming that part and an offset inside it; Test
// finds the same; nothing appears at the target.
func TestCorruptPart(t *testing.T) {
	tests := []struct {
		name   string
		kind   string
		part   int                                          // which part to damage
		at     int64                                        // where; negative: from the end
		damage func(t *testing.T, p string, at int64) int64 // returns where it damaged
		format string                                       // FormatError.Format
		msg    string                                       // in the message
		exact  bool                                         // the error is located in the damaged part, at or after the damage
	}{
		// Damage to a block header trips the decoder right there.
		{"gzip block header", "text.tar.gz", 0, 10, garble, "gzip", "corrupt data", true},
		{"gzip text", "text.tar.gz", 1, 10_000, garble, "gzip", "checksum error", false},
		// Random data is stored verbatim: only the member CRC at the end
		// notices, and the error lists the parts the member covers.
		{"gzip split, stored data", "tar.gz", 1, 100_000, garble, "gzip", "checksum error", false},
		{"gzip single part", "tar.gz-single", 0, 400_000, garble, "gzip", "", true},
		{"zstd split", "tar.zst", 1, 100_000, garble, "zstd", "", false},
		{"xz split", "tar.xz", 1, 100_000, garble, "xz", "", false},
		{"bzip2 split", "tar.bz2", 1, 100_000, garble, "bzip2", "", true},
		{"bitrix volume", "bitrix", 1, 20_000, garble, "gzip", "", true},
		{"bitrix encrypted volume", "bitrix-enc", 2, 200_000, garble, "gzip", "", true},
		{"zip", "zip", 1, 100_000, garble, "zip", "", false},
		{"tar header", "tar", 1, 0, damageTarHeader, "tar", "invalid header", true},
		{"truncated last part", "tar.gz", -1, -100, truncate, "gzip", "truncated", true},
		{"bitrix BX field", "bitrix", 2, 18, setBX, "bitrix", "BX field says", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			if err := os.Mkdir(filepath.Join(base, "parts"), 0o755); err != nil {
				t.Fatal(err)
			}
			parts := copyParts(t, fixture(t, tc.kind), filepath.Join(base, "parts"))
			i := tc.part
			if i < 0 {
				i += len(parts)
			}
			at := tc.at
			fi, err := os.Stat(parts[i].Path)
			if err != nil {
				t.Fatal(err)
			}
			if at < 0 {
				at += fi.Size()
			}
			if at >= fi.Size() {
				t.Fatalf("part %s is only %d bytes", parts[i].Name, fi.Size())
			}
			at = tc.damage(t, parts[i].Path, at)
			size := fi.Size()
			if fi, err = os.Stat(parts[i].Path); err == nil {
				size = fi.Size()
			}
			var pw string
			if tc.kind == "bitrix-enc" {
				pw = fixPassword
				if err := os.WriteFile(filepath.Join(base, "pw"), []byte(pw), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			into := filepath.Join(base, "out", "site")
			opts := Options{Into: into}
			if pw != "" {
				opts.PasswordFile = filepath.Join(base, "pw")
			}
			for _, run := range []struct {
				name string
				f    func() error
			}{
				{"Restore", func() error { return Restore(context.Background(), parts, opts) }},
				{"Test", func() error { return Test(context.Background(), parts, pw) }},
			} {
				err := run.f()
				t.Logf("%s: %v", run.name, err)
				var fe *integrity.FormatError
				if !errors.As(err, &fe) || !errors.Is(err, integrity.ErrFormat) {
					t.Fatalf("%s: err = %v, want *integrity.FormatError", run.name, err)
				}
				if fe.Format != tc.format {
					t.Fatalf("%s: %v\nwant a %s error", run.name, err, tc.format)
				}
				if tc.exact && (fe.Part != parts[i].Name || fe.Offset < min(at, size) || fe.Offset > size) {
					t.Fatalf("%s: %v\nwant it in %s between bytes %d and %d", run.name, err, parts[i].Name, at, size)
				}
				var se *SpanError
				if !tc.exact && (!errors.As(err, &se) || !slices.Contains(se.Parts, parts[i].Name)) && fe.Part != parts[i].Name {
					t.Fatalf("%s: %v\nwant %s named or among the parts the failed check covers", run.name, err, parts[i].Name)
				}
				if !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("%s: %q does not say %q", run.name, err, tc.msg)
				}
			}
			if _, err := os.Lstat(into); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("something is at the target")
			}
			if s := staged(t, into); len(s) > 0 {
				t.Fatalf("staging left behind: %v", s)
			}
		})
	}
}

// garble overwrites 256 bytes at off with noise.
func garble(t *testing.T, p string, off int64) int64 {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	noise := make([]byte, 256)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(noise)
	if _, err := f.WriteAt(noise, off); err != nil {
		t.Fatal(err)
	}
	return off
}

func truncate(t *testing.T, p string, off int64) int64 {
	if err := os.Truncate(p, off); err != nil {
		t.Fatal(err)
	}
	return off
}

// damageTarHeader flips a byte in the name of the first tar header that
// starts in this part (the fixture's parts are 1 MiB, a block multiple).
func damageTarHeader(t *testing.T, p string, _ int64) int64 {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for off := 512 * 8; off+512 <= len(b); off += 512 {
		if isTarHeader(b[off:off+512]) && b[off] != 0 {
			b[off+1] ^= 0x40
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return int64(off)
		}
	}
	t.Fatal("no tar header in", p)
	return 0
}

func setBX(t *testing.T, p string, off int64) int64 {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [4]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(b[:], binary.LittleEndian.Uint32(b[:])+512)
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	return off
}

// Zero padding after the last gzip member is accepted, as gzip(1) does;
// anything else there is an error at that spot.
func TestGzipTrailer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tail  []byte
		wants string
	}{
		{"zeros", make([]byte, 10240), ""},
		{"garbage", []byte("not gzip at all"), "bad member header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			chmodWritable(t, dir)
			parts := copyParts(t, fixture(t, "tar.gz-single"), dir)
			fi, _ := os.Stat(parts[0].Path)
			f, err := os.OpenFile(parts[0].Path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = f.Write(tc.tail)
			_ = f.Close()
			err = Restore(context.Background(), parts, Options{Into: filepath.Join(dir, "site")})
			if tc.wants == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *integrity.FormatError
			if !errors.As(err, &fe) || fe.Offset < fi.Size() || !strings.Contains(err.Error(), tc.wants) {
				t.Fatalf("err = %v, want %q after byte %d", err, tc.wants, fi.Size())
			}
		})
	}
}
