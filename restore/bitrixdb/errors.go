package bitrixdb

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels callers test with errors.Is; the CLI maps them to exit codes.
var (
	// ErrNoDump: the tree holds no bitrix/backup/*.sql dump (exit 1).
	ErrNoDump = errors.New("no database dump in the backup")
	// ErrSeveralDumps: more than one dump and none picked (usage: exit 2).
	// Wrapped by *SeveralDumpsError, which lists them.
	ErrSeveralDumps = errors.New("several database dumps")
	// ErrDumpFormat: the dump is cut short or not a Bitrix dump (exit 1).
	ErrDumpFormat = errors.New("bad dump")
	// ErrURL: the --db URL is malformed or carries a password (usage: exit 2).
	ErrURL = errors.New("bad database URL")
	// ErrAccess: the server refused the login, the database or a
	// privilege the import needs (exit 1). Wrapped by *AccessError.
	ErrAccess = errors.New("database access refused")
	// ErrPacket: a statement is larger than the server's
	// max_allowed_packet (exit 1). Wrapped by *PacketError.
	ErrPacket = errors.New("statement larger than max_allowed_packet")
	// ErrStatement: the server refused a statement of the dump (exit 1).
	// Wrapped by *StatementError.
	ErrStatement = errors.New("statement failed")
	// ErrConnLost: the connection to the server broke during the import;
	// the progress is saved and a rerun continues (exit 75).
	ErrConnLost = errors.New("database connection lost")
	// ErrSite: the site's configuration files could not be rewritten
	// (exit 1). Wrapped by *SiteError.
	ErrSite = errors.New("site configuration not rewritten")
)

// SeveralDumpsError lists the dumps found when none was picked.
type SeveralDumpsError struct {
	Dir   string   // bitrix/backup inside the tree
	Names []string // dump names without ".sql", sorted
}

func (e *SeveralDumpsError) Error() string {
	return fmt.Sprintf("bitrixdb: %s holds %d dumps (%s); pick one with --db-dump NAME",
		e.Dir, len(e.Names), strings.Join(e.Names, ", "))
}

func (e *SeveralDumpsError) Unwrap() error { return ErrSeveralDumps }

// AccessError says what the server refused: the login, the database or a
// privilege. It never holds the password.
type AccessError struct {
	Target string // the URL without a password
	What   string // "login", "database", "privilege CREATE VIEW", ...
	Err    error  // the server's error
	Fix    string // what to do
}

func (e *AccessError) Error() string {
	return fmt.Sprintf("bitrixdb: %s: %s refused: %v; %s", e.Target, e.What, e.Err, e.Fix)
}

func (e *AccessError) Unwrap() []error { return []error{ErrAccess, e.Err} }

// PacketError names a statement too large for the server and the setting
// that lets it through.
type PacketError struct {
	Part   string // the dump file the statement starts in
	Offset int64  // its byte offset in that file
	Table  string // the table it writes, when known
	Size   int64  // its size in bytes (AtLeast: it is at least that big)
	Max    int64  // the server's max_allowed_packet
}

func (e *PacketError) Error() string {
	where := e.Part
	if e.Table != "" {
		where = fmt.Sprintf("%s (table %s)", e.Part, e.Table)
	}
	return fmt.Sprintf("bitrixdb: the statement at byte %d of %s is %d bytes, more than the server's max_allowed_packet of %d; "+
		"raise it on the server: SET GLOBAL max_allowed_packet=%d (and max_allowed_packet=%dM under [mysqld] in my.cnf to keep it), then run again; nothing after byte %d was imported",
		e.Offset, where, e.Size, e.Max, PacketSetting(e.Size), PacketSetting(e.Size)>>20, e.Offset)
}

func (e *PacketError) Unwrap() error { return ErrPacket }

// PacketSetting is the max_allowed_packet that lets a statement of size
// bytes through: the size, the protocol's few bytes of overhead and some
// room, rounded up to a whole MiB (the server keeps multiples of 1024).
func PacketSetting(size int64) int64 {
	const mib = 1 << 20
	return (size + 64<<10 + mib - 1) / mib * mib
}

// StatementError is a statement the server refused.
type StatementError struct {
	Part   string // the dump file the statement starts in
	Offset int64  // its byte offset in that file
	Head   string // its first bytes, for the message
	Err    error  // the server's error
}

func (e *StatementError) Error() string {
	return fmt.Sprintf("bitrixdb: the statement at byte %d of %s failed: %v (statement: %s); fix the cause and run again, the import continues at this statement",
		e.Offset, e.Part, e.Err, e.Head)
}

func (e *StatementError) Unwrap() []error { return []error{ErrStatement, e.Err} }

// SiteError names a configuration file of the site that could not be
// rewritten and why.
type SiteError struct {
	File string // relative to the site root
	Err  error
}

func (e *SiteError) Error() string {
	return fmt.Sprintf("bitrixdb: %s: %v; set the database host, name, login and password there by hand", e.File, e.Err)
}

func (e *SiteError) Unwrap() []error { return []error{ErrSite, e.Err} }
