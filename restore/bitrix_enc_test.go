package restore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/haul-dev/haul/integrity"
	"github.com/haul-dev/haul/internal/gen"
	"golang.org/x/crypto/blowfish"
)

var update = flag.Bool("update", false, "rewrite the committed test sets in testdata/ from the project's writer")

// encTestdata is where the committed encrypted Bitrix sets live (the
// repository's testdata/bitrix; see its README).
const encTestdata = "../testdata/bitrix"

// encSet is one committed set: its directory under encTestdata and how
// it was written.
type encSet struct {
	dir    string
	cipher gen.BitrixCipher
	multi  bool
	gzip   bool
}

// encSets are the committed sets: both ciphers, one volume and several,
// .enc.gz and .enc.
func encSets() []encSet {
	var sets []encSet
	for _, c := range []gen.BitrixCipher{gen.BitrixAES, gen.BitrixBlowfish} {
		for _, multi := range []bool{false, true} {
			for _, gz := range []bool{true, false} {
				name := c.String()
				name += map[bool]string{false: "-single", true: "-multi"}[multi]
				name += map[bool]string{false: "-enc", true: "-enc.gz"}[gz]
				sets = append(sets, encSet{dir: name, cipher: c, multi: multi, gzip: gz})
			}
		}
	}
	return sets
}

// encParts lists a committed set's volumes in order: NAME, NAME.1, ...
func encParts(t testing.TB, dir string) []Part {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var parts []Part
	for _, e := range ents {
		parts = append(parts, Part{Name: e.Name(), Path: filepath.Join(dir, e.Name())})
	}
	slices.SortFunc(parts, func(a, b Part) int {
		x, _ := volumeNumber(a.Name)
		y, _ := volumeNumber(b.Name)
		return x - y
	})
	if len(parts) == 0 {
		t.Fatalf("%s holds no volumes; run go test ./restore -run TestBitrixEncryptedSets -update", dir)
	}
	return parts
}

