package sftp_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/source/open"
	"github.com/haul-dev/haul/fetch/source/sftp"
	"github.com/haul-dev/haul/internal/sshdial"
	"github.com/haul-dev/haul/internal/testenv"
)

// sshFixture is a real sshd, a directory of files it serves, and options
// that reach it with the test's key and a known_hosts file that trusts it.
// HOME points at an empty directory and no agent is set, so nothing of the
// machine's own ~/.ssh takes part.
type sshFixture struct {
	d          *testenv.SSHD
	dir        string
	home       string
	knownHosts string
	opts       source.OpenOptions
}

func newSSHFixture(t *testing.T, sshdOpts ...testenv.SSHDOption) *sshFixture {
	t.Helper()
	f := &sshFixture{home: t.TempDir()}
	t.Setenv("HOME", f.home)
	t.Setenv("SSH_AUTH_SOCK", "")
	f.d = testenv.StartSSHD(t, sshdOpts...)
	f.dir = t.TempDir()
	f.knownHosts = filepath.Join(t.TempDir(), "known_hosts")
	f.d.WriteKnownHosts(t, f.knownHosts, false)
	f.opts.SSH = source.SSHOptions{Identity: f.d.UserKeyFile, KnownHosts: f.knownHosts}
	return f
}

// url is sftp://USER@127.0.0.1:PORT + p.
func (f *sshFixture) url(p string) string {
	return fmt.Sprintf("sftp://%s@%s%s", f.d.User, f.d.Addr, p)
}

func (f *sshFixture) open(t *testing.T, spec string) *source.Opened {
	t.Helper()
	op, err := open.Open(context.Background(), spec, f.opts)
	if err != nil {
		t.Fatalf("open %s: %v", spec, err)
	}
	t.Cleanup(func() { op.Source.Close() })
	return op
}

