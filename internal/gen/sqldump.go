package gen

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// SQLDumpOptions shape a generated Bitrix database dump.
type SQLDumpOptions struct {
	// Rows is the row count of the big table b_iblock_element (50,000
	// when 0).
	Rows int
	// PartSize is CBackup's part limit: a write that would bring a part
	// to this size goes to the next part (2,000,000,000 when 0).
	PartSize int64
	// BigValue is the size of one text value that makes a statement over
	// 1 MB on its own (1.5 MB when 0, none when negative).
	BigValue int
	// Files is the row count of b_file, whose rows carry BLOBs of up to
	// 40 KB (400 when 0).
	Files int
	// Seed makes the content; the same options give the same bytes.
	Seed uint64
}

// SQLDump describes a generated dump.
type SQLDump struct {
	Name         string
	Parts        []string // NAME.sql, NAME.sql.1, ...
	AfterConnect string
	// Rows is the number of rows of every table with data.
	Rows map[string]int
	// Empty lists the tables dumped without data (CREATE TABLE IF NOT
	// EXISTS); Views the views.
	Empty, Views []string
}

// Facts about the generated site the settings fixes look at.
const (
	SQLDumpOldHost    = "old.example.com"            // the CDN domain and the only allowed host
	SQLDumpOldDocRoot = "/home/bitrix/ext_www/site2" // b_lang DOC_ROOT of site s2
	SQLDumpDefiner    = "`bitrix0`@`localhost`"      // the views' DEFINER
)

// SQLDumpTricky are the NAME values of b_iblock_element rows 1..n: the
// strings a dump splitter gets wrong. Row n+1 holds the big value.
var SQLDumpTricky = []string{
	`it's a "quote"`,
	"semi;colon;",
	"ends with a semicolon;",
	"),(",
	"'),('",
	"a),(b),(c",
	");\n(",
	"line1\nline2\r\nline3\n",
	`back\slash\`,
	"nul\x00 and ctrl-Z \x1a",
	"Привет, мир; «ёлка» — ёЁ",
	"-- not a comment",
	"/* not a comment */ # nor this",
	`\'`,
	"",
	"tab\there",
	"a;\nINSERT INTO `b_option` VALUES ('x','y',NULL,NULL,NULL);",
	"`backticks` and \"double\" and 'single'",
}

