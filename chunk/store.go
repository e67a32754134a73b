package chunk

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// StateDir is haul's own directory inside DEST.
const StateDir = ".haul"

// ErrNoState means DEST has no state.json: nothing was fetched there.
var ErrNoState = errors.New("no haul state")

// StatePath returns DEST/.haul/state.json.
func StatePath(dest string) string { return filepath.Join(dest, StateDir, "state.json") }

// LogPath returns DEST/.haul/state.log.
func LogPath(dest string) string { return filepath.Join(dest, StateDir, "state.log") }

// Load reads DEST/.haul/state.json and applies DEST/.haul/state.log to
// it. A missing state.json gives ErrNoState.
func Load(dest string) (*State, error) {
	return load(dest)
}

// Save writes s as a new snapshot and starts an empty log for it
// (Store.Snapshot).
func Save(dest string, s *State) error {
	st := &Store{dest: dest}
	err := st.Snapshot(s)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return err
}

// Store keeps the state of one DEST durable while a run changes it: a
// snapshot (state.json) and a log of the changes since (state.log). A
// commit appends its records and fsyncs once, whatever the size of the
// set; when the log has grown past the snapshot, the caller writes a new
// snapshot, which starts an empty log. Every step leaves a state that
// loads: the snapshot is replaced atomically, then the log, and a log of
// another generation than the snapshot's is ignored.
type Store struct {
	dest string
	mu   sync.Mutex
	log  *os.File
	size int64 // bytes in the log
	snap int64 // bytes of the last snapshot
	gen  uint64
	buf  []byte
	// Barrier, when set, runs before a snapshot or appended records
	// become durable, after they were encoded: it makes durable what
	// they may rely on beyond the part files (a fetch: the renames of
	// the parts it proved, which DEST's fsync per part made too slow).
	Barrier func() error
}

// NewStore returns the store of DEST. Nothing is appended before the
// first Snapshot.
func NewStore(dest string) *Store { return &Store{dest: dest} }

// Snapshot writes s durably as state.json (generation s.Gen+1, which it
// sets) and replaces state.log with an empty log of that generation.
func (st *Store) Snapshot(s *State) error { return st.SnapshotLocked(s, nil) }