// writeEncTestdata rebuilds testdata/bitrix from gen.BitrixSampleTree.
func writeEncTestdata(t *testing.T) {
	src := filepath.Join(t.TempDir(), "site")
	chmodWritable(t, filepath.Dir(src))
	if err := gen.BitrixSampleTree(src); err != nil {
		t.Fatal(err)
	}
	pw, err := os.ReadFile(filepath.Join(encTestdata, "password.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range encSets() {
		dir := filepath.Join(encTestdata, s.dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		o := gen.BitrixOptions{Password: strings.TrimSuffix(string(pw), "\n"), Cipher: s.cipher, NoGzip: !s.gzip}
		if s.multi {
			o.VolumeSize = 4 << 10
		}
		if _, err := gen.BitrixSetOf(src, dir, "site_20261120", o); err != nil {
			t.Fatal(err)
		}
	}
	lines, err := gen.BitrixListing(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(encTestdata, "tree.txt"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBitrixEncryptedSets is issue 18 acceptance 2 at the library level:
// each committed set (AES-256 and Blowfish; one volume and several;
// .enc.gz and .enc) restores to exactly the tree in testdata/bitrix/tree.txt,
// passes Test, and a wrong password writes nothing and never shows up in
// the message.
func TestBitrixEncryptedSets(t *testing.T) {
	if *update {
		writeEncTestdata(t)
	}
	want, err := os.ReadFile(filepath.Join(encTestdata, "tree.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// The listing describes the writer's source, not what restore made.
	src := filepath.Join(t.TempDir(), "site")
	chmodWritable(t, filepath.Dir(src))
	if err := gen.BitrixSampleTree(src); err != nil {
		t.Fatal(err)
	}
	if lines, err := gen.BitrixListing(src); err != nil || strings.Join(lines, "\n")+"\n" != string(want) {
		t.Fatalf("tree.txt does not describe gen.BitrixSampleTree (%v); run with -update", err)
	}
	pwFile, _ := filepath.Abs(filepath.Join(encTestdata, "password.txt"))
	pw, err := readPassword(pwFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range encSets() {
		t.Run(s.dir, func(t *testing.T) {
			parts := encParts(t, filepath.Join(encTestdata, s.dir))
			if s.multi != (len(parts) > 1) {
				t.Fatalf("%d volumes in a %s set", len(parts), s.dir)
			}
			wantFormat := FormatTar
			if s.gzip {
				wantFormat = FormatBitrix
			}
			if f, err := Detect(parts); err != nil || f != wantFormat {
				t.Fatalf("Detect = %q, %v; want %q", f, err, wantFormat)
			}
			a, err := openArchive(parts, pw, false, progress{})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := a.cipher.name, map[gen.BitrixCipher]string{gen.BitrixAES: "AES-256", gen.BitrixBlowfish: "Blowfish"}[s.cipher]; got != want {
				t.Errorf("opened with %s, want %s", got, want)
			}
			a.close()

			dir := t.TempDir()
			chmodWritable(t, dir)
			into := filepath.Join(dir, "www")
			if err := Restore(context.Background(), parts, Options{Into: into, PasswordFile: pwFile}); err != nil {
				t.Fatal(err)
			}
			got, err := gen.BitrixListing(into)
			if err != nil {
				t.Fatal(err)
			}
			if g := strings.Join(got, "\n") + "\n"; g != string(want) {
				t.Fatalf("restored tree differs from tree.txt:\n got:\n%s\nwant:\n%s", g, want)
			}
			if err := Test(context.Background(), parts, pw); err != nil {
				t.Fatalf("Test: %v", err)
			}

			wrong := filepath.Join(dir, "wrong")
			if err := os.WriteFile(wrong, []byte("not the password\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			into2 := filepath.Join(dir, "www2")
			err = Restore(context.Background(), parts, Options{Into: into2, PasswordFile: wrong})
			if !errors.Is(err, ErrPassword) {
				t.Fatalf("wrong password: err = %v, want ErrPassword", err)
			}
			if msg := err.Error(); strings.Contains(msg, "not the password") || strings.Contains(msg, pw) || strings.Contains(msg, "\n") {
				t.Fatalf("wrong password: message %q shows a password or spans lines", msg)
			}
			if _, err := os.Lstat(into2); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a wrong password left %s behind (%v)", into2, err)
			}
			if s := staged(t, into2); len(s) > 0 {
				t.Fatalf("staging left behind: %v", s)
			}
		})
	}
}

// A raw .enc set cut inside a cipher block is a format error naming the
// last volume, not a silently short tree.
func TestBitrixEncryptedTruncated(t *testing.T) {
	for _, set := range []string{"aes-multi-enc", "blowfish-multi-enc"} {
		t.Run(set, func(t *testing.T) {
			parts := copyParts(t, encParts(t, filepath.Join(encTestdata, set)), t.TempDir())
			last := parts[len(parts)-1]
			fi, err := os.Stat(last.Path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(last.Path, fi.Size()-3); err != nil {
				t.Fatal(err)
			}
			into := filepath.Join(t.TempDir(), "www")
			err = Restore(context.Background(), parts, Options{Into: into, PasswordFile: filepath.Join(encTestdata, "password.txt")})
			var fe *integrity.FormatError
			if !errors.As(err, &fe) || fe.Part != last.Name {
				t.Fatalf("err = %v, want a format error in %s", err, last.Name)
			}
			if _, err := os.Lstat(into); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a truncated set left %s behind", into)
			}
		})
	}
}

// The header parser finds both ciphers and refuses what CTar refuses.
func TestBitrixCipherChoice(t *testing.T) {
	header := func(c gen.BitrixCipher, version, password string) []byte {
		b := make([]byte, 512)
		copy(b, "0123456789abcdef0123456789abcdef")
		copy(b[100:], bitrixSignature)
		copy(b[190:], version)
		copy(b[256:], b[:256])
		blk, err := testBlock(c, password)
		if err != nil {
			t.Fatal(err)
		}
		bs := blk.BlockSize()
		for i := 256; i < 512; i += bs {
			blk.Encrypt(b[i:i+bs], b[i:i+bs])
		}
		return b
	}
	for _, tc := range []struct {
		name     string
		block    []byte
		password string
		want     string // cipher name, or "" for an error
		err      error
	}{
		{"aes", header(gen.BitrixAES, "1.2", "pw"), "pw", "AES-256", nil},
		{"blowfish", header(gen.BitrixBlowfish, "1.2", "pw"), "pw", "Blowfish", nil},
		{"blowfish 1.1", header(gen.BitrixBlowfish, "1.1", "pw"), "pw", "Blowfish", nil},
		{"wrong password", header(gen.BitrixAES, "1.2", "pw"), "px", "", ErrPassword},
		{"no password", header(gen.BitrixAES, "1.2", "pw"), "", "", ErrPassword},
		{"newer version", header(gen.BitrixAES, "1.3", "pw"), "pw", "", ErrUnsupported},
		{"odd version", header(gen.BitrixAES, "1.x", "pw"), "pw", "", ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := bitrixCipher(tc.block, tc.password)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || c.name != tc.want {
				t.Fatalf("cipher %v, %v; want %s", c, err, tc.want)
			}
		})
	}
}

// testBlock is the cipher Bitrix keys with a password, built here from
// the format facts rather than from the code under test.
func testBlock(c gen.BitrixCipher, password string) (cipher.Block, error) {
	sum := md5.Sum([]byte(password))
	key := []byte(hex.EncodeToString(sum[:]))
	if c == gen.BitrixBlowfish {
		return blowfish.NewCipher(key)
	}
	return aes.NewCipher(key)
}
