package bitrixdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/go-sql-driver/mysql"
)

// MySQL/MariaDB error numbers the import acts on.
const (
	erDupEntry          = 1062 // duplicate key
	erAccessDenied      = 1045 // wrong user or password
	erDBAccessDenied    = 1044 // no access to the database
	erTableAccessDenied = 1142 // command denied on a table
	erSpecificAccess    = 1227 // needs SUPER / SET USER (a view's DEFINER)
	erBadDB             = 1049 // unknown database
	erNoSuchTable       = 1146
	erServerShutdown    = 1053
	erConnKilled        = 1927 // MariaDB: connection killed
)

// session is one connection to the target with Bitrix's session set up.
type session struct {
	db     *sql.DB
	conn   *sql.Conn
	target Target
	// maxPacket is the server's max_allowed_packet.
	maxPacket int64
}

func mysqlErr(err error) *mysql.MySQLError {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me
	}
	return nil
}

// connLost reports whether err means the connection is gone (the server
// went away, the network broke) rather than that a statement was refused.
func connLost(err error) bool {
	if err == nil {
		return false
	}
	if me := mysqlErr(err); me != nil {
		return me.Number == erServerShutdown || me.Number == erConnKilled
	}
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.As(err, &ne)
}

// connect opens one connection and sets it up as restore.php does on
// every connect: FOREIGN_KEY_CHECKS=0, the database (created first when
// create is set), SQL_MODE=”, innodb_strict_mode=0 (errors ignored), then
// the dump's after-connect statements (errors ignored, reported).
func connect(ctx context.Context, t Target, password string, create bool, after []string, warn func(string)) (*session, error) {
	cfg := driverConfig(t, password)
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("bitrixdb: %s: %w", t, err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(2)
	s := &session{db: db, target: t}
	fail := func(err error) (*session, error) {
		s.close()
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		if me := mysqlErr(err); me != nil && me.Number == erAccessDenied {
			return fail(&AccessError{Target: t.String(), What: "login", Err: me,
				Fix: "check the user and the password (--db-password-file, MYSQL_PWD or ~/.my.cnf [client])"})
		}
		return fail(fmt.Errorf("bitrixdb: cannot connect to %s: %w", t, err))
	}
	s.conn = conn
	if err := s.exec(ctx, "SET FOREIGN_KEY_CHECKS = 0"); err != nil {
		return fail(fmt.Errorf("bitrixdb: %s: %w", t, err))
	}
	if create {
		if err := s.exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(t.Database)); err != nil {
			if me := mysqlErr(err); me != nil && (me.Number == erDBAccessDenied || me.Number == erSpecificAccess) {
				return fail(&AccessError{Target: t.String(), What: "CREATE DATABASE", Err: me,
					Fix: "create the database as an administrator, or grant CREATE to this user"})
			}
			return fail(fmt.Errorf("bitrixdb: %s: create the database: %w", t, err))
		}
	}
	if err := s.exec(ctx, "USE "+quoteIdent(t.Database)); err != nil {
		if me := mysqlErr(err); me != nil {
			switch me.Number {
			case erBadDB:
				return fail(&AccessError{Target: t.String(), What: "database", Err: me,
					Fix: "create it (CREATE DATABASE) or pass --db-create"})
			case erDBAccessDenied:
				return fail(&AccessError{Target: t.String(), What: "database", Err: me,
					Fix: fmt.Sprintf("GRANT ALL PRIVILEGES ON %s.* TO the user", quoteIdent(t.Database))})
			}
		}
		return fail(fmt.Errorf("bitrixdb: %s: %w", t, err))
	}
	if err := s.exec(ctx, "SET SQL_MODE=''"); err != nil {
		return fail(fmt.Errorf("bitrixdb: %s: %w", t, err))
	}
	_ = s.exec(ctx, "SET innodb_strict_mode=0") // absent on servers without InnoDB; restore.php ignores it too
	for _, q := range after {
		if err := s.exec(ctx, q); err != nil {
			if connLost(err) {
				return fail(fmt.Errorf("bitrixdb: %s: %w: %w", t, ErrConnLost, err))
			}
			warn(fmt.Sprintf("the dump's after-connect statement %q failed (ignored, as restore.php does): %v", q, err))
		}
	}
	var mp int64
	if err := s.conn.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&mp); err != nil {
		return fail(fmt.Errorf("bitrixdb: %s: read max_allowed_packet: %w", t, err))
	}
	s.maxPacket = mp
	return s, nil
}

