package main

// Issue 18, last build point: a broken state file is not a dead end. A
// state.json cut short, garbage, or JSON that is not a state (and a
// state.log whose records do not apply) is set aside, never overwritten,
// and the next fetch rebuilds the state from the parts on disk, pulling
// none of them again when the references prove them. status, verify and
// repair on such a DEST say what is wrong and the way out.

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haul-dev/haul/chunk"
)

// stateDamage damages DEST's state in one of the ways a disk or a hand
// does, and returns the file it damaged.
var stateDamage = map[string]func(t *testing.T, dest string) string{
	"state.json cut to half": func(t *testing.T, dest string) string {
		b := readFile(t, chunk.StatePath(dest))
		writeFile(t, chunk.StatePath(dest), b[:len(b)/2])
		return "state.json"
	},
	"state.json garbage": func(t *testing.T, dest string) string {
		writeFile(t, chunk.StatePath(dest), e2eBytes(5, 3000))
		return "state.json"
	},
	"state.json of the wrong shape": func(t *testing.T, dest string) string {
		writeFile(t, chunk.StatePath(dest), []byte(`{"version":2,"parts":[{"name":"../../etc/passwd","size":5,"status":"verified"}]}`))
		return "state.json"
	},
	"state.json not a state": func(t *testing.T, dest string) string {
		writeFile(t, chunk.StatePath(dest), []byte(`["hello", 1]`))
		return "state.json"
	},
	// A frame whose CRC holds but whose record names no part of the set:
	// not a torn append, which the store drops on its own.
	"state.log record for no part": func(t *testing.T, dest string) string {
		payload := []byte(`{"k":"piece","p":"no-such-part","i":3,"s":"AAAA"}`)
		frame := binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))
		frame = binary.LittleEndian.AppendUint32(frame, crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
		f, err := os.OpenFile(chunk.LogPath(dest), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write(append(frame, payload...)); err != nil {
			t.Fatal(err)
		}
		return "state.log"
	},
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestBrokenStateIsRebuilt(t *testing.T) {
	parts := e2eSet(18, 70_000, 50_000, 90_000, 30_000)
	sums := e2ePart{"SHA256SUMS", e2eSHA256SUMS(parts)}
	for name, damage := range stateDamage {
		t.Run(name, func(t *testing.T) {
			srv := e2eServe(t, append(parts, sums))
			dest := t.TempDir()
			fetch := append([]string{"fetch", "--progress", "log", "--manifest", srv.URL(sums.name)}, append(e2eURLs(srv, parts), dest)...)
			wantCode(t, runHaul(t, nil, fetch...), 0)

			file := damage(t, dest)
			old := readFile(t, filepath.Join(dest, chunk.StateDir, file))

			// The commands that only read say what is wrong and the way
			// out, exit 1; none pretends the set is done.
			if file == "state.json" {
				for _, cmd := range [][]string{{"status", dest}, {"verify", dest}, {"repair", "--progress", "none", dest}} {
					r := runHaul(t, nil, cmd...)
					wantCode(t, r, 1)
					if !strings.Contains(r.stderr, "state.json is unreadable") || !strings.Contains(r.stderr, "haul fetch SOURCE") || strings.Contains(r.stderr, "panic") {
						t.Fatalf("haul %s on a broken state says:\n%s", cmd[0], r.stderr)
					}
				}
			}

			srv.ZeroCounters()
			r := runHaul(t, nil, fetch...)
			wantCode(t, r, 0)
			if out := r.stdout + r.stderr; !strings.Contains(out, file+" was unreadable") || !strings.Contains(out, "set aside as "+file+".corrupt") {
				t.Fatalf("the fetch does not say it set %s aside:\n%s", file, out)
			}
			e2eIdentical(t, dest, parts)
			for _, p := range parts {
				if got := srv.FileBytesSent(p.name); got > 0 {
					t.Fatalf("the rebuild pulled %d bytes of %s, which the references prove on disk", got, p.name)
				}
			}
			if got := readFile(t, filepath.Join(dest, chunk.StateDir, file+".corrupt")); !bytes.Equal(got, old) {
				t.Fatalf("%s.corrupt does not hold the old bytes", file)
			}
			st := runHaul(t, nil, "status", dest)
			wantCode(t, st, 0)
			wantCode(t, runHaul(t, nil, "verify", dest), 0)

			// Broken again: the first set-aside copy stays.
			damage(t, dest)
			wantCode(t, runHaul(t, nil, fetch...), 0)
			if got := readFile(t, filepath.Join(dest, chunk.StateDir, file+".corrupt")); !bytes.Equal(got, old) {
				t.Fatalf("a second set-aside replaced %s.corrupt", file)
			}
			if _, err := os.Stat(filepath.Join(dest, chunk.StateDir, file+".corrupt.1")); err != nil {
				t.Fatalf("the second set-aside copy is not %s.corrupt.1: %v", file, err)
			}
			e2eIdentical(t, dest, parts)
		})
	}
}

// Without a reference, bytes found on disk are not taken on trust: the
// rebuild fetches them again, and the run still ends verified or
// unverified as a fresh fetch would — never with a part nothing fetched.
func TestBrokenStateNoReferences(t *testing.T) {
	parts := e2eSet(19, 40_000, 20_000)
	srv := e2eServe(t, parts)
	dest := t.TempDir()
	fetch := append([]string{"fetch", "--progress", "none"}, append(e2eURLs(srv, parts), dest)...)
	wantCode(t, runHaul(t, nil, fetch...), 0)
	writeFile(t, chunk.StatePath(dest), []byte("{\"version\":2,\"parts\":[\n"))
	// Rot the bytes on disk too: only fetching again can tell.
	e2eFlipOnDisk(t, filepath.Join(dest, parts[1].name), 100)
	srv.ZeroCounters()
	wantCode(t, runHaul(t, nil, fetch...), 0)
	e2eIdentical(t, dest, parts)
	if got := srv.BytesSent(); got != e2eTotal(parts) {
		t.Fatalf("the rebuild pulled %d bytes; the parts nothing proves are %d", got, e2eTotal(parts))
	}
}
