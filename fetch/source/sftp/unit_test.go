package sftp

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haul-dev/haul/internal/testenv"

	"github.com/pkg/sftp"
)

// shortReaderAt answers at most max bytes per call, with the error style
// of the given mode.
type shortReaderAt struct {
	data []byte
	max  int
	mode string // "eof": short answers say io.EOF; "nil": they say nothing
}

func (r *shortReaderAt) ReadAt(b []byte, off int64) (int, error) {
	if off >= int64(len(r.data)) {
		return 0, io.EOF
	}
	n := copy(b[:min(len(b), r.max)], r.data[off:])
	if n < len(b) && r.mode == "eof" {
		return n, io.EOF
	}
	return n, nil
}

func TestReadFullAtShortReads(t *testing.T) {
	data := sftpTestBytes(100_000, 1)
	for _, mode := range []string{"eof", "nil"} {
		r := &shortReaderAt{data: data, max: 7_000, mode: mode}
		b := make([]byte, 50_000)
		n, err := readFullAt(r, b, 1234)
		if err != nil || n != len(b) || !bytes.Equal(b, data[1234:1234+len(b)]) {
			t.Fatalf("%s: n=%d err=%v, bytes equal=%v", mode, n, err, bytes.Equal(b, data[1234:1234+len(b)]))
		}
		// Past the end: the bytes that exist, then errShortFile.
		b = make([]byte, 10_000)
		n, err = readFullAt(r, b, int64(len(data)-3000))
		if n != 3000 || !errors.Is(err, errShortFile) {
			t.Fatalf("%s: past the end: n=%d err=%v", mode, n, err)
		}
	}
}

// TestReadFullAtPkgSFTPShortPackets runs pkg/sftp's concurrent ReadAt
// against a server that caps answers below the client's packet size, the
// case where pkg/sftp reports a short answer as io.EOF (pkg/sftp #658's
// family), and checks readFullAt still gets every byte.
func TestReadFullAtPkgSFTPShortPackets(t *testing.T) {
	dir := t.TempDir()
	data := sftpTestBytes(3<<20+77, 3)
	file := filepath.Join(dir, "part")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c2s, s2c := pipePair()
	srv, err := sftp.NewServer(struct {
		io.Reader
		io.WriteCloser
	}{c2s.r, s2c.w})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	// The server answers at most 32 KiB; the client asks for 128 KiB.
	client, err := sftp.NewClientPipe(s2c.r, c2s.w, sftp.MaxPacketUnchecked(128<<10), sftp.UseConcurrentReads(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Both pipe directions end, so neither side waits on the other.
		c2s.w.Close()
		s2c.w.Close()
		client.Close()
		srv.Close()
	})
	f, err := client.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	b := make([]byte, 2<<20)
	n, _ := f.ReadAt(b, 1000)
	if n == len(b) {
		t.Logf("pkg/sftp ReadAt returned everything (the short-read edge did not show)")
	}
	clear(b)
	n, err = readFullAt(f, b, 1000)
	if err != nil || n != len(b) || !bytes.Equal(b, data[1000:1000+len(b)]) {
		t.Fatalf("readFullAt: n=%d err=%v equal=%v", n, err, bytes.Equal(b, data[1000:1000+len(b)]))
	}
	// The last bytes, ending exactly at the end of the file.
	b = make([]byte, 1<<20)
	off := int64(len(data) - len(b))
	if n, err := readFullAt(f, b, off); err != nil || n != len(b) || !bytes.Equal(b, data[off:]) {
		t.Fatalf("tail: n=%d err=%v", n, err)
	}
}

// sftpTestBytes returns n pseudo-random bytes from seed.
func sftpTestBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	var key [32]byte
	key[0] = seed
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

type pipe struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func pipePair() (pipe, pipe) {
	r1, w1 := io.Pipe()
	r2, w2 := io.Pipe()
	return pipe{r1, w1}, pipe{r2, w2}
}

func TestParseHashOutput(t *testing.T) {
	h := strings.Repeat("ab", 32)
	cases := []struct {
		name             string
		out              string
		header, complete bool
		n                int
	}{
		{"ok", "motd junk\n" + hashHeader + "\nS 10\nP 0 " + h + "\nP 2 " + h + "\n" + hashFooter + "\n", true, true, 2},
		{"no header", "This service allows sftp connections only.\n", false, false, 0},
		{"empty", "", false, false, 0},
		{"truncated", hashHeader + "\nS 10\nP 0 " + h + "\n", true, false, 1},
		{"short hash", hashHeader + "\nS 10\nP 0 abcd\n" + hashFooter + "\n", true, false, 0},
		{"dup", hashHeader + "\nS 10\nP 0 " + h + "\nP 0 " + h + "\n" + hashFooter + "\n", true, false, 1},
		{"no size", hashHeader + "\nP 0 " + h + "\n" + hashFooter + "\n", true, false, 1},
		{"garbage", hashHeader + "\nS 10\nP 0\n" + hashFooter + "\n", true, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, _, complete, header := parseHashOutput([]byte(c.out))
			if header != c.header || complete != c.complete || len(res) != c.n {
				t.Fatalf("header=%v complete=%v n=%d, want %v %v %d", header, complete, len(res), c.header, c.complete, c.n)
			}
		})
	}
}

