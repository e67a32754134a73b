package chunk

import (
	"errors"
	"fmt"
	"os"
	"strconv"
)

// ErrCorruptState means DEST's state cannot be read: state.json is cut
// short, garbage or not a state, or state.log holds records that do not
// apply to it. A fetch or run sets such a file aside (Recover) and
// rebuilds the state from the parts on disk.
var ErrCorruptState = errors.New("haul state unreadable")

// CorruptStateError names the state file that cannot be read and says
// the way out.
type CorruptStateError struct {
	Dest string
	File string // "state.json" or "state.log"
	Err  error
}

func (e *CorruptStateError) Error() string {
	return fmt.Sprintf("%s/%s/%s is unreadable (%v); run haul fetch SOURCE %s (or haul run) with the set's source: it sets the file aside and rebuilds the state from the parts on disk, proving each before it counts",
		e.Dest, StateDir, e.File, e.Err, e.Dest)
}

// Is makes errors.Is(err, ErrCorruptState) true. Err is not unwrapped:
// a decoder's io.ErrUnexpectedEOF must not read as a network failure.
func (e *CorruptStateError) Is(target error) bool { return target == ErrCorruptState }

// Recover sets aside an unreadable state so that haul can go on: a bad
// state.json goes, with its log, to state.json.corrupt and
// state.log.corrupt, and the next Load says there is no state (the run
// rebuilds it from the parts on disk); a bad state.log alone goes to
// state.log.corrupt, and the snapshot stays (what the log added is
// checked again on disk). An earlier set-aside file is never replaced:
// the next free name is state.json.corrupt.1, .2, …. It returns the line
// that says what was done, "" when the state loads or there is none. The
// caller holds DEST's lock.
func Recover(dest string) (string, error) {
	_, err := load(dest)
	var ce *CorruptStateError
	if !errors.As(err, &ce) {
		return "", nil // readable, absent, or an error Recover cannot mend
	}
	sd, err := OpenStateDir(dest, false)
	if err != nil {
		return "", err
	}
	defer sd.Close()
	files := []string{"state.log"}
	if ce.File == "state.json" {
		files = []string{"state.json", "state.log"}
	}
	var moved []string
	for _, name := range files {
		if _, err := sd.Lstat(name); errors.Is(err, os.ErrNotExist) {
			continue
		}
		to, err := freeName(sd.Lstat, name+".corrupt")
		if err != nil {
			return "", err
		}
		if err := sd.Rename(name, to); err != nil {
			return "", fmt.Errorf("set aside %s: %w", ce.File, err)
		}
		moved = append(moved, to)
	}
	if err := sd.Sync(); err != nil {
		return "", fmt.Errorf("set aside %s: %w", ce.File, err)
	}
	what := "rebuilding it from the parts on disk (each is proven again before it counts)"
	if ce.File == "state.log" {
		what = "going on from state.json (the parts on disk are checked again)"
	}
	return fmt.Sprintf("%s was unreadable (%v); set aside as %s, %s", ce.File, ce.Err, moved[0], what), nil
}

// freeName returns base, or base.1, base.2, … : the first that lstat
// says does not exist.
func freeName(lstat func(string) (os.FileInfo, error), base string) (string, error) {
	for i := 0; i < 10000; i++ {
		name := base
		if i > 0 {
			name = base + "." + strconv.Itoa(i)
		}
		if _, err := lstat(name); errors.Is(err, os.ErrNotExist) {
			return name, nil
		} else if err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("%s: too many set-aside state files; remove old ones", base)
}

// validate refuses a snapshot that parsed but is not a state haul wrote:
// parts without a plain name, named twice, of negative size or unknown
// status would otherwise steer a run (a name with a slash would even
// point outside DEST).
func (s *State) validate() error {
	if s.Version < 1 {
		return errors.New("no version: not a haul state")
	}
	if s.PieceSize < 0 {
		return fmt.Errorf("piece size %d", s.PieceSize)
	}
	seen := make(map[string]bool, len(s.Parts))
	for i, p := range s.Parts {
		switch {
		case p == nil || p.Name == "" || p.Name == "." || p.Name == ".." || containsSlash(p.Name):
			return fmt.Errorf("part %d has no plain name", i+1)
		case seen[p.Name]:
			return fmt.Errorf("part %s is listed twice", p.Name)
		case p.Size < 0:
			return fmt.Errorf("part %s has size %d", p.Name, p.Size)
		}
		switch p.Status {
		case Pending, Partial, Verified, Unverified, Broken, Missing:
		default:
			return fmt.Errorf("part %s has status %q", p.Name, p.Status)
		}
		seen[p.Name] = true
	}
	return nil
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' || s[i] == '\\' || s[i] == 0 {
			return true
		}
	}
	return false
}
