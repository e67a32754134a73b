package bitrixdb

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haul-dev/haul/internal/gen"
	"github.com/haul-dev/haul/internal/testenv"
)

func TestMain(m *testing.M) {
	if os.Getenv("HAUL_BITRIXDB_HELPER") == "1" {
		helperMain()
	}
	testenv.Main(m)
}

// site makes a restored site tree holding a generated dump and the
// configuration files as the backup carries them.
func site(t testing.TB, o gen.SQLDumpOptions) (string, *gen.SQLDump) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "www")
	d, err := gen.BitrixSQLDump(filepath.Join(root, BackupDir), "20261120_030000_full_1a2b3c4d", o)
	if err != nil {
		t.Fatal(err)
	}
	if err := gen.BitrixSiteConfig(root); err != nil {
		t.Fatal(err)
	}
	return root, d
}

// passwordFile writes the test server's password for MariaDBUser.
func passwordFile(t testing.TB, pw string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "db.pass")
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func options(t testing.TB, m *testenv.MariaDB, db, root string) Options {
	t.Helper()
	target, err := ParseURL(m.URL(db))
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		Root:        root,
		StateDir:    filepath.Join(t.TempDir(), ".haul"),
		Target:      target,
		Credentials: Credentials{PasswordFile: passwordFile(t, testenv.MariaDBPassword), MyCnf: "-", Env: noEnv},
		Create:      true,
	}
}

func noEnv(string) (string, bool) { return "", false }

// tableSum is what a user compares after a restore: rows and checksum.
type tableSum = testenv.TableSum

// sums reads every base table's row count and CHECKSUM TABLE.
func sums(t testing.TB, m *testenv.MariaDB, db string) map[string]tableSum {
	t.Helper()
	return m.TableSums(t, db)
}

func sameSums(t testing.TB, got, want map[string]tableSum) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d tables, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	for n, w := range want {
		if g := got[n]; g != w {
			t.Errorf("table %s: %d rows, checksum %v; want %d rows, checksum %v", n, g.Rows, g.Checksum, w.Rows, w.Checksum)
		}
	}
}

// clientImport loads the dump with the mariadb client, the way an
// operator would by hand (after-connect first, then the parts joined):
// the reference result.
func clientImport(t testing.TB, m *testenv.MariaDB, db string, d *gen.SQLDump) time.Duration {
	t.Helper()
	return clientImportWith(t, m, db, d, m.Client(t, db))
}

// clientImportWith is clientImport with the client command given (over
// the socket or over TCP).
func clientImportWith(t testing.TB, m *testenv.MariaDB, db string, d *gen.SQLDump, cmd *exec.Cmd) time.Duration {
	t.Helper()
	m.Exec(t, "", "CREATE DATABASE "+quoteIdent(db))
	ac, err := os.ReadFile(d.AfterConnect)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = pr
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	go func() {
		defer pw.Close()
		_, _ = pw.Write([]byte("SET FOREIGN_KEY_CHECKS = 0; SET SQL_MODE=''; " + strings.ReplaceAll(string(ac), "<DATABASE>", db) + "\n"))
		for _, p := range d.Parts {
			f, err := os.Open(p)
			if err != nil {
				return
			}
			buf := make([]byte, 1<<20)
			for {
				n, err := f.Read(buf)
				if n > 0 {
					if _, werr := pw.Write(buf[:n]); werr != nil {
						f.Close()
						return
					}
				}
				if err != nil {
					break
				}
			}
			f.Close()
		}
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mariadb client import: %v\n%s", err, out.String())
	}
	return time.Since(start)
}

// php runs php-cli code and returns its output.
func php(t testing.TB, args ...string) string {
	t.Helper()
	p := testenv.RequireTool(t, "php")
	// Bitrix needs short_open_tag, and its files start with "<?".
	out, err := exec.Command(p, append([]string{"-d", "short_open_tag=1"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("php %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// siteCredsFromPHP reads the database settings back the way Bitrix does:
// by including the files in PHP.
func siteCredsFromPHP(t testing.TB, root string) (dbconn, settings map[string]string) {
	t.Helper()
	for _, f := range []string{DBConnFile, SettingsFile} {
		if out := php(t, "-l", filepath.Join(root, f)); !strings.Contains(out, "No syntax errors") {
			t.Fatalf("php -l %s: %s", f, out)
		}
	}
	out := php(t, "-r", fmt.Sprintf(`include %q; echo json_encode(["host"=>$DBHost,"login"=>$DBLogin,"password"=>$DBPassword,"database"=>$DBName]);`, filepath.Join(root, DBConnFile)))
	if err := json.Unmarshal([]byte(out), &dbconn); err != nil {
		t.Fatalf("dbconn.php values: %v: %s", err, out)
	}
	out = php(t, "-r", fmt.Sprintf(`$a = include %q; $d = $a["connections"]["value"]["default"]; echo json_encode(["host"=>$d["host"],"login"=>$d["login"],"password"=>$d["password"],"database"=>$d["database"],"className"=>$d["className"]]);`, filepath.Join(root, SettingsFile)))
	if err := json.Unmarshal([]byte(out), &settings); err != nil {
		t.Fatalf(".settings.php values: %v: %s", err, out)
	}
	return dbconn, settings
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func fileSize(t testing.TB, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
