package bitrixdb

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// maxSession caps the session statements kept for replay on resume (a
// Bitrix dump has one: SET NAMES).
const maxSession = 32

// importer runs the statements of one dump on one session.
type importer struct {
	s        *session
	dump     *Dump
	st       *state
	stateDir string
	every    time.Duration
	prog     progress
	keyedTab map[string]bool

	statements int64     // run so far, including those after the last save
	lastSave   time.Time // of the state file
	safeOff    int64     // the last offset a rerun may start from
	safeStmts  int64
	runStart   time.Time
	elapsed0   time.Duration
}

// prescan finds the largest statement from off on without a database:
// in a Bitrix dump a quoted value never holds a raw newline, so every
// line ending in ';' ends a statement and the distance between such lines
// is the statement's size (its leading comment lines not counted). It
// reads at disk speed, so a statement too large for the server is named
// before anything is imported.
func prescan(ctx context.Context, d *Dump, off int64) (size, at int64, err error) {
	r, err := openAt(d.Parts, off)
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	br := bufio.NewReaderSize(r, 4<<20)
	var cur, start int64
	pos := off
	lineStart := true
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
		line, err := br.ReadSlice('\n')
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			return 0, 0, err
		}
		comment := lineStart && cur == 0 && (bytes.HasPrefix(line, []byte("--")) || len(bytes.TrimSpace(line)) == 0)
		if !comment {
			if cur == 0 {
				start = pos
			}
			cur += int64(len(line))
		}
		pos += int64(len(line))
		complete := err == nil
		lineStart = complete
		if complete && (bytes.HasSuffix(line, []byte(";\n")) || bytes.HasSuffix(line, []byte(";\r\n"))) {
			if cur > size {
				size, at = cur, start
			}
			cur = 0
		}
		if err == io.EOF {
			if cur > size {
				size, at = cur, start
			}
			return size, at, nil
		}
	}
}

// fits reports whether a statement of n bytes passes max_allowed_packet:
// the driver adds a command byte and keeps one byte of margin.
func (im *importer) fits(n int64) bool { return n+2 <= im.s.maxPacket }

func (im *importer) packetError(off int64, table string, size int64) *PacketError {
	part, in := im.dump.Locate(off)
	return &PacketError{Part: part, Offset: in, Table: table, Size: size, Max: im.s.maxPacket}
}

// run imports from the state's offset to the end of the dump.
func (im *importer) run(ctx context.Context) error {
	r, err := openAt(im.dump.Parts, im.st.Offset)
	if err != nil {
		return err
	}
	defer r.Close()
	sc := startReadAhead(newScanner(r, im.st.Offset, int(im.s.maxPacket)))
	defer sc.close() // before r.Close: the goroutine reads r
	im.statements = im.st.Statements
	im.safeOff, im.safeStmts = im.st.Offset, im.st.Statements
	im.lastSave = time.Now()
	im.runStart = time.Now()
	im.elapsed0 = im.st.Elapsed
	im.keyedTab = map[string]bool{}
	im.prog.start(im.dump.Size(), im.st.Offset)
	for {
		if err := ctx.Err(); err != nil {
			if serr := im.save(); serr != nil {
				return serr
			}
			part, in := im.dump.Locate(im.safeOff)
			return fmt.Errorf("bitrixdb: import stopped at byte %d of %s (saved; run again to continue): %w", in, part, err)
		}
		s, err := sc.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			_ = im.save()
			if errors.Is(err, errTruncated) {
				part, in := im.dump.Locate(s.start)
				return fmt.Errorf("bitrixdb: %s at byte %d: %w: %w", part, in, ErrDumpFormat, err)
			}
			return fmt.Errorf("bitrixdb: read the dump: %w", err)
		}
		k, name := classify(s.text)
		if s.tooLarge || !im.fits(s.size) {
			_ = im.save()
			return im.packetError(s.start, name, s.size)
		}
		if err := im.execute(ctx, s, k, name); err != nil {
			if serr := im.save(); serr != nil {
				return errors.Join(err, serr)
			}
			return err
		}
		im.statements++
		safe, err := im.safeAfter(ctx, k, name)
		if err != nil {
			_ = im.save()
			return err
		}
		if safe {
			im.safeOff, im.safeStmts = s.end, im.statements
			if time.Since(im.lastSave) >= im.every {
				if err := im.save(); err != nil {
					return err
				}
			}
		}
		im.prog.advance(s.end, im.statements)
	}
	im.safeOff, im.safeStmts = im.dump.Size(), im.statements
	im.prog.advance(im.safeOff, im.statements) // the closing comment counts as done too
	return nil
}

