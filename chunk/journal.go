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
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoJournal means DEST has no journal.jsonl: no run was recorded there.
var ErrNoJournal = errors.New("no haul journal")

// Journal event kinds (Event.Event), the one vocabulary of events: the
// engine reports its events (fetch.Event.Kind) with these names, and the
// job writes them here as they come. The names are part of the file format.
const (
	EventRunStart       = "run_start"       // a command began; carries PID
	EventRunEnd         = "run_end"         // it ended: ExitCode, Bytes pulled in the run, Seconds
	EventStepStart      = "step_start"      // Step began (haul run: fetch, verify, repair, restore)
	EventStepEnd        = "step_end"        // Step ended: Seconds, Bytes pulled by it, ExitCode if it failed
	EventPartFetched    = "part_fetched"    // Part is complete on disk; Bytes pulled for it in this run
	EventPartVerified   = "part_verified"   // Part proven: VerifiedBy
	EventPartUnverified = "part_unverified" // Part complete, but no reference or structural check applies
	EventPartMissing    = "part_missing"    // Part named by a reference or the archive but not at the source
	EventPartBroken     = "part_broken"     // Part failed a reference: Message says which and where
	EventPartRepaired   = "part_repaired"   // Part replaced and proven: From, Bytes pulled
	EventPartChanged    = "part_changed"    // Part changed at the source and restarts from zero
	EventRestoreStart   = "restore_start"   // unpacking began
	EventRestoreEnd     = "restore_end"     // unpacking ended: Seconds, Bytes written
	EventDeadline       = "deadline"        // --until/--max-time reached: Message
	EventWarning        = "warning"         // anything an operator should read later: Message
	EventRetry          = "retry"           // a piece, a part or a listing is tried again: Message says why
	EventProgress       = "progress"        // optional checkpoint: Bytes pulled so far in this run
	EventSourceBytes    = "source_bytes"    // at a fetch or repair step's end: From delivered Bytes of parts in it (one per source; they sum to the step's bytes)
	EventDBStart        = "db_start"        // the database import began: From is the database URL (no password), Bytes the offset it resumes at, Message the dump
	EventDBEnd          = "db_end"          // it ended: Bytes of the dump and Statements run in this run, Seconds, Message (summary or error)
	EventDBSkipped      = "db_skipped"      // haul run found the database restore done: From, Message
	EventCloudStart     = "cloud_start"     // the Bitrix cloud files step began: Message is the list's path
	EventCloudEnd       = "cloud_end"       // it ended: Bytes pulled in this run, Seconds, Files (the counts), Message (summary or error)
)

// Steps of haul run (Event.Step).
const (
	StepFetch   = "fetch"
	StepVerify  = "verify"
	StepRepair  = "repair"
	StepRestore = "restore"
	StepDB      = "db"    // the Bitrix database import (--db)
	StepCloud   = "cloud" // the Bitrix cloud files (bitrix/restore_cloud.txt) downloaded into upload/
)

// Event is one line of DEST/.haul/journal.jsonl. Field names are stable;
// fields that do not apply are left out.
type Event struct {
	// Time is when it happened, written as RFC 3339 with nanoseconds, UTC.
	Time time.Time `json:"time"`
	// Run identifies the run (Journal.RunID) the event belongs to.
	Run string `json:"run"`
	// Event is the kind, one of the Event* constants.
	Event string `json:"event"`
	// Cmd is the command of the run: fetch, verify, repair, restore, run, demo.
	Cmd string `json:"cmd,omitempty"`
	// Step is the step of haul run the event belongs to (Step* constants).
	Step string `json:"step,omitempty"`
	// Part is the part's name.
	Part string `json:"part,omitempty"`
	// Bytes is what moved over the link for this event's scope in this
	// run (a run, a step, a part), or what restore wrote.
	Bytes int64 `json:"bytes,omitempty"`
	// Seconds is the duration of a run, step or restore.
	Seconds float64 `json:"seconds,omitempty"`
	// ExitCode is the run's exit code on run_end (and a failed step's).
	// It is a pointer because 0 is a value worth writing: new(0).
	ExitCode *int `json:"exit_code,omitempty"`
	// Message is a human sentence: an error, a deadline, a warning.
	Message string `json:"message,omitempty"`
	// VerifiedBy names the references that proved a part ("sha256:SHA256SUMS").
	VerifiedBy []string `json:"verified_by,omitempty"`
	// From names where a repair took a part from (no secrets).
	From string `json:"from,omitempty"`
	// Statements is how many SQL statements a database import ran.
	Statements int64 `json:"statements,omitempty"`
	// PID is the process id, on run_start.
	PID int `json:"pid,omitempty"`
	// Files counts the files of the Bitrix cloud list, on cloud_end.
	Files *FileCounts `json:"files,omitempty"`
}

