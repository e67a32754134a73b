package bitrixdb

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haul-dev/haul/internal/gen"
	"github.com/haul-dev/haul/internal/testenv"
)

// recorder is a Progress that keeps everything it is told.
type recorder struct {
	total, done, stmts int64
	warns              []string
}

func (r *recorder) ImportStart(total, done int64)         { r.total, r.done = total, done }
func (r *recorder) ImportProgress(done, statements int64) { r.done, r.stmts = done, statements }
func (r *recorder) Warn(msg string)                       { r.warns = append(r.warns, msg) }

// Acceptance 1: a generated database in three parts is imported; every
// table equals the mariadb client's import of the same dump except the
// documented settings fixes; the site's configuration points at the new
// database (read back with php-cli); the dump and caches are gone.
func TestImportGeneratedSite(t *testing.T) {
	m := testenv.StartMariaDB(t)
	root, d := site(t, gen.SQLDumpOptions{PartSize: 16_000_000})
	if len(d.Parts) != 3 {
		t.Fatalf("the generated dump has %d parts, want 3 (.sql, .sql.1, .sql.2)", len(d.Parts))
	}
	clientImport(t, m, "oracle", d)

	opts := options(t, m, "site", root)
	opts.SiteHost = "new.example.com"
	rec := &recorder{}
	opts.Progress = rec
	res, err := Run(ctxT(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rec.done != rec.total || rec.total != res.Bytes || res.Statements == 0 {
		t.Fatalf("progress %d/%d bytes, result %d bytes, %d statements", rec.done, rec.total, res.Bytes, res.Statements)
	}
	if len(res.Fixes) != 3 || len(res.Skipped) != 0 {
		t.Fatalf("fixes %v, skipped %v; want all three applied", res.Fixes, res.Skipped)
	}

	// The documented fixes, applied to the reference by hand.
	got := m.DB(t, "site")
	var expire int64
	if err := got.QueryRow("SELECT PARAM_VALUE FROM b_bitrixcloud_option WHERE NAME = 'cdn_config_expire_time'").Scan(&expire); err != nil {
		t.Fatal(err)
	}
	if want := time.Now().Unix() + 86400*3650; expire < want-600 || expire > want+600 {
		t.Fatalf("cdn_config_expire_time = %d, want about now + 10 years (%d)", expire, want)
	}
	m.Exec(t, "oracle", "UPDATE b_lang SET DOC_ROOT = ''; "+
		"UPDATE b_bitrixcloud_option SET PARAM_VALUE = 0 WHERE NAME = 'cdn_config_active'; "+
		"UPDATE b_bitrixcloud_option SET PARAM_VALUE = ? WHERE NAME = 'cdn_config_expire_time'; "+
		"DELETE FROM b_module_to_module WHERE TO_CLASS = 'Bitrix\\\\Security\\\\HostRestriction'", expire)
	want := sums(t, m, "oracle")
	sameSums(t, sums(t, m, "site"), want)
	for table, n := range d.Rows {
		if want[table].Rows != int64(n) && table != "b_module_to_module" {
			t.Errorf("table %s: the reference has %d rows, the generator wrote %d", table, want[table].Rows, n)
		}
	}

	// The values a splitter gets wrong, read back.
	for i, v := range gen.SQLDumpTricky {
		var name string
		if err := got.QueryRow("SELECT NAME FROM b_iblock_element WHERE ID = ?", i+1).Scan(&name); err != nil {
			t.Fatal(err)
		}
		if name != v {
			t.Errorf("row %d: NAME %q, want %q", i+1, name, v)
		}
	}
	var bigText string
	if err := got.QueryRow("SELECT DETAIL_TEXT FROM b_iblock_element WHERE ID = ?", len(gen.SQLDumpTricky)+1).Scan(&bigText); err != nil {
		t.Fatal(err)
	}
	if bigText != gen.SQLDumpBigValue(1536<<10) {
		t.Errorf("the big value (%d bytes) came back as %d bytes, different", len(gen.SQLDumpBigValue(1536<<10)), len(bigText))
	}
	for _, id := range []int{1, 7, 11, 12, 399} {
		var blob []byte
		if err := got.QueryRow("SELECT CONTENT FROM b_file WHERE ID = ?", id).Scan(&blob); err != nil {
			t.Fatal(err)
		}
		if w := gen.SQLDumpBlob(id); !bytes.Equal(blob, w) || (w == nil) != (blob == nil) {
			t.Errorf("b_file %d: CONTENT %d bytes, want %d (nil %v)", id, len(blob), len(w), w == nil)
		}
	}
	var view string
	if err := got.QueryRow("SELECT VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'site' AND TABLE_NAME = 'v_active_elements' AND DEFINER = 'bitrix0@localhost'").Scan(&view); err != nil {
		t.Fatalf("the view with its DEFINER: %v", err)
	}

	// The site points at the new database.
	dbconn, settings := siteCredsFromPHP(t, root)
	wantCreds := map[string]string{"host": m.Addr, "login": testenv.MariaDBUser, "password": testenv.MariaDBPassword, "database": "site"}
	for k, v := range wantCreds {
		if dbconn[k] != v || settings[k] != v {
			t.Errorf("%s: dbconn.php %q, .settings.php %q, want %q", k, dbconn[k], settings[k], v)
		}
	}
	if settings["className"] != `\Bitrix\Main\DB\MysqliConnection` {
		t.Errorf(".settings.php className changed to %q", settings["className"])
	}
	// Everything else in dbconn.php is kept byte for byte.
	b, _ := os.ReadFile(filepath.Join(root, DBConnFile))
	if !bytes.HasPrefix(b, []byte("<?\r\ndefine(\"DBPersistent\", false);\n")) || !bytes.Contains(b, []byte("define(\"BX_UTF\", true);\n?>")) {
		t.Errorf("dbconn.php lost its other lines:\n%s", b)
	}

	// Dump and caches gone, other files kept.
	for _, p := range append(append([]string{}, d.Parts...), d.AfterConnect) {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there", p)
		}
	}
	for _, c := range CacheDirs {
		if _, err := os.Lstat(filepath.Join(root, "bitrix", c)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("bitrix/%s is still there", c)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "upload/resize_cache/iblock/1.jpg")); err != nil {
		t.Errorf("a file outside the cache directories was removed: %v", err)
	}
	noSecret(t, testenv.MariaDBPassword, filepath.Dir(opts.StateDir))

	// Run again: done already, nothing touched.
	res2, err := Run(ctxT(t), opts)
	if err != nil || !res2.AlreadyDone {
		t.Fatalf("second run: %+v, %v", res2, err)
	}
	sameSums(t, sums(t, m, "site"), want)
}

// noSecret fails if secret appears in any file under dir.
func noSecret(t testing.TB, secret, dir string) {
	t.Helper()
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the password", p)
		}
		return nil
	})
}

// Without --site-host the host-dependent fixes are skipped and said so;
// the DOC_ROOT fix needs no host.
func TestFixesSkippedWithoutSiteHost(t *testing.T) {
	m := testenv.StartMariaDB(t)
	root, _ := site(t, gen.SQLDumpOptions{Rows: 200, BigValue: -1})
	opts := options(t, m, "site", root)
	rec := &recorder{}
	opts.Progress = rec
	res, err := Run(ctxT(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Fixes) != 1 || res.Fixes[0] != FixDocRoot || len(res.Skipped) != 2 {
		t.Fatalf("fixes %v skipped %v", res.Fixes, res.Skipped)
	}
	if w := strings.Join(rec.warns, "\n"); !strings.Contains(w, string(FixCDN)) || !strings.Contains(w, string(FixHostRestriction)) || !strings.Contains(w, "--site-host") {
		t.Fatalf("warnings do not name the skipped fixes: %q", w)
	}
	var active string
	if err := m.DB(t, "site").QueryRow("SELECT PARAM_VALUE FROM b_bitrixcloud_option WHERE NAME = 'cdn_config_active'").Scan(&active); err != nil || active != "1" {
		t.Fatalf("cdn_config_active = %q, %v; want untouched 1", active, err)
	}
}
