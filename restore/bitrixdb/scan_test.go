package bitrixdb

import (
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/haul-dev/haul/internal/gen"
)

func scanAll(t *testing.T, src string, bufSize, limit int) ([]statement, []string, error) {
	t.Helper()
	sc := newScannerSize(strings.NewReader(src), 0, limit, bufSize)
	var sts []statement
	var texts []string
	for i := 0; i < 100000; i++ {
		s, err := sc.next()
		if err == io.EOF {
			return sts, texts, nil
		}
		if err != nil {
			return sts, texts, err
		}
		texts = append(texts, string(s.text))
		sts = append(sts, s)
	}
	t.Fatal("scanner does not end")
	return nil, nil, nil
}

// Values that hold ';', "),(", quotes, escaped newlines and comment
// markers stay inside their statement, at every buffer size (tokens cut
// at every place), and the offsets chain from statement to statement.
func TestScannerSplitsOnlyAtStatementEnds(t *testing.T) {
	var want []string
	var b strings.Builder
	b.WriteString("-- Started: 2026-11-20 03:00:00\nSET NAMES 'utf8';\n")
	want = append(want, "SET NAMES 'utf8'")
	b.WriteString("-- -----------------------------------\n-- Dumping table T; it's here\n-- -----------------------------------\nDROP TABLE IF EXISTS `T`;\n")
	want = append(want, "DROP TABLE IF EXISTS `T`")
	create := "CREATE TABLE `T` (\n  `ID` int NOT NULL,\n  `V` text DEFAULT 'a;\\nb',\n  PRIMARY KEY (`ID`)\n) ENGINE=InnoDB"
	b.WriteString(create + ";\n\n")
	want = append(want, create)
	ins := "INSERT INTO `T` VALUES"
	for i, v := range gen.SQLDumpTricky {
		if i > 0 {
			ins += ","
		}
		ins += "\n(" + string(rune('0'+i%10)) + ", '" + gen.MySQLEscape(v) + "', 0x00ff, NULL)"
	}
	b.WriteString(ins + ";\n")
	want = append(want, ins)
	b.WriteString("INSERT INTO `semi;name` VALUES\n('x;');\r\n")
	want = append(want, "INSERT INTO `semi;name` VALUES\n('x;')")
	b.WriteString("/* block; comment */ SELECT 1;\n")
	want = append(want, "SELECT 1")
	b.WriteString("-- Finished: 2026-11-20 03:10:00")
	src := b.String()
	for _, size := range []int{16, 17, 23, 64, 4096} {
		sts, got, err := scanAll(t, src, size, 0)
		if err != nil {
			t.Fatalf("buffer %d: %v", size, err)
		}
		if len(got) != len(want) {
			t.Fatalf("buffer %d: %d statements, want %d: %q", size, len(got), len(want), got)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("buffer %d: statement %d\n got %q\nwant %q", size, i, got[i], want[i])
			}
		}
		var off int64
		for i, s := range sts {
			if s.start != off {
				t.Fatalf("buffer %d: statement %d starts at %d, the previous ended at %d", size, i, s.start, off)
			}
			off = s.end
			if !strings.HasPrefix(src[s.start:s.end], "") || !strings.Contains(src[s.start:s.end], want[i]) {
				t.Fatalf("buffer %d: statement %d's bytes %d-%d do not hold it", size, i, s.start, s.end)
			}
		}
	}
}

// Random values escaped as mysqli does never end a statement early.
func TestScannerRandomValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{";", "\n", "\r", "'", "\"", "\\", "),(", "(", ")", "`", "--", " ", "#", "/*", "*/", "\x00", "\x1a", "я", "a"}
	for round := 0; round < 200; round++ {
		var want []string
		var b strings.Builder
		for s := 0; s < 1+rng.IntN(5); s++ {
			stmt := "INSERT INTO `t` VALUES"
			for r := 0; r < 1+rng.IntN(4); r++ {
				var v strings.Builder
				for k := 0; k < rng.IntN(12); k++ {
					v.WriteString(alphabet[rng.IntN(len(alphabet))])
				}
				if r > 0 {
					stmt += ","
				}
				stmt += "\n(" + "'" + gen.MySQLEscape(v.String()) + "')"
			}
			want = append(want, stmt)
			b.WriteString(stmt + ";\n")
		}
		_, got, err := scanAll(t, b.String(), 16+rng.IntN(40), 0)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "\x00|") != strings.Join(want, "\x00|") {
			t.Fatalf("round %d:\n got %q\nwant %q", round, got, want)
		}
	}
}