// FileCounts are the files of a Bitrix cloud list (cloud_end): Listed is
// every line; each is Fetched by the run, already Present with its listed
// size, Skipped (caches and temporary files, as restore.php does) or
// Missing at every CDN host.
type FileCounts struct {
	Listed  int `json:"listed"`
	Fetched int `json:"fetched"`
	Present int `json:"present"`
	Skipped int `json:"skipped"`
	Missing int `json:"missing"`
}

// JournalPath returns DEST/.haul/journal.jsonl.
func JournalPath(dest string) string { return filepath.Join(dest, StateDir, "journal.jsonl") }

// Journal appends the events of one run to DEST/.haul/journal.jsonl. Each
// event is one write of one line to a file opened with O_APPEND, so a kill
// can at worst tear the last line, which OpenJournal and ReadJournal cope
// with. Events that a report counts on are fsynced: those of the run and
// its steps at once, those about one part (Event.Part set) within
// groupSync of being written, by one fsync for all written meanwhile — an
// fsync for each of 100,000 parts cost more than their data; a power loss
// may lose the last such interval of part events, never the state's
// records. step_start, progress and warning are not fsynced. It is safe
// for concurrent use; a nil *Journal discards events.
type Journal struct {
	run   string
	cmd   string
	start time.Time
	now   func() time.Time

	// syncMu is held across a group fsync, before mu: Close waits for it.
	syncMu  sync.Mutex
	mu      sync.Mutex
	f       *os.File
	pending *time.Timer // the group fsync to come, nil when none is due
}

// groupSync is how long an event about one part may wait for its fsync.
const groupSync = 100 * time.Millisecond

// runSeq tells apart runs started in one process in the same millisecond
// (haul demo runs several commands in-process).
var runSeq atomic.Int64