func TestHashBlock(t *testing.T) {
	for _, c := range []struct{ piece, want int64 }{
		{8 << 20, 1 << 20}, {1 << 20, 1 << 20}, {64 << 10, 64 << 10}, {100_000, 32}, {3, 1}, {12 << 10, 4 << 10},
	} {
		if got := hashBlock(c.piece); got != c.want {
			t.Errorf("hashBlock(%d) = %d, want %d", c.piece, got, c.want)
		}
	}
}

// TestHashScriptLocally runs the remote hashing command with the local
// sh, once with GNU dd and once with a dd that knows no byte counts (as on
// BSD and busybox), and compares with crypto/sha256.
func TestHashScriptLocally(t *testing.T) {
	sh := testenv.RequireTool(t, "sh")
	realDD := testenv.RequireTool(t, "dd")
	dir := t.TempDir()
	// A name a shell must not misread.
	file := filepath.Join(dir, "it's a part; $(touch pwned) *.tar.gz")
	data := sftpTestBytes(1<<20+4567, 5)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	fakeBin := filepath.Join(dir, "bin")
	if err := os.Mkdir(fakeBin, 0o755); err != nil {
		t.Fatal(err)
	}
	fakeDD := "#!" + sh + "\nfor a in \"$@\"; do case $a in iflag=*) echo 'dd: unknown operand' >&2; exit 1;; esac; done\nexec " + realDD + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(fakeBin, "dd"), []byte(fakeDD), 0o755); err != nil {
		t.Fatal(err)
	}

	for _, pieceSize := range []int64{256 << 10, 100_000} {
		count := (int64(len(data)) + pieceSize - 1) / pieceSize
		var pieces []int
		for i := int64(0); i < count; i++ {
			pieces = append(pieces, int(i))
		}
		for _, gnu := range []bool{true, false} {
			cmdline, stdin := hashCommand(file, int64(len(data)), pieceSize, pieces)
			cmd := exec.Command(sh, "-c", cmdline)
			cmd.Dir = dir
			cmd.Stdin = bytes.NewReader(stdin)
			if !gnu {
				cmd.Env = append(os.Environ(), "PATH="+fakeBin+":"+os.Getenv("PATH"))
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("piece %d gnu=%v: %v: %s", pieceSize, gnu, err, stderr.String())
			}
			res, size, complete, header := parseHashOutput(out)
			if !header || !complete || size != int64(len(data)) || len(res) != len(pieces) {
				t.Fatalf("piece %d gnu=%v: header=%v complete=%v size=%d n=%d\n%s\n%s", pieceSize, gnu, header, complete, size, len(res), out, stderr.String())
			}
			for _, i := range pieces {
				end := min(int64(i+1)*pieceSize, int64(len(data)))
				want := sha256.Sum256(data[int64(i)*pieceSize : end])
				if !bytes.Equal(res[i], want[:]) {
					t.Fatalf("piece %d of %d gnu=%v: hash differs", i, pieceSize, gnu)
				}
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Fatal("the file name was executed by the shell")
	}
}

func TestSFTPPathOf(t *testing.T) {
	for in, want := range map[string]string{
		"sftp://h/srv/x/":       "/srv/x/",
		"sftp://h/srv/x.tar.gz": "/srv/x.tar.gz",
		"sftp://h":              ".",
		"sftp://h/~":            ".",
		"sftp://h/~/":           ".",
		"sftp://h/~/backups/":   "backups/",
		"ssh://u@h:22/a%20b":    "/a b",
	} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := sftpPathOf(u); got != want {
			t.Errorf("sftpPathOf(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestNextFillSize(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		name        string
		size        int64
		took, drain time.Duration
		want        int64
	}{
		{"the caller waits on the link: ask more", 64 << 10, 10 * ms, 1 * ms, 128 << 10},
		{"never above sftpChunk", sftpChunk, 10 * ms, 0, sftpChunk},
		{"a paced caller: ask less", 256 << 10, 1 * ms, 500 * ms, 128 << 10},
		{"never below one packet", sftpMaxPacket, 1 * ms, time.Second, sftpMaxPacket},
		{"a long link, a somewhat slower caller: hold", 128 << 10, 100 * ms, 900 * ms, 128 << 10},
	} {
		if got := nextFillSize(c.size, c.took, c.drain); got != c.want {
			t.Errorf("%s: nextFillSize(%d, %v, %v) = %d, want %d", c.name, c.size, c.took, c.drain, got, c.want)
		}
	}
}
