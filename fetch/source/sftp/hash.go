package sftp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/internal/sshdial"
)

// ErrNoRemoteExec means the SSH server runs no commands for us (an
// SFTP-only account: ForceCommand internal-sftp, a restricted shell), or
// lacks dd or a SHA-256 tool, so pieces cannot be hashed where the data
// lives. The caller reads the pieces instead.
var ErrNoRemoteExec = errors.New("remote commands unavailable")

const (
	hashHeader = "haul-hash-v1"
	hashFooter = "haul-hash-end"
	// hashGNUBlock is dd's block size when GNU dd can count in bytes.
	hashGNUBlock = 1 << 20
	// hashStderrMax caps how much of the remote stderr is kept.
	hashStderrMax = 4 << 10
)

// hashScript hashes pieces of the file "$1" with standard tools: it reads
// "INDEX OFFSET LENGTH SKIP COUNT" lines on stdin and prints "P INDEX
// SHA256" for each. With GNU dd it cuts at bytes (iflag=skip_bytes,
// count_bytes); other dd's cut at blocks of %[1]d bytes (SKIP, COUNT),
// which divide every piece boundary. It is one line, for login shells
// (csh) that allow no newline inside quotes, and has no "!" (csh history).
// The size comes from ls -L: a part may be a symlink (SFTP's stat follows
// it), and the link's own size would read as a changed file.
const hashScript = `set -f; f=$1; ` +
	`if command -v sha256sum >/dev/null 2>&1; then h() { sha256sum; }; ` +
	`elif command -v shasum >/dev/null 2>&1; then h() { shasum -a 256; }; ` +
	`elif command -v sha256 >/dev/null 2>&1; then h() { sha256 -q; }; ` +
	`elif command -v openssl >/dev/null 2>&1; then h() { openssl dgst -sha256 -r; }; ` +
	`else echo "haul-hash: no sha256sum, shasum, sha256 or openssl" >&2; exit 127; fi; ` +
	`command -v dd >/dev/null 2>&1 || { echo "haul-hash: no dd" >&2; exit 127; }; ` +
	`if [ -f "$f" ] && [ -r "$f" ]; then :; else echo "haul-hash: cannot read the file" >&2; exit 66; fi; ` +
	`if dd if=/dev/null of=/dev/null bs=1 count=0 iflag=skip_bytes,count_bytes 2>/dev/null; then gnu=1; else gnu=; fi; ` +
	`echo ` + hashHeader + `; ` +
	`set -- $(ls -lnLd -- "$f"); echo "S $5"; ` +
	`while read -r i o n s c; do ` +
	`if [ -n "$gnu" ]; then x=$( { dd if="$f" bs=%[2]d skip="$o" count="$n" iflag=skip_bytes,count_bytes 2>/dev/null || echo "haul-hash: dd failed" >&2; } | h ); ` +
	`else x=$( { dd if="$f" bs=%[1]d skip="$s" count="$c" 2>/dev/null || echo "haul-hash: dd failed" >&2; } | h ); fi; ` +
	`set -- $x; echo "P $i $1"; ` +
	`done; echo ` + hashFooter

// hashBlock is the dd block size for dd's without byte counts: the largest
// power of two up to 1 MiB that divides pieceSize.
func hashBlock(pieceSize int64) int64 {
	b := int64(1)
	for b < hashGNUBlock && pieceSize%(b*2) == 0 {
		b *= 2
	}
	return b
}

// hashCommand is the one command run for a HashPieces call, and the
// piece list fed to it on stdin.
func hashCommand(file string, size, pieceSize int64, pieces []int) (cmd string, stdin []byte) {
	bs := hashBlock(pieceSize)
	script := fmt.Sprintf(hashScript, bs, hashGNUBlock)
	cmd = "sh -c " + sshdial.ShellQuote(script) + " haul-hash " + sshdial.ShellQuote(file)
	var b bytes.Buffer
	for _, i := range pieces {
		off := int64(i) * pieceSize
		n := min(pieceSize, size-off)
		fmt.Fprintf(&b, "%d %d %d %d %d\n", i, off, n, off/bs, (n+bs-1)/bs)
	}
	return cmd, b.Bytes()
}

