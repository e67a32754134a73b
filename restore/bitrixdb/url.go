package bitrixdb

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// DefaultPort is the MySQL/MariaDB TCP port used when the URL names none.
const DefaultPort = 3306

// Target is a database to import into, parsed from a URL of one of the forms
//
//	mysql://[USER@]HOST[:PORT]/DBNAME          TCP (IPv6 as [::1]:3306)
//	mysql://[USER@]unix(/path/to/socket)/DBNAME  a unix socket
//
// ("mariadb://" is the same). USER is percent-decoded; when it is absent
// the user comes from ~/.my.cnf [client], else the login name, as the
// mysql client does. A password in the URL is refused: it would show in
// the process list and the shell history.
type Target struct {
	User     string
	Host     string // TCP host ("" for a socket)
	Port     int    // TCP port
	Socket   string // unix socket path ("" for TCP)
	Database string
}

// ParseURL parses a database URL (see Target).
func ParseURL(s string) (Target, error) {
	bad := func(why string) (Target, error) {
		return Target{}, fmt.Errorf("%w %q: %s; the form is mysql://USER@HOST[:PORT]/DBNAME or mysql://USER@unix(/run/mysqld/mysqld.sock)/DBNAME", ErrURL, redactURL(s), why)
	}
	rest, ok := strings.CutPrefix(s, "mysql://")
	if !ok {
		if rest, ok = strings.CutPrefix(s, "mariadb://"); !ok {
			return bad("it must start with mysql://")
		}
	}
	var t Target
	// The user ends at the last '@' before the host; a socket path may
	// hold '@' too, so look only before "unix(" when it is there.
	hostStart := strings.Index(rest, "unix(")
	search := rest
	if hostStart >= 0 {
		search = rest[:hostStart]
	}
	if at := strings.LastIndexByte(search, '@'); at >= 0 {
		ui := rest[:at]
		rest = rest[at+1:]
		if strings.Contains(ui, ":") {
			return Target{}, fmt.Errorf("%w %q: it holds a password; give it with --db-password-file FILE, MYSQL_PWD or ~/.my.cnf [client] instead, never on the command line", ErrURL, redactURL(s))
		}
		u, err := url.PathUnescape(ui)
		if err != nil || u == "" {
			return bad("the user name is malformed")
		}
		t.User = u
	}
	if sock, ok := strings.CutPrefix(rest, "unix("); ok {
		end := strings.Index(sock, ")/")
		if end <= 0 {
			return bad("unix( needs a socket path, then )/DBNAME")
		}
		t.Socket = sock[:end]
		rest = sock[end+1:]
		if !filepath.IsAbs(t.Socket) {
			return bad("the socket path must be absolute")
		}
	} else {
		slash := strings.IndexByte(rest, '/')
		if slash < 0 {
			return bad("it names no database")
		}
		hp := rest[:slash]
		rest = rest[slash:]
		host, port := hp, ""
		if h, p, err := net.SplitHostPort(hp); err == nil {
			host, port = h, p
		} else if strings.HasPrefix(hp, "[") && strings.HasSuffix(hp, "]") {
			host = hp[1 : len(hp)-1]
		}
		if host == "" {
			return bad("it names no host")
		}
		t.Host, t.Port = host, DefaultPort
		if port != "" {
			n, err := strconv.Atoi(port)
			if err != nil || n <= 0 || n > 65535 {
				return bad("the port is not a number from 1 to 65535")
			}
			t.Port = n
		}
	}
	db, err := url.PathUnescape(strings.TrimPrefix(rest, "/"))
	if err != nil || db == "" || strings.ContainsAny(db, "/?") {
		return bad("the database name after the host is missing or malformed")
	}
	t.Database = db
	return t, nil
}

// String is the URL without any password, for messages and the journal.
func (t Target) String() string {
	u := ""
	if t.User != "" {
		u = url.PathEscape(t.User) + "@"
	}
	if t.Socket != "" {
		return fmt.Sprintf("mysql://%sunix(%s)/%s", u, t.Socket, url.PathEscape(t.Database))
	}
	return fmt.Sprintf("mysql://%s%s/%s", u, net.JoinHostPort(t.Host, strconv.Itoa(t.Port)), url.PathEscape(t.Database))
}