// OpenJournal opens DEST/.haul/journal.jsonl for appending, creating .haul
// (0700) and the file (0600) as needed, for a run of command cmd. If the
// file ends in a torn line, a newline is added first so the torn line does
// not swallow the next event.
func OpenJournal(dest, cmd string) (*Journal, error) {
	sd, err := OpenStateDir(dest, true)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	defer sd.Close()
	path := JournalPath(dest)
	// A journal that is a link or not a plain file is refused: appending
	// to it would append to what it points to.
	f, err := sd.OpenFile("journal.jsonl", os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if err := terminateTornLine(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	start := time.Now()
	pid := os.Getpid()
	id := start.UTC().Format("20060102T150405.000Z") + "-" + strconv.Itoa(pid)
	if seq := runSeq.Add(1); seq > 1 {
		id += "-" + strconv.FormatInt(seq, 10)
	}
	return &Journal{run: id, cmd: cmd, start: start, now: time.Now, f: f}, nil
}

// terminateTornLine appends "\n" if f is not empty and does not end in one.
func terminateTornLine(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() == 0 {
		return nil
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, fi.Size()-1); err != nil {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	_, err = f.Write([]byte{'\n'})
	return err
}

// RunID returns the id of this run: its start time (UTC) and the PID, e.g.
// "20261120T021500.123Z-4242".
func (j *Journal) RunID() string {
	if j == nil {
		return ""
	}
	return j.run
}

// Log appends e. Time (now), Run and Cmd are filled in when empty, and PID
// on run_start.
func (j *Journal) Log(e Event) error {
	if j == nil {
		return nil
	}
	if e.Time.IsZero() {
		e.Time = j.now()
	}
	e.Time = e.Time.UTC()
	if e.Run == "" {
		e.Run = j.run
	}
	if e.Cmd == "" {
		e.Cmd = j.cmd
	}
	if e.Event == EventRunStart && e.PID == 0 {
		e.PID = os.Getpid()
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("journal %s: %w", e.Event, err)
	}
	line = append(line, '\n')

	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return fmt.Errorf("journal %s: %w", e.Event, os.ErrClosed)
	}
	if _, err := j.f.Write(line); err != nil {
		return fmt.Errorf("journal %s: %w", e.Event, err)
	}
	switch {
	case e.Event == EventStepStart || e.Event == EventProgress || e.Event == EventWarning:
	case e.Part != "":
		if j.pending == nil {
			j.pending = time.AfterFunc(groupSync, j.groupSync)
		}
	default:
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("journal %s: %w", e.Event, err)
		}
	}
	return nil
}

// groupSync fsyncs the events about parts written since the last.
func (j *Journal) groupSync() {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	f := j.f
	j.pending = nil
	j.mu.Unlock()
	if f != nil {
		_ = f.Sync() // Close syncs again and reports a failure
	}
}

// Start logs run_start with an optional message (e.g. the sources, with no
// secret in them).
func (j *Journal) Start(message string) error {
	if j == nil {
		return nil
	}
	return j.Log(Event{Time: j.start, Event: EventRunStart, Message: message})
}

// End logs run_end with the exit code, the bytes pulled in this run and the
// run's duration since OpenJournal.
func (j *Journal) End(exitCode int, bytes int64, message string) error {
	if j == nil {
		return nil
	}
	now := j.now()
	return j.Log(Event{
		Time:     now,
		Event:    EventRunEnd,
		ExitCode: &exitCode,
		Bytes:    bytes,
		Seconds:  now.Sub(j.start).Seconds(),
		Message:  message,
	})
}

// Close flushes and closes the journal file. Closing twice is harmless.
func (j *Journal) Close() error {
	if j == nil {
		return nil
	}
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	if j.pending != nil {
		j.pending.Stop()
		j.pending = nil
	}
	serr := j.f.Sync()
	cerr := j.f.Close()
	j.f = nil
	if serr != nil {
		return fmt.Errorf("close journal: %w", serr)
	}
	if cerr != nil {
		return fmt.Errorf("close journal: %w", cerr)
	}
	return nil
}

// ReadJournal returns every event in DEST/.haul/journal.jsonl in file order.
// Lines that are not a complete event (a line torn by a kill mid-write, or
// zeros left by a crash) are skipped, not fatal. A missing file gives an
// error wrapping ErrNoJournal.
func ReadJournal(dest string) ([]Event, error) {
	var events []Event
	err := ScanJournal(dest, func(e Event) { events = append(events, e) })
	return events, err
}

// ScanJournal calls fn with every event of DEST/.haul/journal.jsonl in
// file order, holding none of them: ReadJournal without the memory of a
// journal of 100,000 parts. Errors are ReadJournal's.
func ScanJournal(dest string, fn func(Event)) error {
	path := JournalPath(dest)
	var f *os.File
	sd, err := OpenStateDir(dest, false)
	if err == nil {
		f, err = sd.OpenFile("journal.jsonl", os.O_RDONLY, 0)
		sd.Close()
	}
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w (no run recorded yet)", dest, ErrNoJournal)
	}
	if err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	defer f.Close()
	if err := scanEvents(f, fn); err != nil {
		return fmt.Errorf("read journal %s: %w", path, err)
	}
	return nil
}

// readEvents parses JSON lines from r, skipping lines that are not events.
func readEvents(r io.Reader) ([]Event, error) {
	var events []Event
	err := scanEvents(r, func(e Event) { events = append(events, e) })
	return events, err
}

// scanEvents calls fn with each JSON line of r that is an event.
func scanEvents(r io.Reader, fn func(Event)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimSpace(bytes.Trim(line, "\x00"))
			var e Event
			if len(line) > 0 && json.Unmarshal(line, &e) == nil && e.Event != "" && !e.Time.IsZero() {
				fn(e)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