// HashPieces hashes the listed pieces of obj on the SSH server with dd and
// sha256sum (or shasum, sha256, openssl), in one command, so that repair
// moves only the pieces whose hash differs. It fails with ErrNoRemoteExec
// when the server runs no commands or lacks the tools, and with
// ErrChanged when the remote file is no longer obj.
func (s *sftpSource) HashPieces(ctx context.Context, obj source.Object, pieceSize int64, pieces []int) (map[int][]byte, error) {
	if pieceSize <= 0 {
		return nil, fmt.Errorf("%s: hash %s: piece size %d", s.display, obj.Name, pieceSize)
	}
	count := (obj.Size + pieceSize - 1) / pieceSize
	want := slices.Clone(pieces)
	slices.Sort(want)
	want = slices.Compact(want)
	for _, i := range want {
		if i < 0 || int64(i) >= count {
			return nil, fmt.Errorf("%s: hash %s: piece %d of %d", s.display, obj.Name, i, count)
		}
	}
	if len(want) == 0 {
		return map[int][]byte{}, nil
	}
	p := s.remotePath(obj.Name)
	check := func(c *sftpConn) error {
		fi, err := await(ctx, s.timeout, func() (os.FileInfo, error) { return c.sftp.Stat(p) }, nil)
		if err != nil {
			return err
		}
		if !sameVersion(fi, obj) {
			return fmt.Errorf("size %d, mtime %s now: %w", fi.Size(), fi.ModTime().UTC().Format("2006-01-02T15:04:05Z"), source.ErrChanged)
		}
		return nil
	}
	var sums map[int][]byte
	err := s.do(ctx, func(c *sftpConn) error {
		if err := check(c); err != nil {
			return err
		}
		var err error
		sums, err = s.runHash(ctx, c, p, obj, pieceSize, want)
		if err != nil {
			return err
		}
		return check(c)
	})
	if err != nil {
		return nil, s.wrap("hash "+obj.Name, err)
	}
	return sums, nil
}

// runHash runs the hash command in a session of c and parses its output.
func (s *sftpSource) runHash(ctx context.Context, c *sftpConn, file string, obj source.Object, pieceSize int64, pieces []int) (map[int][]byte, error) {
	cmd, stdin := hashCommand(file, obj.Size, pieceSize, pieces)
	sess, err := await(ctx, s.timeout, c.ssh.NewSession, func(s *ssh.Session) { _ = s.Close() })
	if err != nil {
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) {
			return nil, fmt.Errorf("the server opens no session for commands (%v): %w", err, ErrNoRemoteExec)
		}
		return nil, err
	}
	defer sess.Close()
	var heard atomic.Int64 // when the command last wrote, unix nanoseconds
	heard.Store(time.Now().UnixNano())
	stdout := &capBuffer{max: 4096 + 100*len(pieces), heard: &heard}
	stderr := &capBuffer{max: hashStderrMax, heard: &heard}
	sess.Stdin = bytes.NewReader(stdin)
	sess.Stdout = stdout
	sess.Stderr = stderr
	if _, err := await(ctx, s.timeout, func() (struct{}, error) { return struct{}{}, sess.Start(cmd) }, nil); err != nil {
		if c.dead() || errors.Is(err, errNoAnswer) || ctx.Err() != nil {
			return nil, err
		}
		// x/crypto's message repeats the whole command: leave it out.
		return nil, fmt.Errorf("the server refused to run a command: %w", ErrNoRemoteExec)
	}
	waited := make(chan error, 1)
	go func() { waited <- sess.Wait() }()
	// The script writes a line per piece: silence for longer than
	// hashing one piece may take is a server (or command) that stopped.
	silence := hashSilence(s.timeout, pieceSize)
	tick := time.NewTicker(min(silence/4, time.Second))
	defer tick.Stop()
	var werr error
