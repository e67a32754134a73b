package testenv

import (
	"database/sql"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// The server comes up on both the socket and the port, and the haul user
// logs in over TCP with its password.
func TestStartMariaDB(t *testing.T) {
	m := StartMariaDB(t)
	m.Exec(t, "", "CREATE DATABASE x")
	var n int
	if err := m.DB(t, "x").QueryRow("SELECT 1+1").Scan(&n); err != nil || n != 2 {
		t.Fatalf("query over the socket: %d, %v", n, err)
	}
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = MariaDBUser, MariaDBPassword, "tcp", m.Addr, "x"
	conn, err := mysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	if err := db.QueryRow("SELECT 2+2").Scan(&n); err != nil || n != 4 {
		t.Fatalf("query as %s over TCP: %d, %v", MariaDBUser, n, err)
	}
	out, err := m.Client(t, "x").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb client: %v\n%s", err, out)
	}
}
