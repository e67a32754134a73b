//go:build unix

package safefs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// setup returns an opened DEST and a victim file outside it.
func setup(t *testing.T) (*Dir, string) {
	t.Helper()
	dest := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("victim"), 0o640); err != nil {
		t.Fatal(err)
	}
	d, err := Open(dest)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, victim
}

func victimUntouched(t *testing.T, victim string) {
	t.Helper()
	b, err := os.ReadFile(victim)
	fi, serr := os.Stat(victim)
	if err != nil || serr != nil || !bytes.Equal(b, []byte("victim")) || fi.Mode().Perm() != 0o640 {
		t.Fatalf("victim changed: %q %v %v", b, fi.Mode(), errors.Join(err, serr))
	}
}

// plants are what a hostile user leaves at a name haul opens.
var plants = map[string]func(t *testing.T, d *Dir, name, victim string){
	"symlink out": func(t *testing.T, d *Dir, name, victim string) {
		must(t, os.Symlink(victim, d.Join(name)))
	},
	"symlink in": func(t *testing.T, d *Dir, name, victim string) {
		must(t, os.WriteFile(d.Join("other"), []byte("x"), 0o600))
		must(t, os.Symlink("other", d.Join(name)))
	},
	"hardlink": func(t *testing.T, d *Dir, name, victim string) {
		must(t, os.Link(victim, d.Join(name)))
	},
	"fifo": func(t *testing.T, d *Dir, name, victim string) {
		must(t, syscall.Mkfifo(d.Join(name), 0o600))
	},
	"directory": func(t *testing.T, d *Dir, name, victim string) {
		must(t, os.Mkdir(d.Join(name), 0o700))
	},
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenFileRefusesWhatHaulDidNotMake(t *testing.T) {
	for kind, plant := range plants {
		t.Run(kind, func(t *testing.T) {
			d, victim := setup(t)
			plant(t, d, "lock", victim)
			f, err := d.OpenFile("lock", os.O_RDWR|os.O_CREATE, 0o600)
			var ue *UnsafeError
			if !errors.As(err, &ue) || ue.Path != d.Join("lock") {
				if f != nil {
					f.Close()
				}
				t.Fatalf("OpenFile over a %s: %v, want an *UnsafeError naming it", kind, err)
			}
			victimUntouched(t, victim)
		})
	}
}

func TestOpenFreshReplaces(t *testing.T) {
	for kind, plant := range plants {
		if kind == "directory" {
			continue
		}
		t.Run(kind, func(t *testing.T) {
			d, victim := setup(t)
			plant(t, d, "p.partial", victim)
			f, replaced, err := d.OpenFresh("p.partial", os.O_RDWR, 0o644)
			if err != nil || !replaced {
				t.Fatalf("OpenFresh over a %s: replaced %v, %v", kind, replaced, err)
			}
			if _, err := f.WriteAt([]byte("part bytes"), 0); err != nil {
				t.Fatal(err)
			}
			f.Close()
			victimUntouched(t, victim)
			if fi, ok := d.IsPlainFile("p.partial"); !ok || fi.Size() != 10 {
				t.Fatalf("p.partial is not the new plain file: %v", fi)
			}
		})
	}
	t.Run("plain file kept", func(t *testing.T) {
		d, _ := setup(t)
		must(t, os.WriteFile(d.Join("p.partial"), []byte("resume"), 0o644))
		f, replaced, err := d.OpenFresh("p.partial", os.O_RDWR, 0o644)
		if err != nil || replaced {
			t.Fatalf("a plain .partial: replaced %v, %v", replaced, err)
		}
		f.Close()
		if b, _ := os.ReadFile(d.Join("p.partial")); string(b) != "resume" {
			t.Fatalf("a plain .partial lost its bytes: %q", b)
		}
	})
}

func TestPrivate(t *testing.T) {
	t.Run("created 0700 whatever the umask", func(t *testing.T) {
		d, _ := setup(t)
		old := syscall.Umask(0o077 | 0o100)
		p, err := d.Private(".haul")
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
		if fi, _ := os.Lstat(d.Join(".haul")); fi.Mode().Perm() != 0o700 || !fi.IsDir() {
			t.Fatalf(".haul made with %v", fi.Mode())
		}
	})
	for kind, plant := range map[string]func(t *testing.T, d *Dir, victim string){
		"symlink to a directory": func(t *testing.T, d *Dir, victim string) {
			must(t, os.Symlink(filepath.Dir(victim), d.Join(".haul")))
		},
		"mode 0755": func(t *testing.T, d *Dir, victim string) {
			must(t, os.Mkdir(d.Join(".haul"), 0o700))
			must(t, os.Chmod(d.Join(".haul"), 0o755))
		},
		"a file": func(t *testing.T, d *Dir, victim string) {
			must(t, os.WriteFile(d.Join(".haul"), nil, 0o600))
		},
	} {
		t.Run(kind, func(t *testing.T) {
			d, victim := setup(t)
			plant(t, d, victim)
			if _, err := d.Private(".haul"); !errors.Is(err, ErrUnsafe) {
				t.Fatalf(".haul as a %s: %v, want ErrUnsafe", kind, err)
			}
			victimUntouched(t, victim)
		})
	}
}

func TestWriteFileReplacesALink(t *testing.T) {
	d, victim := setup(t)
	must(t, os.Symlink(victim, d.Join("state.json")))
	must(t, d.WriteFile("state.json", []byte("{}"), 0o600))
	victimUntouched(t, victim)
	if b, err := d.ReadFile("state.json"); err != nil || string(b) != "{}" {
		t.Fatalf("state.json: %q %v", b, err)
	}
	if ents, _ := os.ReadDir(d.Path()); len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}