// write puts a file of n pseudo-random bytes into the served directory.
func (f *sshFixture) write(t *testing.T, name string, n int, seed uint64) []byte {
	t.Helper()
	data := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 99))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(filepath.Join(f.dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

func sftpList(t *testing.T, src source.Source) map[string]source.Object {
	t.Helper()
	objs, err := src.List(context.Background())
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	m := map[string]source.Object{}
	for _, o := range objs {
		m[o.Name] = o
	}
	return m
}

func sftpRead(ctx context.Context, src source.Source, obj source.Object, off, n int64) ([]byte, error) {
	rc, err := src.ReadRange(ctx, obj, off, n)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return b, err
}

func TestSFTPListAndReadRange(t *testing.T) {
	f := newSSHFixture(t)
	big := f.write(t, "site.tar.gz", 1<<20+333, 1)
	one := f.write(t, "site.tar.gz.1", 200_000, 2)
	f.write(t, "site.tar.gz.2", 0, 3)
	f.write(t, "other.bin", 10, 4)
	if err := os.Mkdir(filepath.Join(f.dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(f.dir, "site.tar.gz.1"), filepath.Join(f.dir, "link.tar")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(f.dir, "gone"), filepath.Join(f.dir, "dangling")); err != nil {
		t.Fatal(err)
	}

	op := f.open(t, f.url(f.dir+"/"))
	if op.Prefix != "" {
		t.Fatalf("prefix %q for a directory", op.Prefix)
	}
	wantStr := fmt.Sprintf("sftp://%s@%s%s/", f.d.User, f.d.Addr, f.dir)
	if got := op.Source.String(); got != wantStr {
		t.Errorf("String() = %q, want %q", got, wantStr)
	}
	objs := sftpList(t, op.Source)
	var names []string
	for n := range objs {
		names = append(names, n)
	}
	if len(objs) != 5 || objs["sub"].Name != "" || objs["dangling"].Name != "" {
		t.Fatalf("listed %v", names)
	}
	for name, o := range objs {
		fi, err := os.Stat(filepath.Join(f.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if o.Size != fi.Size() || o.ModTime.Unix() != fi.ModTime().Unix() {
			t.Errorf("%s: size %d mtime %v, want %d %v", name, o.Size, o.ModTime, fi.Size(), fi.ModTime())
		}
	}

	ctx := context.Background()
	var requested int64
	check := func(name string, want []byte, off, n int64) {
		t.Helper()
		got, err := sftpRead(ctx, op.Source, objs[name], off, n)
		if err != nil {
			t.Fatalf("%s [%d,+%d): %v", name, off, n, err)
		}
		if !bytes.Equal(got, want[off:off+n]) {
			t.Fatalf("%s [%d,+%d): %d bytes, not the file's", name, off, n, len(got))
		}
		if name == "site.tar.gz" {
			requested += n
		}
	}
	size := int64(len(big))
	check("site.tar.gz", big, 0, size)
	check("site.tar.gz", big, 0, 1)
	check("site.tar.gz", big, 1000, 300_000) // crosses a 256 KiB fetch
	check("site.tar.gz", big, size-1000, 1000)
	check("site.tar.gz", big, size, 0)
	check("site.tar.gz.1", one, 0, int64(len(one)))
	check("link.tar", one, 7, 100)
	check("site.tar.gz.2", nil, 0, 0)

	// A range crossing the end is refused, never cut short.
	if b, err := sftpRead(ctx, op.Source, objs["site.tar.gz"], size-10, 20); err == nil {
		t.Fatalf("range past the end gave %d bytes and no error", len(b))
	}

	op.Source.Close()
	if got := f.d.SFTPReads(t)[filepath.Join(f.dir, "site.tar.gz")]; got != requested {
		t.Errorf("sftp-server read %d bytes of site.tar.gz, %d were asked for", got, requested)
	}
}

func TestSFTPConcurrentRanges(t *testing.T) {
	f := newSSHFixture(t)
	data := f.write(t, "part.000", 4<<20+17, 7)
	op := f.open(t, f.url(f.dir+"/part.000"))
	if op.Prefix != "part.000" {
		t.Fatalf("prefix %q", op.Prefix)
	}
	obj := sftpList(t, op.Source)["part.000"]

	const workers, perWorker = 16, 4
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		requested int64
		errs      []error
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range perWorker {
				off := r.Int64N(obj.Size)
				n := r.Int64N(min(obj.Size-off, 700_000) + 1)
				got, err := sftpRead(context.Background(), op.Source, obj, off, n)
				mu.Lock()
				requested += n
				if err == nil && !bytes.Equal(got, data[off:off+n]) {
					err = fmt.Errorf("[%d,+%d): wrong bytes", off, n)
				}
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d reads failed, first: %v", len(errs), workers*perWorker, errs[0])
	}
	op.Source.Close()
	if got := f.d.SFTPBytesRead(t); got != requested {
		t.Errorf("sftp-server read %d bytes, %d were asked for", got, requested)
	}
}

func TestSFTPDirectoryOrPrefix(t *testing.T) {
	f := newSSHFixture(t)
	f.write(t, "site.tar.gz", 10, 1)
	f.write(t, "site.tar.gz.1", 10, 2)
	for _, c := range []struct {
		path, prefix string
	}{
		{f.dir, ""},
		{f.dir + "/", ""},
		{f.dir + "/site.tar.gz", "site.tar.gz"},
		{f.dir + "/site", "site"},
		{f.dir + "/not-yet-there", "not-yet-there"},
	} {
		for _, scheme := range []string{"sftp", "ssh"} {
			spec := strings.Replace(f.url(c.path), "sftp://", scheme+"://", 1)
			op := f.open(t, spec)
			if op.Prefix != c.prefix {
				t.Errorf("%s: prefix %q, want %q", spec, op.Prefix, c.prefix)
			}
			if n := len(sftpList(t, op.Source)); n != 2 {
				t.Errorf("%s: listed %d files, want the directory's 2", spec, n)
			}
			op.Source.Close()
		}
	}
	for _, p := range []string{f.dir + "/missing/", f.dir + "/missing/site.tar.gz", f.dir + "/site.tar.gz/"} {
		_, err := open.Open(context.Background(), f.url(p), f.opts)
		if !errors.Is(err, source.ErrNotFound) || !source.IsPermanent(err) {
			t.Errorf("%s: %v, want a permanent ErrNotFound", p, err)
		}
	}
}

func TestSFTPChanged(t *testing.T) {
	f := newSSHFixture(t)
	f.write(t, "a", 300_000, 1)
	f.write(t, "b", 300_000, 2)
	f.write(t, "c", 600_000, 3)
	op := f.open(t, f.url(f.dir+"/"))
	objs := sftpList(t, op.Source)
	ctx := context.Background()

	// Replaced by another file (a new size).
	f.write(t, "a", 300_001, 4)
	if _, err := sftpRead(ctx, op.Source, objs["a"], 0, 10); !errors.Is(err, source.ErrChanged) {
		t.Fatalf("replaced file: %v, want ErrChanged", err)
	}
	// Same size, new mtime.
	later := objs["b"].ModTime.Add(10 * time.Second)
	if err := os.Chtimes(filepath.Join(f.dir, "b"), later, later); err != nil {
		t.Fatal(err)
	}
	if _, err := sftpRead(ctx, op.Source, objs["b"], 0, 10); !errors.Is(err, source.ErrChanged) {
		t.Fatalf("touched file: %v, want ErrChanged", err)
	}
	if _, err := op.Source.(source.RemoteHasher).HashPieces(ctx, objs["b"], 65536, []int{0}); !errors.Is(err, source.ErrChanged) {
		t.Fatalf("hash of a touched file: %v, want ErrChanged", err)
	}

	// Rewritten in place while a range is being read: the bytes may be a
	// mix, so the read must end in ErrChanged, not io.EOF.
	rc, err := op.Source.ReadRange(ctx, objs["c"], 0, objs["c"].Size)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(filepath.Join(f.dir, "c"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt(bytes.Repeat([]byte{0xAA}, 600_000), 0); err != nil {
		t.Fatal(err)
	}
	w.Close()
	later = objs["c"].ModTime.Add(5 * time.Second)
	if err := os.Chtimes(filepath.Join(f.dir, "c"), later, later); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rc); !errors.Is(err, source.ErrChanged) {
		t.Fatalf("rewritten during the read: %v, want ErrChanged", err)
	}
}

func sha256Pieces(data []byte, pieceSize int64) map[int][]byte {
	m := map[int][]byte{}
	for i := int64(0); i*pieceSize < int64(len(data)); i++ {
		s := sha256.Sum256(data[i*pieceSize : min((i+1)*pieceSize, int64(len(data)))])
		m[int(i)] = s[:]
	}
	return m
}

func TestSFTPHashPieces(t *testing.T) {
	f := newSSHFixture(t)
	name := "it's a part (1).tar.gz"
	data := f.write(t, name, 5*65536+1234, 5)
	op := f.open(t, f.url(f.dir+"/"))
	obj := sftpList(t, op.Source)[name]
	rh, ok := op.Source.(source.RemoteHasher)
	if !ok {
		t.Fatal("the SFTP source is no RemoteHasher")
	}
	ctx := context.Background()
	for _, pieceSize := range []int64{65536, 100_000, 1 << 20} {
		want := sha256Pieces(data, pieceSize)
		var all []int
		for i := range want {
			all = append(all, i)
		}
		got, err := rh.HashPieces(ctx, obj, pieceSize, all)
		if err != nil {
			t.Fatalf("piece size %d: %v", pieceSize, err)
		}
		if len(got) != len(want) {
			t.Fatalf("piece size %d: %d hashes, want %d", pieceSize, len(got), len(want))
		}
		for i, w := range want {
			if !bytes.Equal(got[i], w) {
				t.Fatalf("piece size %d: piece %d differs", pieceSize, i)
			}
		}
	}
	// A subset, in any order.
	got, err := rh.HashPieces(ctx, obj, 65536, []int{5, 1})
	want := sha256Pieces(data, 65536)
	if err != nil || len(got) != 2 || !bytes.Equal(got[5], want[5]) || !bytes.Equal(got[1], want[1]) {
		t.Fatalf("subset: %v %v", got, err)
	}
	if _, err := rh.HashPieces(ctx, obj, 65536, []int{6}); err == nil {
		t.Fatal("piece 6 of 6: no error")
	}
	// A part that is a symlink (SFTP's stat follows it) is hashed as the
	// file it points to, not reported as changed.
	if err := os.Symlink(filepath.Join(f.dir, name), filepath.Join(f.dir, "link.tar.gz")); err != nil {
		t.Fatal(err)
	}
	link := sftpList(t, op.Source)["link.tar.gz"]
	got, err = rh.HashPieces(ctx, link, 65536, []int{0, 5})
	if err != nil || len(got) != 2 || !bytes.Equal(got[0], want[0]) || !bytes.Equal(got[5], want[5]) {
		t.Fatalf("a symlinked part: %v %v", got, err)
	}
	// Hashing moved nothing over SFTP.
	op.Source.Close()
	if n := f.d.SFTPReads(t)[filepath.Join(f.dir, name)]; n != 0 {
		t.Errorf("hashing read %d bytes over SFTP", n)
	}
}

func TestSFTPOnlyServer(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  testenv.SSHDOption
	}{
		{"ForceCommand internal-sftp", testenv.ForceCommand("internal-sftp")},
		{"ForceCommand sftp-server", testenv.SFTPOnly()},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newSSHFixture(t, c.opt)
			data := f.write(t, "p", 100_000, 9)
			op := f.open(t, f.url(f.dir+"/"))
			obj := sftpList(t, op.Source)["p"]
			got, err := sftpRead(context.Background(), op.Source, obj, 5, 90_000)
			if err != nil || !bytes.Equal(got, data[5:90_005]) {
				t.Fatalf("read on an SFTP-only server: %v", err)
			}
			_, err = op.Source.(source.RemoteHasher).HashPieces(context.Background(), obj, 65536, []int{0, 1})
			if !errors.Is(err, sftp.ErrNoRemoteExec) {
				t.Fatalf("HashPieces: %v, want ErrNoRemoteExec", err)
			}
			t.Logf("message: %v", err)
			// The connection still works for reads afterwards.
			if _, err := sftpRead(context.Background(), op.Source, obj, 0, 10); err != nil {
				t.Fatalf("read after the refused command: %v", err)
			}
		})
	}
}

func TestSSHHostKeyUnknown(t *testing.T) {
	f := newSSHFixture(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	const other = "otherhost ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC7ImkKj9OYsBdNp0uv1b0wvUgwrKfJ1xMWKbIAPKJGL\n"
	if err := os.WriteFile(kh, []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	f.opts.SSH.KnownHosts = kh
	_, err := open.Open(context.Background(), f.url(f.dir+"/"), f.opts)
	var he *sshdial.HostKeyError
	if !errors.Is(err, sshdial.ErrHostKeyUnknown) || !errors.As(err, &he) {
		t.Fatalf("unknown host: %v", err)
	}
	if he.Fingerprint != f.d.HostKeyFingerprint || he.KeyType != "ssh-ed25519" || he.Changed {
		t.Errorf("error %+v, want fingerprint %s", he, f.d.HostKeyFingerprint)
	}
	if !strings.Contains(err.Error(), f.d.HostKeyFingerprint) || !strings.Contains(err.Error(), "--accept-new-host-key") {
		t.Errorf("message: %s", err)
	}
	if !source.IsPermanent(err) {
		t.Error("an unknown host key is retried")
	}
	t.Logf("message: %v", err)
	if b, _ := os.ReadFile(kh); string(b) != other {
		t.Errorf("known_hosts changed: %q", b)
	}
	// No known_hosts at all: the same, and none is created.
	f.opts.SSH.KnownHosts = filepath.Join(t.TempDir(), "nope", "known_hosts")
	if _, err := open.Open(context.Background(), f.url(f.dir+"/"), f.opts); !errors.Is(err, sshdial.ErrHostKeyUnknown) {
		t.Fatalf("no known_hosts: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(f.opts.SSH.KnownHosts)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("created %s: %v", filepath.Dir(f.opts.SSH.KnownHosts), err)
	}
}

func TestSSHAcceptNewThenChangedHostKey(t *testing.T) {
	f := newSSHFixture(t)
	f.opts.SSH.KnownHosts = "" // ~/.ssh/known_hosts, with no ~/.ssh yet
	f.opts.SSH.AcceptNewHostKey = true
	op := f.open(t, f.url(f.dir+"/"))
	sftpList(t, op.Source)
	op.Source.Close()

	kh := filepath.Join(f.home, ".ssh", "known_hosts")
	b, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	if want := f.d.KnownHostsLine(false); strings.TrimSpace(string(b)) != want {
		t.Fatalf("recorded %q, want %q", b, want)
	}
	if fi, _ := os.Stat(filepath.Dir(kh)); fi.Mode().Perm() != 0o700 {
		t.Errorf("~/.ssh mode %v", fi.Mode())
	}
	if fi, _ := os.Stat(kh); fi.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode %v", fi.Mode())
	}
	// OpenSSH itself accepts what was recorded.
	if sshBin, err := exec.LookPath("ssh"); err == nil {
		cmd := exec.Command(sshBin, "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
			"-o", "UserKnownHostsFile="+kh, "-i", f.d.UserKeyFile, "-p", strconv.Itoa(f.d.Port), f.d.User+"@"+f.d.Host, "true")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("ssh with the recorded known_hosts: %v: %s", err, out)
		}
	}

	// Known now: works without accept-new.
	f.opts.SSH.AcceptNewHostKey = false
	op = f.open(t, f.url(f.dir+"/"))
	sftpList(t, op.Source)
	op.Source.Close()

	// A new key on the same host:port is refused, accept-new or not, and
	// known_hosts is left alone.
	f.d.ChangeHostKey(t)
	for _, accept := range []bool{false, true} {
		f.opts.SSH.AcceptNewHostKey = accept
		_, err := open.Open(context.Background(), f.url(f.dir+"/"), f.opts)
		var he *sshdial.HostKeyError
		if !errors.Is(err, sshdial.ErrHostKeyChanged) || !errors.As(err, &he) || !he.Changed {
			t.Fatalf("accept-new=%v: %v, want ErrHostKeyChanged", accept, err)
		}
		if he.Fingerprint != f.d.HostKeyFingerprint || !strings.Contains(err.Error(), "CHANGED") || !source.IsPermanent(err) {
			t.Errorf("accept-new=%v: %v", accept, err)
		}
		t.Logf("message: %v", err)
	}
	if b2, _ := os.ReadFile(kh); string(b2) != string(b) {
		t.Errorf("known_hosts changed after a refused key: %q", b2)
	}
}

func TestSSHHashedKnownHosts(t *testing.T) {
	f := newSSHFixture(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	f.d.WriteKnownHosts(t, kh, true)
	f.opts.SSH.KnownHosts = kh
	op := f.open(t, f.url(f.dir+"/"))
	sftpList(t, op.Source)
}

func TestSSHAuth(t *testing.T) {
	f := newSSHFixture(t)
	f.write(t, "p", 1000, 1)
	list := func(opts source.OpenOptions, spec string) error {
		op, err := open.Open(context.Background(), spec, opts)
		if err != nil {
			return err
		}
		defer op.Source.Close()
		_, err = op.Source.List(context.Background())
		return err
	}
	noKey := f.opts
	noKey.SSH.Identity = ""

	t.Run("identity file", func(t *testing.T) {
		if err := list(f.opts, f.url(f.dir+"/")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("agent", func(t *testing.T) {
		key, _ := f.d.NewUserKey(t, "agent_key", "", true)
		if err := list(noKey, f.url(f.dir+"/")); !errors.Is(err, source.ErrAuth) {
			t.Fatalf("no key and no agent: %v, want ErrAuth", err)
		}
		t.Setenv("SSH_AUTH_SOCK", testenv.StartSSHAgent(t, key))
		if err := list(noKey, f.url(f.dir+"/")); err != nil {
			t.Fatalf("agent: %v", err)
		}
	})

	t.Run("config alias", func(t *testing.T) {
		sshDir := filepath.Join(f.home, ".ssh")
		if err := os.MkdirAll(sshDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sshDir, "config"), []byte(f.d.SSHConfig("backup-host")), 0o600); err != nil {
			t.Fatal(err)
		}
		f.d.WriteKnownHosts(t, filepath.Join(sshDir, "known_hosts"), false)
		t.Cleanup(func() { os.RemoveAll(sshDir) })
		op, err := open.Open(context.Background(), "sftp://backup-host"+f.dir+"/", source.OpenOptions{})
		if err != nil {
			t.Fatalf("alias: %v", err)
		}
		defer op.Source.Close()
		if objs := sftpList(t, op.Source); len(objs) != 1 {
			t.Fatalf("listed %v", objs)
		}
		want := fmt.Sprintf("sftp://%s@backup-host:%d%s/", f.d.User, f.d.Port, f.dir)
		if got := op.Source.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	})

	t.Run("encrypted key without a prompt", func(t *testing.T) {
		key, _ := f.d.NewUserKey(t, "locked_key", "correct horse", true)
		opts := f.opts
		opts.SSH.Identity = key
		err := list(opts, f.url(f.dir+"/"))
		if !errors.Is(err, source.ErrAuth) || !source.IsPermanent(err) {
			t.Fatalf("%v, want ErrAuth", err)
		}
		for _, want := range []string{key, "ssh-agent", "terminal"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message lacks %q: %v", want, err)
			}
		}
		if strings.Contains(err.Error(), "correct horse") {
			t.Error("the passphrase is in the message")
		}
		t.Logf("message: %v", err)
	})

	t.Run("encrypted key with a prompt", func(t *testing.T) {
		key, _ := f.d.NewUserKey(t, "prompt_key", "correct horse", true)
		opts := f.opts
		opts.SSH.Identity = key
		var asked []string
		opts.SSH.Passphrase = func(file string) ([]byte, error) {
			asked = append(asked, file)
			return []byte("correct horse"), nil
		}
		if err := list(opts, f.url(f.dir+"/")); err != nil {
			t.Fatal(err)
		}
		if len(asked) != 1 || asked[0] != key {
			t.Fatalf("asked for %v", asked)
		}
		opts.SSH.Passphrase = func(string) ([]byte, error) { return []byte("wrong"), nil }
		err := list(opts, f.url(f.dir+"/"))
		if !errors.Is(err, source.ErrAuth) {
			t.Fatalf("wrong passphrase: %v, want ErrAuth", err)
		}
		t.Logf("message: %v", err)
	})

	t.Run("encrypted key held by the agent", func(t *testing.T) {
		key, _ := f.d.NewUserKey(t, "agent_locked_key", "pw", true)
		sock := testenv.StartSSHAgent(t)
		raw, err := os.ReadFile(key)
		if err != nil {
			t.Fatal(err)
		}
		priv, err := ssh.ParseRawPrivateKeyWithPassphrase(raw, []byte("pw"))
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		if err := agent.NewClient(c).Add(agent.AddedKey{PrivateKey: priv}); err != nil {
			t.Fatal(err)
		}
		c.Close()
		t.Setenv("SSH_AUTH_SOCK", sock)
		opts := f.opts
		opts.SSH.Identity = key
		opts.SSH.Passphrase = func(string) ([]byte, error) {
			t.Error("asked for a passphrase the agent makes needless")
			return nil, errors.New("no")
		}
		if err := list(opts, f.url(f.dir+"/")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("key not authorized", func(t *testing.T) {
		key, err := filepath.Abs(filepath.Join(t.TempDir(), "stranger"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := testenv.WriteUserKey(key, ""); err != nil {
			t.Fatal(err)
		}
		opts := f.opts
		opts.SSH.Identity = key
		err = list(opts, f.url(f.dir+"/"))
		if !errors.Is(err, source.ErrAuth) || !source.IsPermanent(err) || !strings.Contains(err.Error(), key) {
			t.Fatalf("%v, want a permanent ErrAuth naming the key", err)
		}
		t.Logf("message: %v", err)
	})

	t.Run("missing identity file", func(t *testing.T) {
		opts := f.opts
		opts.SSH.Identity = filepath.Join(t.TempDir(), "nope")
		if err := list(opts, f.url(f.dir+"/")); !errors.Is(err, source.ErrAuth) || !strings.Contains(err.Error(), "nope") {
			t.Fatalf("%v", err)
		}
	})
}

func TestSSHConnectionRefused(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SSH_AUTH_SOCK", "")
	port := testenv.FreePort(t)
	_, err := open.Open(context.Background(), fmt.Sprintf("sftp://127.0.0.1:%d/x/", port),
		source.OpenOptions{SSH: source.SSHOptions{KnownHosts: filepath.Join(t.TempDir(), "kh")}})
	if err == nil || source.IsPermanent(err) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("%v, want a retryable connection refused", err)
	}
	t.Logf("message: %v", err)
}

// sshProxy forwards TCP connections to an sshd and can cut them all, or
// stop passing the server's bytes, to play a bad link.
type sshProxy struct {
	l        net.Listener
	target   string
	mu       sync.Mutex
	conns    []net.Conn
	accepted int
	stalled  chan struct{} // closed = flowing
}

func startSSHProxy(t *testing.T, target string) *sshProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &sshProxy{l: l, target: target, stalled: make(chan struct{})}
	close(p.stalled)
	go p.serve()
	t.Cleanup(func() {
		l.Close()
		p.flow()
		p.cut()
	})
	return p
}

func (p *sshProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.accepted++
		p.mu.Unlock()
		go func() { io.Copy(s, c); s.Close() }()
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := s.Read(buf)
				p.mu.Lock()
				gate := p.stalled
				p.mu.Unlock()
				<-gate
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			c.Close()
		}()
	}
}

func (p *sshProxy) port() int { return p.l.Addr().(*net.TCPAddr).Port }

func (p *sshProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *sshProxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = make(chan struct{})
}

func (p *sshProxy) flow() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.stalled:
	default:
		close(p.stalled)
	}
}

// viaProxy points the fixture at a proxy in front of its sshd.
func (f *sshFixture) viaProxy(t *testing.T) (*sshProxy, string) {
	t.Helper()
	p := startSSHProxy(t, f.d.Addr)
	kh, err := os.OpenFile(f.knownHosts, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(kh, "[127.0.0.1]:%d %s\n", p.port(), f.d.HostKeyPub)
	kh.Close()
	return p, fmt.Sprintf("sftp://%s@127.0.0.1:%d%s/", f.d.User, p.port(), f.dir)
}

// proxiedPart serves one file of size bytes through a proxy, and opens
// it; configure, if not nil, adjusts the options first.
func proxiedPart(t *testing.T, size int, seed uint64, configure func(*sshFixture)) (*sshProxy, source.Source, source.Object, []byte) {
	t.Helper()
	f := newSSHFixture(t)
	data := f.write(t, "p", size, seed)
	proxy, spec := f.viaProxy(t)
	if configure != nil {
		configure(f)
	}
	op := f.open(t, spec)
	return proxy, op.Source, sftpList(t, op.Source)["p"], data
}

func TestSFTPReconnectsAfterTheLinkDrops(t *testing.T) {
	proxy, src, obj, data := proxiedPart(t, 3<<20, 11, nil)
	ctx := context.Background()

	// A reader open when the link drops fails, and does not hang.
	rc, err := src.ReadRange(ctx, obj, 0, obj.Size)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	proxy.cut()
	if _, err := io.ReadAll(rc); err == nil {
		t.Fatal("read across a dropped link: no error")
	}
	rc.Close()

	// Workers that retry get every byte, over one new connection.
	const workers = 8
	piece := obj.Size / workers
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := int64(w) * piece
			for try := 0; try < 3; try++ {
				var got []byte
				got, errs[w] = sftpRead(ctx, src, obj, off, piece)
				if errs[w] == nil && !bytes.Equal(got, data[off:off+piece]) {
					errs[w] = errors.New("wrong bytes")
				}
				if errs[w] == nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", w, err)
		}
	}
	proxy.mu.Lock()
	accepted := proxy.accepted
	proxy.mu.Unlock()
	if accepted != 2 {
		t.Errorf("%d connections, want 2 (one reconnect shared by all workers)", accepted)
	}
}

func TestSFTPReadStopsWithItsContext(t *testing.T) {
	proxy, src, obj, _ := proxiedPart(t, 2<<20, 12, nil)

	ctx, cancel := context.WithCancel(context.Background())
	rc, err := src.ReadRange(ctx, obj, 0, obj.Size)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	proxy.stall()
	go cancel()
	_, err = io.ReadAll(rc)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("read on a stalled link after cancel: %v", err)
	}
	proxy.flow()
}

// TestSFTPSilentLinkIsDropped: a link that goes silent (no byte from the
// server, TCP still up) must not wedge a read that has no deadline of its
// own: keepalives find it dead, the read fails, the next one reconnects.
func TestSFTPSilentLinkIsDropped(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(cfg, []byte("Host *\n    ServerAliveInterval 1\n    ServerAliveCountMax 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	proxy, src, obj, data := proxiedPart(t, 2<<20, 13, func(f *sshFixture) { f.opts.SSH.ConfigFile = cfg })
	ctx := context.Background()

	rc, err := src.ReadRange(ctx, obj, 0, obj.Size)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	proxy.stall()
	if _, err := io.ReadAll(rc); err == nil {
		t.Fatal("read over a silent link: no error")
	}
	proxy.flow()
	got, err := sftpRead(ctx, src, obj, 100, 300_000)
	if err != nil || !bytes.Equal(got, data[100:300_100]) {
		t.Fatalf("after the silent link: %v", err)
	}
}

// TestSFTPSlowReaderReadsLittleAhead: a caller that takes its bytes slowly
// (a --bwlimit paces it) makes the reader ask for little at a time, so the
// link carries little more than the caller took: -j such readers asking
// 256 KiB each would burst far past the cap.
func TestSFTPSlowReaderReadsLittleAhead(t *testing.T) {
	f := newSSHFixture(t)
	data := f.write(t, "p", 2<<20, 11)
	op := f.open(t, f.url(f.dir+"/"))
	obj := sftpList(t, op.Source)["p"]
	rc, err := op.Source.ReadRange(context.Background(), obj, 0, obj.Size)
	if err != nil {
		t.Fatal(err)
	}
	const took = 100 << 10
	got := make([]byte, 0, took)
	buf := make([]byte, 16<<10)
	for len(got) < took {
		n, err := rc.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // the pace of a slow caller
	}
	rc.Close()
	op.Source.Close()
	if !bytes.Equal(got, data[:len(got)]) {
		t.Fatal("bytes differ")
	}
	read := f.d.SFTPReads(t)[filepath.Join(f.dir, "p")]
	t.Logf("the caller took %d bytes; the server read %d", len(got), read)
	if limit := int64(len(got)) + 32<<10; read > limit {
		t.Fatalf("the server read %d bytes for a caller that took %d: more than %d read ahead", read, len(got), limit-int64(len(got)))
	}
}
