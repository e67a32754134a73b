package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/internal/gen"
	"github.com/haul-dev/haul/internal/testenv"
	"github.com/haul-dev/haul/restore/bitrixdb"
)

// dbSiteHost is the host name the tests give with --site-host.
const dbSiteHost = "new.example.com"

// dbFixture is a Bitrix site with its database dump, packed as a
// multi-volume Bitrix backup and served over HTTP, a MariaDB server, and
// the reference: the library's import of the same dump.
type dbFixture struct {
	m      *testenv.MariaDB
	urls   []string
	parts  []e2ePart
	pwFile string
	ref    map[string]testenv.TableSum
}

func newDBFixture(t *testing.T) *dbFixture {
	t.Helper()
	f := &dbFixture{m: testenv.StartMariaDB(t)}
	tree := filepath.Join(t.TempDir(), "site")
	d, err := gen.BitrixSQLDump(filepath.Join(tree, bitrixdb.BackupDir), "20261120_030000_full_5e6f7a8b",
		gen.SQLDumpOptions{Rows: 3000, Files: 40, PartSize: 700_000})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Parts) < 3 {
		t.Fatalf("the dump has %d parts, want .sql, .sql.1, .sql.2 at least", len(d.Parts))
	}
	if err := gen.BitrixSiteConfig(tree); err != nil {
		t.Fatal(err)
	}
	vols, err := gen.BitrixSet(tree, t.TempDir(), "20261120_030000_full_5e6f7a8b", 512<<10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) < 2 {
		t.Fatalf("the backup has %d volumes, want several", len(vols))
	}
	f.parts = e2eReadDir(t, vols)
	f.urls = e2eURLs(e2eServe(t, f.parts), f.parts)
	f.pwFile = filepath.Join(t.TempDir(), "db.pass")
	if err := os.WriteFile(f.pwFile, []byte(testenv.MariaDBPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The reference: the library itself on a copy of the tree.
	refTree := filepath.Join(t.TempDir(), "ref")
	if err := os.CopyFS(refTree, os.DirFS(tree)); err != nil {
		t.Fatal(err)
	}
	target, err := bitrixdb.ParseURL(f.m.URL("ref"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bitrixdb.Run(context.Background(), bitrixdb.Options{Root: refTree, StateDir: t.TempDir(), Target: target,
		Credentials: bitrixdb.Credentials{PasswordFile: f.pwFile, MyCnf: "-", Env: func(string) (string, bool) { return "", false }},
		Create:      true, SiteHost: dbSiteHost}); err != nil {
		t.Fatal(err)
	}
	f.ref = f.sums(t, "ref")
	return f
}

// sums are the tables of db, with the one value a settings fix makes
// from the clock (the CDN's expiry, now + 10 years) set to 0.
func (f *dbFixture) sums(t *testing.T, db string) map[string]testenv.TableSum {
	t.Helper()
	f.m.Exec(t, db, "UPDATE b_bitrixcloud_option SET PARAM_VALUE = '0' WHERE NAME = 'cdn_config_expire_time'")
	return f.m.TableSums(t, db)
}

// sameAsRef fails unless db holds what the reference import holds, but
// for the tables named in except.
func (f *dbFixture) sameAsRef(t *testing.T, db string, except ...string) {
	t.Helper()
	got := f.sums(t, db)
	if len(got) != len(f.ref) || len(got) < 5 {
		t.Fatalf("%s has %d tables, the reference %d", db, len(got), len(f.ref))
	}
	for name, want := range f.ref {
		if got[name] != want && !slices.Contains(except, name) {
			t.Errorf("table %s: %+v, want %+v as the reference import", name, got[name], want)
		}
	}
}

// args is `haul run` of the backup into dest and into with --db on db.
func (f *dbFixture) args(dest, into, db string, extra ...string) []string {
	a := append([]string{"run"}, f.urls...)
	a = append(a, dest, "--into", into, "--progress", "log")
	if db != "" {
		a = append(a, "--db", f.m.URL(db), "--db-password-file", f.pwFile, "--db-create", "--site-host", dbSiteHost)
	}
	return append(a, extra...)
}

// sitePointsAt reads the site's database settings back with php-cli, as
// Bitrix includes them, and checks they name db on the test server.
func sitePointsAt(t *testing.T, m *testenv.MariaDB, root, db string) {
	t.Helper()
	php := testenv.RequireTool(t, "php")
	dbconn, settings := filepath.Join(root, bitrixdb.DBConnFile), filepath.Join(root, bitrixdb.SettingsFile)
	for _, f := range []string{dbconn, settings} {
		if out, err := exec.Command(php, "-d", "short_open_tag=1", "-l", f).CombinedOutput(); err != nil {
			t.Fatalf("php -l %s: %v\n%s", f, err, out)
		}
	}
	code := `include $argv[1]; $a = include $argv[2]; $d = $a["connections"]["value"]["default"];` +
		`echo json_encode([$DBHost, $DBLogin, $DBPassword, $DBName, $d["host"], $d["login"], $d["password"], $d["database"]]);`
	out, err := exec.Command(php, "-d", "short_open_tag=1", "-r", code, dbconn, settings).Output()
	if err != nil {
		t.Fatalf("php: %v\n%s", err, out)
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("php output %q: %v", out, err)
	}
	want := []string{m.Addr, testenv.MariaDBUser, testenv.MariaDBPassword, db}
	want = append(want, want...)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the site's settings (dbconn.php, then .settings.php) are %q, want %q", got, want)
	}
}

// noDumpLeft fails if any file of the dump is still in the site.
func noDumpLeft(t *testing.T, root string) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(root, bitrixdb.BackupDir, "*.sql*"))
	if len(left) > 0 {
		t.Fatalf("dump files left in the site: %v", left)
	}
}