// A statement longer than the limit is counted, not kept; the scanner
// goes on after it.
func TestScannerOverLimit(t *testing.T) {
	big := "INSERT INTO `t` VALUES\n('" + strings.Repeat("x;", 3<<20) + "');\n"
	src := big + "SELECT 2;\n"
	sts, got, err := scanAll(t, src, 4096, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 2 || !sts[0].tooLarge || sts[0].size != int64(len(big)-2) || len(sts[0].text) > headKeep || got[1] != "SELECT 2" {
		t.Fatalf("got %d statements, first tooLarge=%v size=%d (want %d), text %d bytes; second %q", len(sts), sts[0].tooLarge, sts[0].size, len(big)-2, len(sts[0].text), got)
	}
}

// A dump cut inside a statement is an error, not a silent end.
func TestScannerTruncated(t *testing.T) {
	_, _, err := scanAll(t, "SET NAMES 'utf8';\nINSERT INTO `t` VALUES\n('abc", 4096, 0)
	if !errors.Is(err, errTruncated) {
		t.Fatalf("err = %v, want errTruncated", err)
	}
}

func TestSplitInsert(t *testing.T) {
	text := "INSERT INTO `t` VALUES\n(1, 'a),(b', 0x00),\n(2, 'x\\'),(\\'y', NULL),\n(3, ');\\n(', 'VALUES')"
	prefix, rows, ok := splitInsert([]byte(text))
	if !ok || string(prefix) != "INSERT INTO `t` VALUES" || len(rows) != 3 {
		t.Fatalf("ok=%v prefix=%q rows=%q", ok, prefix, rows)
	}
	want := []string{"(1, 'a),(b', 0x00)", "(2, 'x\\'),(\\'y', NULL)", "(3, ');\\n(', 'VALUES')"}
	for i := range want {
		if string(rows[i]) != want[i] {
			t.Fatalf("row %d = %q, want %q", i, rows[i], want[i])
		}
	}
	if _, _, ok := splitInsert([]byte("INSERT INTO `t` SELECT 1")); ok {
		t.Fatal("an INSERT ... SELECT was split")
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		text string
		k    kind
		name string
	}{
		{"SET NAMES 'utf8'", kSet, ""},
		{"DROP TABLE IF EXISTS `b_x`", kDropTable, "b_x"},
		{"CREATE TABLE `b_x` (\n `ID` int)", kCreateTable, "b_x"},
		{"CREATE TABLE IF NOT EXISTS `b_stat` (`ID` int)", kCreateTableIfNotExists, "b_stat"},
		{"INSERT INTO `we``ird` VALUES (1)", kInsert, "we`ird"},
		{"DROP VIEW IF EXISTS `v`", kDropView, "v"},
		{"CREATE ALGORITHM=UNDEFINED DEFINER=`a`@`localhost` SQL SECURITY DEFINER VIEW `v` AS select 1", kCreateView, "v"},
		{"ALTER DATABASE `x` COLLATE utf8_unicode_ci", kOther, ""},
	} {
		k, name := classify([]byte(c.text))
		if k != c.k || name != c.name {
			t.Errorf("%q: kind %d %q, want %d %q", c.text, k, name, c.k, c.name)
		}
	}
}

func TestStripFullTextAndDefiner(t *testing.T) {
	in := "CREATE TABLE `t` (\n  `ID` int NOT NULL,\n  `C` text,\n  PRIMARY KEY (`ID`),\n  FULLTEXT KEY `f` (`C`)\n) ENGINE=InnoDB"
	out, ok := stripFullText([]byte(in))
	want := "CREATE TABLE `t` (\n  `ID` int NOT NULL,\n  `C` text,\n  PRIMARY KEY (`ID`)\n) ENGINE=InnoDB"
	if !ok || string(out) != want {
		t.Fatalf("stripFullText:\n%s\nwant\n%s", out, want)
	}
	v := "CREATE ALGORITHM=UNDEFINED DEFINER=`bitrix0`@`localhost` SQL SECURITY DEFINER VIEW `v` AS select 1"
	out, ok = stripDefiner([]byte(v))
	if !ok || string(out) != "CREATE ALGORITHM=UNDEFINED SQL SECURITY DEFINER VIEW `v` AS select 1" {
		t.Fatalf("stripDefiner: %q", out)
	}
}