wait:
	for {
		select {
		case werr = <-waited:
			break wait
		case <-ctx.Done():
			_ = sess.Close() // the remote side gets EOF and SIGPIPE
			return nil, ctx.Err()
		case <-tick.C:
			if time.Since(time.Unix(0, heard.Load())) > silence {
				_ = sess.Close()
				return nil, noAnswer("remote hashing printed nothing", silence)
			}
		}
	}
	detail := strings.TrimSpace(stderr.String())
	status := -1
	var exit *ssh.ExitError
	switch {
	case werr == nil:
		status = 0
	case errors.As(werr, &exit):
		status = exit.ExitStatus()
	case errors.Is(werr, io.EOF) || c.dead():
		return nil, fmt.Errorf("connection lost while hashing: %w", werr)
	}
	if stdout.overflow {
		return nil, fmt.Errorf("remote hashing wrote more than %d bytes", stdout.max)
	}
	res, size, complete, header := parseHashOutput(stdout.Bytes())
	if !header {
		// Whatever ran was not our script: an SFTP-only account, a
		// restricted shell, no sh.
		return nil, fmt.Errorf("the command did not run (exit status %d%s): %w", status, stderrNote(detail), ErrNoRemoteExec)
	}
	if status == 127 {
		return nil, fmt.Errorf("tools missing on the server%s: %w", stderrNote(detail), ErrNoRemoteExec)
	}
	if strings.Contains(detail, "haul-hash: dd failed") {
		return nil, fmt.Errorf("dd could not read %s on the server%s", file, stderrNote(detail))
	}
	if werr != nil {
		return nil, fmt.Errorf("remote hashing failed (exit status %d%s): %w", status, stderrNote(detail), werr)
	}
	if !complete {
		return nil, fmt.Errorf("remote hashing output ends early%s", stderrNote(detail))
	}
	if size != obj.Size {
		return nil, fmt.Errorf("the shell sees %s with %d bytes, SFTP saw %d: %w", file, size, obj.Size, source.ErrChanged)
	}
	if len(res) != len(pieces) {
		return nil, fmt.Errorf("remote hashing returned %d hashes for %d pieces", len(res), len(pieces))
	}
	for _, i := range pieces {
		if _, ok := res[i]; !ok {
			return nil, fmt.Errorf("remote hashing returned no hash for piece %d", i)
		}
	}
	return res, nil
}

func stderrNote(s string) string {
	if s == "" {
		return ""
	}
	return "; it said: " + strings.Join(strings.Fields(s), " ")
}

// parseHashOutput reads the script's output. Lines before the header
// (a chatty shell profile) are ignored; bad lines after it make the
// result incomplete.
func parseHashOutput(out []byte) (res map[int][]byte, size int64, complete, header bool) {
	res = map[int][]byte{}
	size = -1
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !header {
			header = line == hashHeader
			continue
		}
		f := strings.Fields(line)
		switch {
		case line == hashFooter:
			return res, size, size >= 0, true
		case len(f) == 2 && f[0] == "S":
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return res, size, false, true
			}
			size = n
		case len(f) == 3 && f[0] == "P":
			i, err := strconv.Atoi(f[1])
			sum, herr := hex.DecodeString(f[2])
			if err != nil || herr != nil || len(sum) != 32 {
				return res, size, false, true
			}
			if _, dup := res[i]; dup {
				return res, size, false, true
			}
			res[i] = sum
		default:
			return res, size, false, true
		}
	}
	return res, size, false, header
}

// hashFloorRate is the slowest a server's disk is taken to read while it
// hashes: a piece may take pieceSize/hashFloorRate on top of --timeout
// before the command's silence counts as a stall.
const hashFloorRate = 4 << 20

// hashSilence is how long the hash command may print nothing.
func hashSilence(timeout time.Duration, pieceSize int64) time.Duration {
	return timeout + time.Duration(float64(pieceSize)/hashFloorRate*float64(time.Second))
}

// capBuffer keeps the first max bytes written to it and notes overflow;
// heard, when set, gets the time of every write.
type capBuffer struct {
	bytes.Buffer
	max      int
	overflow bool
	heard    *atomic.Int64
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if b.heard != nil {
		b.heard.Store(time.Now().UnixNano())
	}
	if room := b.max - b.Len(); len(p) > room {
		b.overflow = true
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}