// SnapshotLocked is Snapshot of a state that others change under mu: mu
// is held while the head and while each part is encoded, not while the
// file is written, and no copy of the state is made. A change made
// meanwhile must reach the log after the snapshot (the caller appends it
// after this returns), or be in the part as encoded.
func (st *Store) SnapshotLocked(s *State, mu sync.Locker) error {
	if mu == nil {
		mu = noLock{}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	mu.Lock()
	s.Version = StateVersion
	s.Updated = time.Now().UTC()
	s.Gen = max(s.Gen, st.gen) + 1
	gen := s.Gen
	mu.Unlock()
	sd, err := OpenStateDir(st.dest, true)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	defer sd.Close()
	var size int64
	err = sd.WriteWith("state.json", 0o600, func(w io.Writer) error {
		cw := &countWriter{w: w}
		err := writeSnapshot(cw, s, mu)
		size = cw.n
		if err == nil {
			err = st.barrier()
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("save state %s: %w", StatePath(st.dest), err)
	}
	head, err := appendFrame(nil, &Record{Kind: recHead, Gen: gen})
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := sd.WriteFile("state.log", head, 0o600); err != nil {
		return fmt.Errorf("save state %s: %w", LogPath(st.dest), err)
	}
	if st.log != nil {
		st.log.Close() // the old log: nothing unsynced is in it
		st.log = nil
	}
	f, err := sd.OpenFile("state.log", os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	st.log, st.size, st.snap, st.gen = f, int64(len(head)), size, gen
	return nil
}

// Append writes recs at the end of the log in one write and fsyncs it.
func (st *Store) Append(recs ...Record) error {
	if len(recs) == 0 {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.log == nil {
		return fmt.Errorf("save state %s: no snapshot written yet", LogPath(st.dest))
	}
	buf := st.buf[:0]
	for i := range recs {
		var err error
		if buf, err = appendFrame(buf, &recs[i]); err != nil {
			return fmt.Errorf("save state: %w", err)
		}
	}
	st.buf = buf
	if len(buf) > 1<<20 {
		st.buf = nil // do not keep a large part record's buffer
	}
	if err := st.barrier(); err != nil {
		return err
	}
	if _, err := st.log.WriteAt(buf, st.size); err != nil {
		return fmt.Errorf("save state %s: %w", LogPath(st.dest), err)
	}
	if err := st.log.Sync(); err != nil {
		return fmt.Errorf("save state %s: %w", LogPath(st.dest), err)
	}
	st.size += int64(len(buf))
	return nil
}

func (st *Store) barrier() error {
	if st.Barrier == nil {
		return nil
	}
	if err := st.Barrier(); err != nil {
		return fmt.Errorf("sync %s: %w", st.dest, err)
	}
	return nil
}

// minCompact is the log size below which a log is never compacted: a
// snapshot of a small set costs more fsyncs than appending to it.
const minCompact = 256 << 10

// Full reports whether the log has outgrown the snapshot, so that the
// next Snapshot costs less than reading the log would on the next load.
func (st *Store) Full() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.log != nil && st.size > max(st.snap, minCompact)
}

// Close closes the log. Everything appended is durable already.
func (st *Store) Close() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.log == nil {
		return nil
	}
	err := st.log.Close()
	st.log = nil
	return err
}

// load reads the snapshot and applies the log of its generation.
func load(dest string) (*State, error) {
	sd, err := OpenStateDir(dest, false)
	var f *os.File
	if err == nil {
		defer sd.Close()
		f, err = sd.OpenFile("state.json", os.O_RDONLY, 0)
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (run haul fetch first)", dest, ErrNoState)
	}
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	defer f.Close()
	er := &errReader{r: f}
	s, err := readSnapshot(bufio.NewReaderSize(er, 256<<10))
	if er.err != nil {
		return nil, fmt.Errorf("load state %s: %w", StatePath(dest), er.err) // the disk, not the file
	}
	if err == nil && s.Version > StateVersion {
		return nil, fmt.Errorf("load state %s: version %d, this haul reads 1 and %d (a newer haul wrote it: use that one)", StatePath(dest), s.Version, StateVersion)
	}
	if err == nil {
		err = s.validate()
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // "EOF" alone says nothing to a reader
		}
		return nil, &CorruptStateError{Dest: dest, File: "state.json", Err: err}
	}
	lf, err := sd.OpenFile("state.log", os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	defer lf.Close()
	if _, err := replay(lf, s); err != nil {
		return nil, &CorruptStateError{Dest: dest, File: "state.log", Err: err}
	}
	return s, nil
}

// writeSnapshot writes s as JSON with one part a line, without holding
// the whole text in memory.
func writeSnapshot(w io.Writer, s *State, mu sync.Locker) error {
	mu.Lock()
	head := *s
	head.Parts = []*Part{}
	b, err := json.Marshal(&head)
	parts := s.Parts
	mu.Unlock()
	if err != nil {
		return err
	}
	// "parts" is State's last field: its value is written part by part.
	tail := []byte(`"parts":[]}`)
	if !bytes.HasSuffix(b, tail) {
		return errors.New("state.json: parts is not the last field")
	}
	if _, err := w.Write(b[:len(b)-2]); err != nil {
		return err
	}
	for i, p := range parts {
		sep := ",\n"
		if i == 0 {
			sep = "\n"
		}
		if _, err := io.WriteString(w, sep); err != nil {
			return err
		}
		mu.Lock()
		pb, err := json.Marshal(p)
		mu.Unlock()
		if err != nil {
			return err
		}
		if _, err := w.Write(pb); err != nil {
			return err
		}
	}
	_, err = io.WriteString(w, "\n]}\n")
	return err
}

// readSnapshot decodes state.json part by part, so that a large set is
// never held as text and structs at once.
func readSnapshot(r io.Reader) (*State, error) {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	rest := map[string]json.RawMessage{}
	var parts []*Part
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		if key != "parts" {
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return nil, err
			}
			rest[key] = v
			continue
		}
		if tok, err := dec.Token(); err != nil {
			return nil, err
		} else if tok == nil {
			continue // "parts": null
		} else if d, ok := tok.(json.Delim); !ok || d != '[' {
			return nil, errors.New("parts is not a list")
		}
		in := interner{}
		for dec.More() {
			p := new(Part)
			if err := dec.Decode(p); err != nil {
				return nil, err
			}
			in.part(p)
			parts = append(parts, p)
		}
		if err := expectDelim(dec, ']'); err != nil {
			return nil, err
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, err
	}
	b, err := json.Marshal(rest)
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	s.Parts = parts
	return &s, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("unexpected %v, want %v", tok, want)
	}
	return nil
}

// errReader remembers a read error other than the end of the file, so
// that a failing disk is not taken for a corrupt state.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type noLock struct{}

func (noLock) Lock()   {}
func (noLock) Unlock() {}

// interner makes the strings that repeat from part to part (statuses,
// algorithms, origins, labels) share one copy: at 100,000 parts they
// would otherwise cost some 10 MB.
type interner map[string]string

func (in interner) str(s *string) {
	if v, ok := in[*s]; ok {
		*s = v
	} else if len(in) < 1024 {
		in[*s] = *s
	}
}

func (in interner) part(p *Part) {
	in.str(&p.Status)
	in.str(&p.PieceHash)
	p.VerifiedBy = Labels(p.VerifiedBy)
}
