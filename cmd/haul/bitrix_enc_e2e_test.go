package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/haul-dev/haul/internal/gen"
)

// encTestdata holds the committed encrypted Bitrix sets (see its README).
const encTestdata = "../../testdata/bitrix"

// TestBitrixEncryptedRestore is issue 18 acceptance 2 through the binary:
// every committed set — AES-256 and Blowfish, one volume and several,
// .enc.gz and .enc — is fetched from a local directory and restored with
// --password-file into a tree identical to testdata/bitrix/tree.txt; the
// gzip volumes verify by their gzip and Bitrix fields (the structural check
// works under the encryption), raw .enc volumes are not claimed verified
// without a reference; a wrong or missing password exits 1 with one line
// that never holds a password, and writes nothing.
func TestBitrixEncryptedRestore(t *testing.T) {
	want, err := os.ReadFile(filepath.Join(encTestdata, "tree.txt"))
	if err != nil {
		t.Fatal(err)
	}
	pwFile, err := filepath.Abs(filepath.Join(encTestdata, "password.txt"))
	if err != nil {
		t.Fatal(err)
	}
	pw, err := os.ReadFile(pwFile)
	if err != nil {
		t.Fatal(err)
	}
	password := strings.TrimSuffix(string(pw), "\n")
	sets, err := filepath.Glob(filepath.Join(encTestdata, "*-enc*"))
	if err != nil || len(sets) != 8 {
		t.Fatalf("want 8 committed sets, found %d (%v)", len(sets), err)
	}
	for _, set := range sets {
		t.Run(filepath.Base(set), func(t *testing.T) {
			gz := strings.HasSuffix(set, ".gz")
			dest, work := t.TempDir(), t.TempDir()
			wantCode(t, runHaul(t, nil, "fetch", set+"/", dest, "--progress", "none"), 0)

			rep, _ := e2eVerify(t, dest, 0)
			for name, labels := range e2eLabels(rep) {
				switch {
				case gz && (!slices.Contains(labels, "gzip") || !slices.Contains(labels, "bitrix")):
					t.Errorf("volume %s verified_by %v; want gzip and bitrix", name, labels)
				case !gz && len(labels) > 0:
					t.Errorf("raw encrypted volume %s verified_by %v; nothing can prove it without its password", name, labels)
				}
			}

			into := filepath.Join(work, "www")
			wantCode(t, runHaul(t, nil, "restore", dest, "--into", into, "--password-file", pwFile, "--progress", "none"), 0)
			got, err := gen.BitrixListing(into)
			if err != nil {
				t.Fatal(err)
			}
			if g := strings.Join(got, "\n") + "\n"; g != string(want) {
				t.Fatalf("restored tree differs from tree.txt:\n got:\n%s\nwant:\n%s", g, want)
			}

			wrong := filepath.Join(work, "wrong")
			if err := os.WriteFile(wrong, []byte("Tr0ub4dor&3\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name string
				args []string
				says string
			}{
				{"wrong", []string{"--password-file", wrong}, "password does not open"},
				{"missing", nil, "--password-file"},
			} {
				into2 := filepath.Join(work, "www-"+tc.name)
				r := runHaul(t, nil, append([]string{"restore", dest, "--into", into2, "--progress", "none"}, tc.args...)...)
				wantCode(t, r, 1)
				msg := strings.TrimSpace(r.stderr)
				if strings.Contains(msg, "\n") || !strings.Contains(msg, tc.says) {
					t.Errorf("%s password: want one line saying %q, got:\n%s", tc.name, tc.says, r.stderr)
				}
				if strings.Contains(r.stderr+r.stdout, "Tr0ub4dor") || strings.Contains(r.stderr+r.stdout, password) {
					t.Errorf("%s password: the output shows a password:\n%s%s", tc.name, r.stdout, r.stderr)
				}
				if _, err := os.Lstat(into2); !os.IsNotExist(err) {
					t.Errorf("%s password: %s was created", tc.name, into2)
				}
			}
		})
	}
}