// BitrixSQLDump writes a Bitrix database dump into dir (the site's
// bitrix/backup) as CBackup::MakeDump does: "-- Started", SET NAMES, per
// table a comment block, DROP TABLE IF EXISTS, the SHOW CREATE TABLE text;
// rows as multi-row INSERTs without a column list, flushed past 1,000,000
// bytes; numbers raw, BLOBs as 0x hex (” when empty), other values quoted
// and escaped like mysqli_real_escape_string; some tables as CREATE TABLE
// IF NOT EXISTS without data; views with DEFINER after the tables;
// "-- Finished" without a newline; parts cut before a write that would
// reach PartSize. It also writes NAME_after_connect.sql.
func BitrixSQLDump(dir, name string, o SQLDumpOptions) (*SQLDump, error) {
	if o.Rows <= 0 {
		o.Rows = 50000
	}
	if o.PartSize <= 0 {
		o.PartSize = 2000000000
	}
	if o.BigValue == 0 {
		o.BigValue = 1536 << 10
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("gen sqldump: %w", err)
	}
	w := &dumpWriter{dir: dir, base: name + ".sql", limit: o.PartSize}
	d := &SQLDump{Name: name, Rows: map[string]int{}}
	rng := rand.New(rand.NewPCG(o.Seed, 0x51ed))
	w.write("-- Started: 2026-11-20 03:00:00\n")
	w.write("SET NAMES 'utf8';\n")
	for _, t := range sqlTables(rng, o) {
		if t.empty {
			w.write("-- -----------------------------------\n-- Creating empty table " + t.name + "\n-- -----------------------------------\n" +
				strings.Replace(t.create, "CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1) + ";\n\n")
			d.Empty = append(d.Empty, t.name)
			continue
		}
		w.write("-- -----------------------------------\n-- Dumping table " + t.name + "\n-- -----------------------------------\n" +
			"DROP TABLE IF EXISTS `" + t.name + "`;\n" + t.create + ";\n\n")
		var ins bytes.Buffer
		n := 0
		for row := range t.rows {
			if ins.Len() == 0 {
				ins.WriteString("INSERT INTO `" + t.name + "` VALUES")
			} else {
				ins.WriteByte(',')
			}
			ins.WriteString("\n(")
			for i, v := range row {
				if i > 0 {
					ins.WriteString(", ")
				}
				writeSQLValue(&ins, v)
			}
			ins.WriteByte(')')
			n++
			if ins.Len() > 1000000 {
				ins.WriteString(";\n")
				w.write(ins.String())
				ins.Reset()
			}
		}
		if ins.Len() > 0 {
			ins.WriteString(";\n")
			w.write(ins.String())
		}
		d.Rows[t.name] = n
	}
	view := "v_active_elements"
	w.write("-- -----------------------------------\n-- Creating view " + view + "\n-- -----------------------------------\n" +
		"DROP VIEW IF EXISTS `" + view + "`;\n" +
		"CREATE ALGORITHM=UNDEFINED DEFINER=" + SQLDumpDefiner + " SQL SECURITY DEFINER VIEW `" + view + "` AS select `b_iblock_element`.`ID` AS `ID`,`b_iblock_element`.`NAME` AS `NAME` from `b_iblock_element` where `b_iblock_element`.`SORT` > 500;\n\n")
	d.Views = append(d.Views, view)
	w.write("-- Finished: 2026-11-20 03:10:00")
	if err := w.close(); err != nil {
		return nil, err
	}
	d.Parts = w.parts
	d.AfterConnect = filepath.Join(dir, name+"_after_connect.sql")
	if err := os.WriteFile(d.AfterConnect, []byte("SET NAMES 'utf8';\nALTER DATABASE `<DATABASE>` COLLATE utf8_unicode_ci;\n"), 0o644); err != nil {
		return nil, fmt.Errorf("gen sqldump: %w", err)
	}
	return d, nil
}

// rawNum is a number written as is (MakeDump writes numeric columns raw,
// FLOAT as the 6-digit text MySQL returns).
type rawNum string

func writeSQLValue(b *bytes.Buffer, v any) {
	switch v := v.(type) {
	case nil:
		b.WriteString("NULL")
	case int:
		b.WriteString(strconv.Itoa(v))
	case rawNum:
		b.WriteString(string(v))
	case []byte:
		if v == nil {
			b.WriteString("NULL")
		} else if len(v) == 0 {
			b.WriteString("''")
		} else {
			b.WriteString("0x")
			b.WriteString(hex.EncodeToString(v))
		}
	case string:
		b.WriteByte('\'')
		b.WriteString(MySQLEscape(v))
		b.WriteByte('\'')
	default:
		panic(fmt.Sprintf("gen sqldump: value of type %T", v))
	}
}

// MySQLEscape escapes s as mysqli_real_escape_string does: \0 \n \r \\ '
// " and \x1a get a backslash, so a quoted value never holds a raw newline.
func MySQLEscape(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0:
			b.WriteString(`\0`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '"':
			b.WriteString(`\"`)
		case 0x1a:
			b.WriteString(`\Z`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// dumpWriter appends writes to NAME.sql, NAME.sql.1, ... like
// CBackup::file_put_contents_ex: a write never splits.
type dumpWriter struct {
	dir, base string
	limit     int64
	f         *os.File
	size      int64
	parts     []string
	err       error
}

func (w *dumpWriter) write(s string) {
	if w.err != nil {
		return
	}
	if w.f == nil || w.size+int64(len(s)) >= w.limit && w.size > 0 {
		if w.f != nil {
			if w.err = w.f.Close(); w.err != nil {
				return
			}
		}
		p := filepath.Join(w.dir, w.base)
		if n := len(w.parts); n > 0 {
			p += "." + strconv.Itoa(n)
		}
		w.f, w.err = os.Create(p)
		if w.err != nil {
			return
		}
		w.parts = append(w.parts, p)
		w.size = 0
	}
	_, w.err = w.f.WriteString(s)
	w.size += int64(len(s))
}

func (w *dumpWriter) close() error {
	if w.f != nil {
		if err := w.f.Close(); w.err == nil {
			w.err = err
		}
	}
	if w.err != nil {
		return fmt.Errorf("gen sqldump: %w", w.err)
	}
	return nil
}

// BitrixSiteConfig writes the database settings of a site as a Bitrix
// backup carries them: bitrix/php_interface/dbconn.php with $DBLogin,
// $DBPassword and $DBName set to "******" ($DBHost kept), and
// bitrix/.settings.php as var_export writes it with login, password and
// database "******"; plus the cache directories a restore removes.
func BitrixSiteConfig(root string) error {
	files := map[string]string{
		"bitrix/php_interface/dbconn.php": "<?\r\ndefine(\"DBPersistent\", false);\n$DBType = \"mysql\";\n$DBHost = \"localhost\";\n" +
			"$DBLogin = \"******\";\n$DBPassword = \"******\";\n$DBName = \"******\";\n$DBDebug = false;\n$DBDebugToFile = false;\n\n" +
			"define(\"DELAY_DB_CONNECT\", true);\ndefine(\"CACHED_b_file\", 3600);\ndefine(\"BX_UTF\", true);\n?>",
		"bitrix/.settings.php": "<?php\nreturn array (\n  'utf_mode' => \n  array (\n    'value' => true,\n    'readonly' => true,\n  ),\n" +
			"  'cache_flags' => \n  array (\n    'value' => \n    array (\n      'config_options' => 3600,\n      'site_domain' => 3600,\n    ),\n    'readonly' => false,\n  ),\n" +
			"  'exception_handling' => \n  array (\n    'value' => \n    array (\n      'debug' => false,\n      'handled_errors_types' => 4437,\n      'log' => NULL,\n    ),\n    'readonly' => false,\n  ),\n" +
			"  'connections' => \n  array (\n    'value' => \n    array (\n      'default' => \n      array (\n" +
			"        'className' => '\\\\Bitrix\\\\Main\\\\DB\\\\MysqliConnection',\n        'host' => 'localhost',\n" +
			"        'database' => '******',\n        'login' => '******',\n        'password' => '******',\n        'options' => 2.0,\n      ),\n    ),\n    'readonly' => true,\n  ),\n" +
			"  'crypto' => \n  array (\n    'value' => \n    array (\n      'crypto_key' => 'a1b2c3d4e5f6',\n    ),\n    'readonly' => true,\n  ),\n);\n",
		"bitrix/cache/s1/menu/abc.php":     "<? // cached ?>",
		"bitrix/managed_cache/MYSQL/x.php": "<? // cached ?>",
		"bitrix/stack_cache/y.php":         "<? // cached ?>",
		"bitrix/tmp/restore.removed/z.txt": "tmp",
		"upload/resize_cache/iblock/1.jpg": "kept: only bitrix/resize_cache is removed",
		"bitrix/resize_cache/iblock/2.jpg": "resized",
	}
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("gen site config: %w", err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return fmt.Errorf("gen site config: %w", err)
		}
	}
	return nil
}
