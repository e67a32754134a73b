package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

const (
	mariadbStartTries   = 3
	mariadbReadyTimeout = 60 * time.Second
	mariadbStopTimeout  = 30 * time.Second
)

// MariaDBUser and MariaDBPassword are the account StartMariaDB creates
// (all privileges, from any host) besides root, which has no password and
// is only reachable over the socket.
const (
	MariaDBUser     = "haul"
	MariaDBPassword = "p4ss 'w0rd\" $x\\y;"
)

// MariaDB is a throwaway MariaDB server: a fresh data directory made by
// mariadb-install-db, mariadbd on a unix socket and on 127.0.0.1.
type MariaDB struct {
	Dir    string // data directory, socket and logs
	Socket string
	Port   int
	Addr   string // "127.0.0.1:PORT"
	errLog string
	cmd    *exec.Cmd
	exited chan struct{}
}

// MariaDBOption adds a mariadbd command-line option, e.g.
// "--max-allowed-packet=1M".
type MariaDBOption string

// StartMariaDB runs a MariaDB server for one test and stops it (and
// removes its files) when the test ends. Without the Debian package
// mariadb-server the test fails under CI=true and is skipped otherwise.
func StartMariaDB(t testing.TB, opts ...MariaDBOption) *MariaDB {
	t.Helper()
	install := RequireTool(t, "mariadb-install-db")
	// mariadbd lives in /usr/sbin, which is not in every user's PATH.
	server := "/usr/sbin/mariadbd"
	if _, err := os.Stat(server); err != nil {
		server = RequireTool(t, "mariadbd")
	}
	m := &MariaDB{Dir: t.TempDir()}
	m.Socket = filepath.Join(m.Dir, "mysqld.sock")
	m.errLog = filepath.Join(m.Dir, "error.log")
	data := filepath.Join(m.Dir, "data")
	u, err := user.Current()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	out, err := exec.Command(install, "--no-defaults", "--datadir="+data, "--user="+u.Username,
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput()
	if err != nil {
		t.Fatalf("testenv: mariadb-install-db: %v\n%s", err, out)
	}
	var lastErr error
	for try := 0; try < mariadbStartTries; try++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		args := []string{"--no-defaults", "--datadir=" + data, "--socket=" + m.Socket,
			"--port=" + strconv.Itoa(port), "--bind-address=127.0.0.1", "--user=" + u.Username,
			"--log-error=" + m.errLog, "--pid-file=" + filepath.Join(m.Dir, "mysqld.pid"),
			"--skip-log-bin", "--innodb-buffer-pool-size=128M", "--innodb-flush-log-at-trx-commit=2",
			"--skip-name-resolve", "--character-set-server=utf8mb4"}
		for _, o := range opts {
			args = append(args, string(o))
		}
		if lastErr = m.start(server, args, port); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("testenv: %v", lastErr)
	}
	t.Cleanup(func() {
		if err := m.stop(); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	q := fmt.Sprintf("'%s'", strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(MariaDBPassword))
	for _, host := range []string{"%", "localhost", "127.0.0.1"} {
		m.Exec(t, "", fmt.Sprintf("CREATE USER '%s'@'%s' IDENTIFIED BY %s", MariaDBUser, host, q))
		m.Exec(t, "", fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO '%s'@'%s' WITH GRANT OPTION", MariaDBUser, host))
	}
	return m
}

func (m *MariaDB) start(server string, args []string, port int) error {
	_ = os.Remove(m.errLog)
	cmd := exec.Command(server, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	dieWithParent(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start mariadbd: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(mariadbReadyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			log, _ := os.ReadFile(m.errLog)
			return fmt.Errorf("mariadbd exited at start (port %d in use?):\n%s", port, mariadbTail(string(log), 2000))
		case <-time.After(100 * time.Millisecond):
		}
		db, err := m.open("")
		if err != nil {
			continue
		}
		err = db.Ping()
		_ = db.Close()
		if err == nil {
			m.cmd, m.exited, m.Port = cmd, exited, port
			m.Addr = "127.0.0.1:" + strconv.Itoa(port)
			return nil
		}
	}
	_ = cmd.Process.Kill()
	<-exited
	log, _ := os.ReadFile(m.errLog)
	return fmt.Errorf("mariadbd did not come up in %v:\n%s", mariadbReadyTimeout, mariadbTail(string(log), 2000))
}

func (m *MariaDB) stop() error {
	if m.cmd == nil {
		return nil
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
		return nil
	case <-time.After(mariadbStopTimeout):
		_ = m.cmd.Process.Kill()
		<-m.exited
		return fmt.Errorf("mariadbd did not stop in %v; killed", mariadbStopTimeout)
	}
}

// open connects as root over the socket to database db ("" for none).
func (m *MariaDB) open(db string) (*sql.DB, error) {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = "root", "unix", m.Socket, db
	c.Logger = &mysql.NopLogger{}
	c.MultiStatements = true
	c.InterpolateParams = true
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}

// DB is a root connection pool to database db ("" for none), closed when
// the test ends.
func (m *MariaDB) DB(t testing.TB, db string) *sql.DB {
	t.Helper()
	d, err := m.open(db)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// Exec runs statements (several allowed, separated by ';') as root in
// database db ("" for none) and fails the test on error.
func (m *MariaDB) Exec(t testing.TB, db, q string, args ...any) {
	t.Helper()
	d, err := m.open(db)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := d.ExecContext(ctx, q, args...); err != nil {
		t.Fatalf("testenv: mariadb: %s: %v", mariadbTail(q, 200), err)
	}
}

// URL is a haul database URL for db as MariaDBUser over TCP.
func (m *MariaDB) URL(db string) string {
	return fmt.Sprintf("mysql://%s@%s/%s", MariaDBUser, m.Addr, db)
}

// SocketURL is the same over the unix socket.
func (m *MariaDB) SocketURL(db string) string {
	return fmt.Sprintf("mysql://%s@unix(%s)/%s", MariaDBUser, m.Socket, db)
}

// Client is the mariadb command-line client connected as root over the
// socket to database db, reading statements from stdin.
func (m *MariaDB) Client(t testing.TB, db string) *exec.Cmd {
	t.Helper()
	p := RequireTool(t, "mariadb")
	return exec.Command(p, "--no-defaults", "--socket="+m.Socket, "-uroot", db)
}

// ClientTCP is the mariadb command-line client connected as MariaDBUser
// over TCP 127.0.0.1 to database db, reading statements from stdin: the
// same transport as URL. The password goes in MYSQL_PWD, never argv.
func (m *MariaDB) ClientTCP(t testing.TB, db string) *exec.Cmd {
	t.Helper()
	p := RequireTool(t, "mariadb")
	cmd := exec.Command(p, "--no-defaults", "--protocol=tcp", "-h", "127.0.0.1", "-P", strconv.Itoa(m.Port), "-u"+MariaDBUser, db)
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+MariaDBPassword)
	return cmd
}

// CPUTime is the CPU time (user and system) the server has used so far,
// from /proc: benchmarks compare the server work each importer causes,
// which a loaded machine does not blur as it blurs wall time.
func (m *MariaDB) CPUTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", m.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses: state is
	// the first, utime the 12th and stime the 13th, in USER_HZ (100/s).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("testenv: /proc stat of mariadbd: %d fields", len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("testenv: /proc stat of mariadbd: %q %q", f[11], f[12])
	}
	return time.Duration(u+k) * (time.Second / 100), nil
}

func mariadbTail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// TableSum is what a user compares after a restore: a table's row count
// and its CHECKSUM TABLE.
type TableSum struct {
	Rows     int64
	Checksum sql.NullInt64
}

// TableSums reads every base table's row count and CHECKSUM TABLE in db.
func (m *MariaDB) TableSums(t testing.TB, db string) map[string]TableSum {
	t.Helper()
	conn := m.DB(t, db)
	rows, err := conn.Query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME", db)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	out := map[string]TableSum{}
	for _, n := range names {
		q := "`" + strings.ReplaceAll(n, "`", "``") + "`"
		var s TableSum
		if err := conn.QueryRow("SELECT COUNT(*) FROM " + q).Scan(&s.Rows); err != nil {
			t.Fatal(err)
		}
		var name string
		if err := conn.QueryRow("CHECKSUM TABLE "+q).Scan(&name, &s.Checksum); err != nil {
			t.Fatal(err)
		}
		out[n] = s
	}
	return out
}