// noSecretUnder fails if any file under dir holds secret.
func noSecretUnder(t *testing.T, dir, secret string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("%s holds the database password", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// dbRunJSON is a run of `haul report --json`, its database fields.
type dbRunJSON struct {
	DB *struct {
		Target      string  `json:"target"`
		ResumedFrom int64   `json:"resumed_from"`
		Bytes       int64   `json:"bytes"`
		Statements  int64   `json:"statements"`
		Rate        float64 `json:"bytes_per_second"`
		Skipped     bool    `json:"skipped"`
		Interrupted bool    `json:"interrupted"`
	} `json:"db"`
	Steps []struct {
		Name     string `json:"name"`
		ExitCode *int   `json:"exit_code"`
	} `json:"steps"`
}

// lastRun is the last run of `haul report --json`.
func lastRun(t *testing.T, dest string) dbRunJSON {
	t.Helper()
	r := runHaul(t, nil, "report", "--json", dest)
	wantCode(t, r, 0)
	var rep struct{ Runs []dbRunJSON }
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || len(rep.Runs) == 0 {
		t.Fatalf("report --json: %v\n%s", err, r.stdout)
	}
	return rep.Runs[len(rep.Runs)-1]
}

type dbStatusJSON struct {
	State string `json:"state"`
	DB    *struct {
		State      string   `json:"state"`
		Target     string   `json:"target"`
		BytesTotal int64    `json:"bytes_total"`
		BytesDone  int64    `json:"bytes_done"`
		Statements int64    `json:"statements"`
		ETA        *float64 `json:"eta_seconds"`
	} `json:"db"`
}

func dbStatus(t *testing.T, dest string, code int) dbStatusJSON {
	t.Helper()
	r := runHaul(t, nil, "status", "--json", dest)
	wantCode(t, r, code)
	var st dbStatusJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.DB == nil {
		t.Fatalf("status --json has no db: %v\n%s", err, r.stdout)
	}
	return st
}

// TestBitrixDB is issue 14 through the binary against a real MariaDB: a
// Bitrix backup with its database → haul run --db → the tables equal the
// reference import, the site points at the new database, the dump is gone,
// DEST keeps its verified volumes; run again → nothing is imported again;
// --max-time during the import → 75 and a rerun finishes with equal
// tables; refusals exit 1 (or 2) with one line and never show the
// password.
func TestBitrixDB(t *testing.T) {
	f := newDBFixture(t)
	secret := testenv.MariaDBPassword[:10]

	t.Run("run", func(t *testing.T) {
		dest, into := t.TempDir(), filepath.Join(t.TempDir(), "www")
		r := runHaul(t, nil, f.args(dest, into, "site")...)
		wantCode(t, r, 0)
		if !strings.Contains(r.stdout, "db: imported the dump 20261120_030000_full_5e6f7a8b into "+f.m.URL("site")) {
			t.Errorf("no import summary in the output:\n%s", r.stdout)
		}
		f.sameAsRef(t, "site")
		sitePointsAt(t, f.m, into, "site")
		noDumpLeft(t, into)
		for _, p := range f.parts { // DEST keeps the verified volumes (README: why)
			if _, err := os.Stat(filepath.Join(dest, p.name)); err != nil {
				t.Errorf("volume %s gone from DEST: %v", p.name, err)
			}
		}
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("the output shows the password:\n%s%s", r.stdout, r.stderr)
		}
		noSecretUnder(t, dest, secret)
		run := lastRun(t, dest)
		if run.DB == nil || run.DB.Skipped || run.DB.Bytes == 0 || run.DB.Statements == 0 || run.DB.Rate == 0 || run.DB.Target != f.m.URL("site") {
			t.Fatalf("report's db of the first run: %+v", run.DB)
		}
		if st := dbStatus(t, dest, 0); st.State != chunk.SetDone || st.DB.State != chunk.DBDone || st.DB.BytesDone != st.DB.BytesTotal {
			t.Fatalf("status after the import: %+v %+v", st, st.DB)
		}

		// A change made on the new site survives a second run: nothing
		// is imported again (the dump's DROP TABLE would undo it).
		f.m.Exec(t, "site", "UPDATE b_iblock_element SET NAME = 'edited after the restore' WHERE ID = 1")
		r = runHaul(t, nil, f.args(dest, into, "site")...)
		wantCode(t, r, 0)
		var name string
		if err := f.m.DB(t, "site").QueryRow("SELECT NAME FROM b_iblock_element WHERE ID = 1").Scan(&name); err != nil || name != "edited after the restore" {
			t.Fatalf("after the second run the edited row is %q (%v): the database was imported again", name, err)
		}
		if run := lastRun(t, dest); run.DB == nil || !run.DB.Skipped {
			t.Fatalf("the second run's report shows no skipped db step: %+v", run.DB)
		}

		// The same backup restored into another --into for the same
		// database: the import is not run again (the edit survives), but
		// the new tree's site points at the database and holds no dump.
		into2 := filepath.Join(t.TempDir(), "www2")
		r = runHaul(t, nil, f.args(dest, into2, "site")...)
		wantCode(t, r, 0)
		if err := f.m.DB(t, "site").QueryRow("SELECT NAME FROM b_iblock_element WHERE ID = 1").Scan(&name); err != nil || name != "edited after the restore" {
			t.Fatalf("a run into a new --into imported the database again (row %q, %v)", name, err)
		}
		if !strings.Contains(r.stdout, into2) || !strings.Contains(r.stdout, "already restored") {
			t.Errorf("the run into %s does not say the database was already restored and the site pointed at it:\n%s", into2, r.stdout)
		}
		sitePointsAt(t, f.m, into2, "site")
		noDumpLeft(t, into2)
		noSecretUnder(t, dest, secret)
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("the output shows the password:\n%s%s", r.stdout, r.stderr)
		}
		// And again into it: nothing to do.
		r = runHaul(t, nil, f.args(dest, into2, "site")...)
		wantCode(t, r, 0)
		if run := lastRun(t, dest); run.DB == nil || !run.DB.Skipped {
			t.Fatalf("a second run into %s did the db step again: %+v", into2, run.DB)
		}
	})

	t.Run("deadline", func(t *testing.T) {
		dest, into := t.TempDir(), filepath.Join(t.TempDir(), "www")
		wantCode(t, runHaul(t, nil, f.args(dest, into, "")...), 0) // files only
		// Each statement takes 100ms more: the deadline falls inside the import.
		r := runHaul(t, []string{"HAUL_TEST_DB_DELAY=100ms", "HAUL_TEST_LOG_INTERVAL=300ms"}, f.args(dest, into, "cut", "--max-time", "2s")...)
		wantCode(t, r, 75)
		if !regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\S+ db: \S+ \S+ / \S+ \S+ \(\d+\.\d%\), .*, \d+ statements$`).MatchString(r.stdout) {
			t.Errorf("no dated progress line of the import in the log:\n%s", r.stdout)
		}
		st := dbStatus(t, dest, 75)
		if st.State != chunk.SetIncomplete || st.DB.State != chunk.DBImporting || st.DB.BytesDone <= 0 || st.DB.BytesDone >= st.DB.BytesTotal || st.DB.ETA == nil {
			t.Fatalf("status after the cut: %+v %+v", st, st.DB)
		}
		run := lastRun(t, dest)
		if run.DB == nil || run.DB.Statements == 0 || len(run.Steps) == 0 || run.Steps[len(run.Steps)-1].Name != chunk.StepDB ||
			run.Steps[len(run.Steps)-1].ExitCode == nil || *run.Steps[len(run.Steps)-1].ExitCode != 75 {
			t.Fatalf("report of the cut run: db %+v, steps %+v", run.DB, run.Steps)
		}
		r = runHaul(t, nil, f.args(dest, into, "cut")...)
		wantCode(t, r, 0)
		if run := lastRun(t, dest); run.DB == nil || run.DB.ResumedFrom != st.DB.BytesDone {
			t.Fatalf("the rerun did not continue at byte %d: %+v", st.DB.BytesDone, run.DB)
		}
		f.sameAsRef(t, "cut")
		sitePointsAt(t, f.m, into, "cut")
		noDumpLeft(t, into)
	})

	t.Run("refusals", func(t *testing.T) {
		dest, into := t.TempDir(), filepath.Join(t.TempDir(), "www")
		wantCode(t, runHaul(t, nil, f.args(dest, into, "")...), 0)
		wrong := filepath.Join(t.TempDir(), "wrong.pass")
		if err := os.WriteFile(wrong, []byte("Tr0ub4dor&3\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		f.m.Exec(t, "", "CREATE USER 'weak'@'127.0.0.1' IDENTIFIED BY 'Tr0ub4dor&3'; GRANT SELECT ON *.* TO 'weak'@'127.0.0.1'")
		restore := func(url string, extra ...string) []string {
			return append([]string{"restore", dest, "--into", into, "--progress", "none", "--db", url}, extra...)
		}
		url := f.m.URL("refused")
		for _, c := range []struct {
			name  string
			setup string // run as root first
			args  []string
			code  int
			says  string
		}{
			{"wrong password", "", restore(url, "--db-password-file", wrong, "--db-create"), 1, "login refused"},
			{"unreachable", "", restore("mysql://haul@127.0.0.1:1/x", "--db-password-file", f.pwFile), 1, "cannot connect to mysql://haul@127.0.0.1:1/x"},
			{"no privilege", "CREATE DATABASE refused", restore(strings.Replace(url, "haul@", "weak@", 1), "--db-password-file", wrong), 1, "privilege"},
			{"statement too large", "SET GLOBAL max_allowed_packet = 1048576", restore(url, "--db-password-file", f.pwFile, "--db-create"), 1, "SET GLOBAL max_allowed_packet="},
			{"password in the URL", "", restore("mysql://haul:Tr0ub4dor&3@127.0.0.1/x"), 2, "never on the command line"},
			{"flag without --db", "", []string{"restore", dest, "--into", into, "--db-create"}, 2, "--db-create needs --db URL"},
		} {
			t.Run(c.name, func(t *testing.T) {
				if c.setup != "" {
					f.m.Exec(t, "", c.setup)
				}
				if strings.Contains(c.setup, "max_allowed_packet") {
					t.Cleanup(func() { f.m.Exec(t, "", "SET GLOBAL max_allowed_packet = 67108864") })
				}
				r := runHaul(t, nil, c.args...)
				wantCode(t, r, c.code)
				msg := strings.TrimSpace(r.stderr)
				if strings.Contains(msg, "\n") || !strings.Contains(msg, c.says) {
					t.Errorf("want one line saying %q, got:\n%s", c.says, r.stderr)
				}
				for _, s := range []string{"Tr0ub4dor", secret} {
					if strings.Contains(r.stdout+r.stderr, s) {
						t.Errorf("the output shows a password:\n%s%s", r.stdout, r.stderr)
					}
					noSecretUnder(t, dest, s)
				}
			})
		}
		if t.Failed() {
			return
		}
		// Nothing was imported by any of them.
		var n int
		if err := f.m.DB(t, "").QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'refused'").Scan(&n); err != nil || n != 0 {
			t.Errorf("the refused runs left %d tables (%v)", n, err)
		}

		// Two dumps and no --db-dump: exit 2 naming both.
		backup := filepath.Join(into, bitrixdb.BackupDir)
		files, _ := filepath.Glob(filepath.Join(backup, "20261120_030000_full_5e6f7a8b*"))
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(strings.Replace(p, "20261120_030000_full_5e6f7a8b", "20261121_030000_full_9c0d1e2f", 1), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		r := runHaul(t, nil, restore(url, "--db-password-file", f.pwFile, "--db-create")...)
		wantCode(t, r, 2)
		if !strings.Contains(r.stderr, "20261120_030000_full_5e6f7a8b, 20261121_030000_full_9c0d1e2f") || !strings.Contains(r.stderr, "--db-dump NAME") {
			t.Fatalf("several dumps: want both named and --db-dump, got:\n%s", r.stderr)
		}
		r = runHaul(t, nil, restore(url, "--db-password-file", f.pwFile, "--db-create", "--db-dump", "20261121_030000_full_9c0d1e2f", "--keep-dump", "--progress", "log")...)
		wantCode(t, r, 0)
		if !strings.Contains(r.stdout, "settings fix skipped (Bitrix CDN turned off when needed): pass the site's host name (--site-host)") {
			t.Errorf("without --site-host the skipped fixes are not named:\n%s", r.stdout)
		}
		// The fixes that need the host were skipped: those two tables differ.
		f.sameAsRef(t, "refused", "b_bitrixcloud_option", "b_module_to_module")
		if _, err := os.Stat(filepath.Join(backup, "20261121_030000_full_9c0d1e2f.sql.2")); err != nil {
			t.Errorf("--keep-dump: %v", err)
		}
	})
}
