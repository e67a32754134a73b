package chunk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ErrLocked means another haul process holds DEST/.haul/lock. The run should
// stop at once and exit 75 (try again later).
var ErrLocked = errors.New("locked by another haul run")

// LockedError says who holds the lock. It wraps ErrLocked.
type LockedError struct {
	// Path is DEST/.haul/lock.
	Path string
	// PID, Since and Cmd describe the holder as it wrote itself into the
	// file; they are zero if it had not written yet.
	PID   int
	Since time.Time
	Cmd   string
}

func (e *LockedError) Error() string {
	var who []string
	if e.PID > 0 {
		who = append(who, fmt.Sprintf("pid %d", e.PID))
	}
	if e.Cmd != "" {
		who = append(who, "haul "+e.Cmd)
	}
	if !e.Since.IsZero() {
		since := e.Since.Local()
		layout := "15:04"
		if since.Format(time.DateOnly) != time.Now().Format(time.DateOnly) {
			layout = "Jan 2 15:04"
		}
		who = append(who, "since "+since.Format(layout))
	}
	holder := "another haul run"
	if len(who) > 0 {
		holder += " (" + strings.Join(who, ", ") + ")"
	}
	return holder + " holds " + e.Path + "; this run exits 75 — try again later"
}

// Unwrap makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Unwrap() error { return ErrLocked }

// LockPath returns DEST/.haul/lock.
func LockPath(dest string) string { return filepath.Join(dest, StateDir, "lock") }

// lockInfo is what the holder writes into the lock file.
type lockInfo struct {
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
	Cmd   string    `json:"cmd,omitempty"`
}

// LockFile is a held DEST/.haul/lock. The lock is an flock(2) on the open
// file, so it dies with the process: a crashed or killed run leaves no stale
// lock, and the file itself is never deleted (deleting it would let two
// runs lock two different files).
type LockFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// LockFor takes DEST/.haul/lock for this process without waiting, creating
// .haul (0700) as needed, and records the PID, the time and cmd (when it is
// a plain command word: never a path or URL, which may hold a secret) in the
// file for whoever finds it held. If another process holds it, the error is a
// *LockedError that names the holder and wraps ErrLocked.
//
// The file is opened close-on-exec, so a child process (ssh) never inherits
// the lock.
func LockFor(dest, cmd string) (*LockFile, error) {
	path := LockPath(dest)
	sd, err := OpenStateDir(dest, true)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	defer sd.Close()
	// A lock that is a link or not a plain file is refused, never
	// written through: truncating it would truncate what it points to.
	f, err := sd.OpenFile("lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if busy, err := tryLockFile(f); busy || err != nil {
		f.Close()
		if busy {
			return nil, holder(path, func() ([]byte, error) { return sd.ReadFile("lock") })
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	info, err := json.Marshal(lockInfo{PID: os.Getpid(), Since: time.Now().UTC(), Cmd: plainCommand(cmd)})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	info = append(info, '\n')
	if err := writeLockInfo(f, info); err != nil {
		f.Close() // releases the lock too
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &LockFile{path: path, f: f}, nil
}

func writeLockInfo(f *os.File, info []byte) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(info, 0); err != nil {
		return err
	}
	// No fsync: the content only matters while this process lives.
	return nil
}

// holder reads who holds path into a *LockedError. The holder writes its
// details right after it gets the lock; if they are not there yet, retry a
// few times briefly.
func holder(path string, read func() ([]byte, error)) error {
	e := &LockedError{Path: path}
	for try := 0; try < 5; try++ {
		data, err := read()
		var info lockInfo
		if err == nil && json.Unmarshal(bytes.TrimSpace(data), &info) == nil && info.PID > 0 {
			e.PID, e.Since, e.Cmd = info.PID, info.Since, info.Cmd
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return e
}

// Unlock releases the lock. The file stays, emptied of the holder's details.
// Unlocking twice, or a nil LockFile, is harmless.
func (l *LockFile) Unlock() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	terr := l.f.Truncate(0) // while still held: the next holder rewrites it anyway
	uerr := unlockFile(l.f)
	cerr := l.f.Close()
	l.f = nil
	if err := errors.Join(terr, uerr, cerr); err != nil {
		return fmt.Errorf("unlock %s: %w", l.path, err)
	}
	return nil
}

// Path returns the lock file's path.
func (l *LockFile) Path() string { return l.path }

// plainCommand returns cmd when it is a plain command word, else "" (a
// flag, a path or a URL, which may hold a secret, is never recorded).
func plainCommand(a string) string {
	if a == "" || len(a) > 16 {
		return ""
	}
	for _, r := range a {
		if (r < 'a' || r > 'z') && r != '-' {
			return ""
		}
	}
	if a[0] == '-' {
		return ""
	}
	return a
}
