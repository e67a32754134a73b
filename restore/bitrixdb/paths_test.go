package bitrixdb

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haul-dev/haul/internal/gen"
	"github.com/haul-dev/haul/internal/testenv"
)

// sampleSite puts testdata/bitrix-db's dump into a site tree.
func sampleSite(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "www")
	dir := filepath.Join(root, BackupDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"sample.sql", "sample_after_connect.sql"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "bitrix-db", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// Acceptance 3: rows whose keys are already there are skipped as
// restore.php skips them, the others inserted; values holding "),(" come
// through whole.
func TestDuplicateKeysSkipped(t *testing.T) {
	m := testenv.StartMariaDB(t)
	root := sampleSite(t)
	m.Exec(t, "", "CREATE DATABASE site")
	m.Exec(t, "site", "CREATE TABLE b_stat_sample (ID int NOT NULL PRIMARY KEY, NAME varchar(50)) DEFAULT CHARSET=utf8mb3; INSERT INTO b_stat_sample VALUES (1, 'there before')")
	opts := options(t, m, "site", root)
	opts.Create = false
	res, err := Run(ctxT(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Duplicates != 3 {
		t.Errorf("%d duplicates skipped, want 3", res.Duplicates)
	}
	want := map[string]map[int]string{
		"b_sample":      {1: "first", 2: "a),(b", 3: "semi;\nnewline", 4: "x),(y');\n('z", 5: "Привет; «мир»"},
		"b_stat_sample": {1: "there before", 2: "from the dump, 2", 3: "from the dump, 3),(3"},
	}
	db := m.DB(t, "site")
	for table, rows := range want {
		col := "VALUE"
		if table == "b_stat_sample" {
			col = "NAME"
		}
		got := map[int]string{}
		r, err := db.Query("SELECT ID, " + col + " FROM " + table)
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var id int
			var v string
			if err := r.Scan(&id, &v); err != nil {
				t.Fatal(err)
			}
			got[id] = v
		}
		r.Close()
		if len(got) != len(rows) {
			t.Errorf("%s: %d rows %v, want %d", table, len(got), got, len(rows))
		}
		for id, v := range rows {
			if got[id] != v {
				t.Errorf("%s row %d: %q, want %q", table, id, got[id], v)
			}
		}
	}
}

// Acceptance 4a: a statement larger than max_allowed_packet stops the
// import before anything is imported, naming its size and the setting;
// after the setting is raised the rerun imports everything.
func TestStatementOverMaxAllowedPacket(t *testing.T) {
	m := testenv.StartMariaDB(t, "--max-allowed-packet=1M")
	root, d := site(t, gen.SQLDumpOptions{Rows: 2000})
	opts := options(t, m, "site", root)
	_, err := Run(ctxT(t), opts)
	var pe *PacketError
	if !errors.As(err, &pe) || !errors.Is(err, ErrPacket) {
		t.Fatalf("err = %v, want a *PacketError", err)
	}
	msg := err.Error()
	t.Log(msg)
	if pe.Size < 1536<<10 || pe.Max != 1<<20 || !strings.Contains(msg, "SET GLOBAL max_allowed_packet=") ||
		!strings.Contains(msg, "1048576") || !strings.Contains(msg, d.Name+".sql") {
		t.Fatalf("message does not name the size, the limit, the setting and the file: %s", msg)
	}
	var n int
	if err := m.DB(t, "").QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'site'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d tables were imported before the error (%v); want none", n, err)
	}
	m.Exec(t, "", "SET GLOBAL max_allowed_packet = ?", PacketSetting(pe.Size))
	res, err := Run(ctxT(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	got := sums(t, m, "site")
	for table, rows := range d.Rows {
		if got[table].Rows != int64(rows) && table != "b_module_to_module" {
			t.Errorf("table %s: %d rows, want %d", table, got[table].Rows, rows)
		}
	}
	if res.Statements == 0 {
		t.Fatal("no statements run")
	}
}

// Acceptance 4b: a wrong password is one line naming the login, and the
// password is nowhere: not in the message, the state, the site's files.
func TestWrongPassword(t *testing.T) {
	m := testenv.StartMariaDB(t)
	root, _ := site(t, gen.SQLDumpOptions{Rows: 100, BigValue: -1})
	opts := options(t, m, "site", root)
	const wrong = "Wr0ng-Secret-zz9"
	opts.Credentials.PasswordFile = passwordFile(t, wrong)
	rec := &recorder{}
	opts.Progress = rec
	_, err := Run(ctxT(t), opts)
	if !errors.Is(err, ErrAccess) {
		t.Fatalf("err = %v, want ErrAccess", err)
	}
	msg := err.Error()
	t.Log(msg)
	if strings.Contains(msg, "\n") || strings.Contains(msg, wrong) || !strings.Contains(msg, "login") || !strings.Contains(msg, "haul") {
		t.Fatalf("message is not one line naming the login without the password: %q", msg)
	}
	for _, w := range rec.warns {
		if strings.Contains(w, wrong) {
			t.Fatalf("a warning holds the password: %q", w)
		}
	}
	noSecret(t, wrong, filepath.Dir(opts.StateDir))
	noSecret(t, wrong, root)
	if _, err := os.Stat(filepath.Join(root, BackupDir)); err != nil {
		t.Fatalf("the dump was touched: %v", err)
	}
}

// A refused FULLTEXT index is dropped from the CREATE and the ~ft_
// options reset, as restore.php does (MEMORY tables have no FULLTEXT).
func TestFullTextRefused(t *testing.T) {
	m := testenv.StartMariaDB(t)
	root := filepath.Join(t.TempDir(), "www")
	dir := filepath.Join(root, BackupDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dump := "-- Started: x\nSET NAMES 'utf8';\nDROP TABLE IF EXISTS `b_option`;\nCREATE TABLE `b_option` (\n  `MODULE_ID` varchar(50) NOT NULL,\n  `NAME` varchar(50) NOT NULL,\n  `VALUE` text,\n  PRIMARY KEY (`MODULE_ID`,`NAME`)\n) ENGINE=InnoDB;\n\n" +
		"INSERT INTO `b_option` VALUES\n('main', '~ft_b_search', 'a:1:{i:0;b:1;}'),\n('main', 'other', 'kept');\n" +
		"DROP TABLE IF EXISTS `b_search`;\nCREATE TABLE `b_search` (\n  `ID` int NOT NULL,\n  `C` varchar(200),\n  PRIMARY KEY (`ID`),\n  FULLTEXT KEY `ft` (`C`)\n) ENGINE=MEMORY;\n\n" +
		"INSERT INTO `b_search` VALUES\n(1, 'text');\n-- Finished: x"
	if err := os.WriteFile(filepath.Join(dir, "d.sql"), []byte(dump), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Run(ctxT(t), options(t, m, "site", root))
	if err != nil {
		t.Fatal(err)
	}
	var ft, other string
	db := m.DB(t, "site")
	if err := db.QueryRow("SELECT VALUE FROM b_option WHERE NAME = '~ft_b_search'").Scan(&ft); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT VALUE FROM b_option WHERE NAME = 'other'").Scan(&other); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM b_search").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if !res.FullTextDropped || ft != "a:0:{}" || other != "kept" || n != 1 {
		t.Fatalf("dropped %v, ~ft_ %q, other %q, rows %d", res.FullTextDropped, ft, other, n)
	}
}

// Several dumps and none picked: an error listing them (exit 2 in the
// CLI); picking one works.
func TestSeveralDumps(t *testing.T) {
	root := sampleSite(t)
	b, _ := os.ReadFile(filepath.Join(root, BackupDir, "sample.sql"))
	if err := os.WriteFile(filepath.Join(root, BackupDir, "other.sql"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := FindDump(root, "")
	var se *SeveralDumpsError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "other, sample") || !strings.Contains(err.Error(), "--db-dump") {
		t.Fatalf("err = %v", err)
	}
	d, err := FindDump(root, "sample.sql")
	if err != nil || d.Name != "sample" || d.AfterConnect == "" || len(d.Parts) != 1 {
		t.Fatalf("FindDump(sample) = %+v, %v", d, err)
	}
	// A dump without its closing line was cut short.
	if err := os.WriteFile(filepath.Join(root, BackupDir, "other.sql"), b[:len(b)-40], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := FindDump(root, "other"); !errors.Is(err, ErrDumpFormat) {
		t.Fatalf("a cut dump: %v", err)
	}
}

// TestKeyedTables: a rerun may start inside a table's rows only when
// running its INSERTs a second time leaves the same rows (a primary key,
// or a unique key over NOT NULL columns). The answer is the table's in
// the target database, not that of a table of the same name elsewhere.
func TestKeyedTables(t *testing.T) {
	m := testenv.StartMariaDB(t)
	m.Exec(t, "", "CREATE DATABASE other")
	m.Exec(t, "other", "CREATE TABLE pk (a INT, b INT); CREATE TABLE nokey (a INT NOT NULL PRIMARY KEY)")
	target, err := ParseURL(m.URL("k"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := connect(ctxT(t), target, testenv.MariaDBPassword, true, nil, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	cases := []struct {
		table, columns string
		keyed          bool
	}{
		{"pk", "a INT NOT NULL PRIMARY KEY, b INT", true},
		{"pk2", "a INT NOT NULL, b VARCHAR(10) NOT NULL, c INT, PRIMARY KEY (a, b)", true},
		{"nokey", "a INT, b TEXT", false},
		{"plainindex", "a INT NOT NULL, KEY (a)", false},
		{"uniqnull", "a INT, UNIQUE KEY (a)", false},
		{"uniqnotnull", "a INT NOT NULL, b INT, UNIQUE KEY (a)", true},
		{"uniqmixed", "a INT NOT NULL, b INT, UNIQUE KEY (a, b)", false},
		{"twounique", "a INT, b INT NOT NULL, UNIQUE KEY ua (a), UNIQUE KEY ub (b)", true},
	}
	for _, c := range cases {
		if err := s.exec(ctxT(t), "CREATE TABLE "+quoteIdent(c.table)+" ("+c.columns+")"); err != nil {
			t.Fatal(err)
		}
		got, err := s.keyed(ctxT(t), c.table)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.keyed {
			t.Errorf("table %s (%s): keyed %v, want %v", c.table, c.columns, got, c.keyed)
		}
	}
}