func (s *session) exec(ctx context.Context, q string, args ...any) error {
	_, err := s.conn.ExecContext(ctx, q, args...)
	return err
}

func (s *session) close() {
	if s.conn != nil {
		_ = s.conn.Close()
	}
	_ = s.db.Close()
}

// probeTable is the scratch table the privilege check creates and drops.
const probeTable = "haul_privilege_probe"

// checkPrivileges tries, on a scratch table and view, everything the
// import and the settings fixes do: CREATE, INSERT, UPDATE, DELETE,
// CREATE VIEW, DROP. A refusal names the privilege before anything of
// the dump has run.
func (s *session) checkPrivileges(ctx context.Context) error {
	tb, vw := quoteIdent(probeTable), quoteIdent(probeTable+"_v")
	steps := []struct{ what, q string }{
		{"DROP", "DROP VIEW IF EXISTS " + vw},
		{"DROP", "DROP TABLE IF EXISTS " + tb},
		{"CREATE", "CREATE TABLE " + tb + " (ID INT NOT NULL PRIMARY KEY, V VARCHAR(10))"},
		{"INSERT", "INSERT INTO " + tb + " VALUES (1, 'a')"},
		{"UPDATE", "UPDATE " + tb + " SET V = 'b' WHERE ID = 1"},
		{"DELETE", "DELETE FROM " + tb + " WHERE ID = 1"},
		{"CREATE VIEW", "CREATE VIEW " + vw + " AS SELECT ID FROM " + tb},
		{"DROP", "DROP VIEW " + vw},
		{"DROP", "DROP TABLE " + tb},
	}
	for _, st := range steps {
		if err := s.exec(ctx, st.q); err != nil {
			_ = s.exec(ctx, "DROP VIEW IF EXISTS "+vw)
			_ = s.exec(ctx, "DROP TABLE IF EXISTS "+tb)
			if me := mysqlErr(err); me != nil && (me.Number == erDBAccessDenied || me.Number == erTableAccessDenied || me.Number == erSpecificAccess) {
				return &AccessError{Target: s.target.String(), What: "privilege " + st.what, Err: me,
					Fix: fmt.Sprintf("GRANT ALL PRIVILEGES ON %s.* TO the user, then run again", quoteIdent(s.target.Database))}
			}
			if connLost(err) {
				return fmt.Errorf("bitrixdb: %s: %w: %w", s.target, ErrConnLost, err)
			}
			return fmt.Errorf("bitrixdb: %s: privilege check (%s): %w", s.target, st.what, err)
		}
	}
	return nil
}

// keyed reports whether a table has a primary key or a unique key over
// NOT NULL columns: only then does running an INSERT of the dump twice
// leave the same rows (the second run's rows are duplicates, skipped).
//
// It reads information_schema.STATISTICS alone, whose NULLABLE column
// says what the join with COLUMNS would: with constants for both schema
// and table the server opens that one table's definition, where a join
// with COLUMNS made it open every table of every database on the server
// for each call (tens of ms per table of the dump, more on a shared
// server, hundreds of tables per Bitrix dump).
func (s *session) keyed(ctx context.Context, table string) (bool, error) {
	const q = `SELECT COUNT(*) FROM (
  SELECT INDEX_NAME FROM information_schema.STATISTICS
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND NON_UNIQUE = 0
  GROUP BY INDEX_NAME
  HAVING SUM(NULLABLE = 'YES') = 0) k`
	var n int
	if err := s.conn.QueryRowContext(ctx, q, table).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}