// save records the last safe offset durably.
func (im *importer) save() error {
	im.st.Offset, im.st.Statements = im.safeOff, im.safeStmts
	im.st.Elapsed = im.elapsed0 + time.Since(im.runStart)
	im.lastSave = time.Now()
	return saveState(im.stateDir, im.st)
}

// safeAfter says whether a rerun may start right after a statement of
// this kind: everything from there on can run a second time and leave
// the same database. Not between DROP and CREATE (CREATE would fail on
// the table it made), and not inside the rows of a table without a key
// (its rows would be doubled): a rerun then starts before that table's
// DROP and builds it again.
func (im *importer) safeAfter(ctx context.Context, k kind, table string) (bool, error) {
	switch k {
	case kDropTable, kDropView:
		return false, nil
	case kCreateTable, kInsert:
		if table == "" {
			return false, nil
		}
		keyed, ok := im.keyedTab[table]
		if !ok {
			var err error
			if keyed, err = im.s.keyed(ctx, table); err != nil {
				if connLost(err) {
					return false, fmt.Errorf("bitrixdb: %s: %w: %w", im.s.target, ErrConnLost, err)
				}
				return false, fmt.Errorf("bitrixdb: read the keys of table %s: %w", table, err)
			}
			im.keyedTab[table] = keyed
		}
		return keyed, nil
	}
	return true, nil
}

// execute runs one statement whole, with restore.php's fallbacks: rows
// one by one past duplicate keys, CREATE TABLE without its FULLTEXT keys
// when the server refuses them, and (beyond restore.php) a view without
// its DEFINER when the user may not set it.
func (im *importer) execute(ctx context.Context, s statement, k kind, name string) error {
	ctx = context.WithoutCancel(ctx) // a started statement runs to its end; ctx is checked between them
	text := s.text
	ft := k == kCreateTable && hasFullText(text)
	if ft && im.st.FullText == "dropped" {
		text, _ = stripFullText(text)
	}
	err := im.s.exec(ctx, string(text))
	if err == nil {
		if k == kSet && len(im.st.Session) < maxSession && !slices.Contains(im.st.Session, string(text)) {
			im.st.Session = append(im.st.Session, string(text))
		}
		if ft && im.st.FullText == "" {
			im.st.FullText = "ok"
		}
		return nil
	}
	if connLost(err) {
		return fmt.Errorf("bitrixdb: %s: %w (the import continues here on the next run): %w", im.s.target, ErrConnLost, err)
	}
	me := mysqlErr(err)
	switch {
	case me != nil && me.Number == erDupEntry && k == kInsert:
		return im.insertRows(ctx, s, text)
	case ft && im.st.FullText == "":
		stripped, _ := stripFullText(text)
		if err2 := im.s.exec(ctx, string(stripped)); err2 == nil {
			im.st.FullText = "dropped"
			im.prog.warn(fmt.Sprintf("the server refused the FULLTEXT index of table %s (%v): tables are created without FULLTEXT keys, and search's ~ft_ options are reset, as restore.php does", name, err))
			return nil
		}
	case me != nil && me.Number == erSpecificAccess && k == kCreateView:
		if nodef, ok := stripDefiner(text); ok {
			if err2 := im.s.exec(ctx, string(nodef)); err2 == nil {
				im.st.Definers = append(im.st.Definers, name)
				im.prog.warn(fmt.Sprintf("view %s: this user may not create it with the dump's DEFINER (%v); it was created with the importing user as definer", name, err))
				return nil
			}
		}
	}
	return im.statementError(s, err)
}

func (im *importer) statementError(s statement, err error) error {
	part, in := im.dump.Locate(s.start)
	head := s.text
	if len(head) > 200 {
		head = head[:200]
	}
	return &StatementError{Part: part, Offset: in, Head: string(head) + "…", Err: err}
}

// insertRows is the duplicate-key path: the INSERT's rows one at a time,
// duplicates skipped, as restore.php does, but split with the lexer so
// that a value holding "),(" stays whole.
func (im *importer) insertRows(ctx context.Context, s statement, text []byte) error {
	prefix, rows, ok := splitInsert(text)
	if !ok {
		return im.statementError(s, errors.New("duplicate key, and the INSERT's rows cannot be told apart to skip it"))
	}
	var q []byte
	for _, row := range rows {
		q = append(append(append(q[:0], prefix...), ' '), row...)
		err := im.s.exec(ctx, string(q))
		if err == nil {
			continue
		}
		if me := mysqlErr(err); me != nil && me.Number == erDupEntry {
			im.st.Duplicates++
			continue
		}
		if connLost(err) {
			return fmt.Errorf("bitrixdb: %s: %w: %w", im.s.target, ErrConnLost, err)
		}
		return im.statementError(s, err)
	}
	return nil
}