// SiteHost is the $DBHost value the site gets: "HOST" on the default
// port, "HOST:PORT" otherwise (Bitrix splits it at the colon), and
// "localhost" for a socket, which makes PHP's mysqli use its default
// socket (mysqli.default_socket): set Options.SiteDBHost when the site
// must use another one.
func (t Target) SiteHost() string {
	switch {
	case t.Socket != "":
		return "localhost"
	case t.Port == DefaultPort:
		return t.Host
	default:
		return t.Host + ":" + strconv.Itoa(t.Port)
	}
}

// redactURL drops anything that could be a password from a URL that is
// about to be quoted in an error.
func redactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "…"
	}
	end := strings.Index(rest, "unix(")
	if end < 0 {
		end = len(rest)
	}
	if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
		ui := rest[:at]
		if name, _, hasPw := strings.Cut(ui, ":"); hasPw {
			rest = name + ":***" + rest[at:]
		}
	}
	return scheme + "://" + rest
}

// Credentials says where the user and password come from.
type Credentials struct {
	// PasswordFile holds the password on its first line (a trailing
	// newline is not part of it).
	PasswordFile string
	// Env looks variables up (os.LookupEnv when nil); MYSQL_PWD is read.
	Env func(string) (string, bool)
	// MyCnf is the option file read for [client] user and password
	// (~/.my.cnf when empty; "-" reads none).
	MyCnf string
}

// resolve fills in the user and returns the password: the password file,
// else MYSQL_PWD, else ~/.my.cnf [client], else none (socket auth).
func (c Credentials) resolve(t *Target) (string, error) {
	env := c.Env
	if env == nil {
		env = os.LookupEnv
	}
	cnf := map[string]string{}
	if c.MyCnf != "-" {
		path := c.MyCnf
		if path == "" {
			if home, err := os.UserHomeDir(); err == nil {
				path = filepath.Join(home, ".my.cnf")
			}
		}
		if path != "" {
			m, err := readMyCnf(path)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return "", fmt.Errorf("bitrixdb: read %s: %w", path, err)
			}
			cnf = m
		}
	}
	if t.User == "" {
		t.User = cnf["user"]
	}
	if t.User == "" {
		if u, err := user.Current(); err == nil {
			t.User = u.Username
		}
	}
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("bitrixdb: read the database password file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimSuffix(line, "\r"), nil
	}
	if pw, ok := env("MYSQL_PWD"); ok {
		return pw, nil
	}
	return cnf["password"], nil
}

// readMyCnf reads user and password from the [client] group of a MySQL
// option file. Values may be quoted; in double quotes the usual
// backslash escapes apply, as the mysql client reads them.
func readMyCnf(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	in := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '!' {
			continue
		}
		if line[0] == '[' {
			in = strings.EqualFold(strings.TrimSpace(strings.Trim(line, "[]")), "client")
			continue
		}
		if !in {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(k)), "_", "-")
		if k != "user" && k != "password" {
			continue
		}
		out[k] = cnfValue(strings.TrimSpace(v))
	}
	return out, sc.Err()
}

func cnfValue(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v[1 : len(v)-1]
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		var b strings.Builder
		s := v[1 : len(v)-1]
		for i := 0; i < len(s); i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				case 'r':
					b.WriteByte('\r')
				case 'b':
					b.WriteByte('\b')
				case 's':
					b.WriteByte(' ')
				default:
					b.WriteByte(s[i])
				}
				continue
			}
			b.WriteByte(s[i])
		}
		return b.String()
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v
}

// driverConfig is the go-sql-driver configuration for t. The driver reads
// the server's max_allowed_packet at connect (MaxAllowedPacket 0) and
// logs nothing.
func driverConfig(t Target, password string) *mysql.Config {
	c := mysql.NewConfig()
	c.User = t.User
	c.Passwd = password
	if t.Socket != "" {
		c.Net, c.Addr = "unix", t.Socket
	} else {
		c.Net, c.Addr = "tcp", net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
	}
	c.MaxAllowedPacket = 0
	c.AllowNativePasswords = true
	c.InterpolateParams = true
	c.Timeout = 30 * time.Second
	c.Logger = &mysql.NopLogger{}
	return c
}
