package gen

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"strconv"
	"strings"
)

// sqlTable is one table of the generated database.
type sqlTable struct {
	name   string
	create string // SHOW CREATE TABLE text
	empty  bool   // dumped without data (CBackup::SkipTableData)
	rows   iter.Seq[[]any]
}

const tableTail = ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb3 COLLATE=utf8mb3_unicode_ci"

func createTable(name string, lines ...string) string {
	return "CREATE TABLE `" + name + "` (\n  " + strings.Join(lines, ",\n  ") + "\n" + tableTail
}

func rowsOf(rows [][]any) iter.Seq[[]any] {
	return func(yield func([]any) bool) {
		for _, r := range rows {
			if !yield(r) {
				return
			}
		}
	}
}

// cyrillic and latin words for generated text.
var sqlWords = strings.Fields("Битрикс каталог товар цена склад доставка заказ клиент новость статья ёлка " +
	"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore")

func sqlText(rng *rand.Rand, words int) string {
	var b strings.Builder
	for i := 0; i < words; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(sqlWords[rng.IntN(len(sqlWords))])
		switch rng.IntN(40) {
		case 0:
			b.WriteString(";")
		case 1:
			b.WriteString("'s")
		case 2:
			b.WriteString("),(")
		case 3:
			b.WriteString("\n")
		case 4:
			b.WriteString(`\`)
		}
	}
	return b.String()
}

// SQLDumpBlob is the CONTENT of b_file row id (nil for NULL; empty for
// every 7th row).
func SQLDumpBlob(id int) []byte {
	switch {
	case id%11 == 0:
		return nil
	case id%7 == 0:
		return []byte{}
	}
	rng := rand.New(rand.NewPCG(uint64(id), 0xb10b))
	b := make([]byte, 1+rng.IntN(40000))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// SQLDumpBigValue is the DETAIL_TEXT of b_iblock_element row
// len(SQLDumpTricky)+1: n bytes that need escaping all along.
func SQLDumpBigValue(n int) string {
	const unit = "Большое значение; 'quoted' \"dq\" ),( \\ line\n"
	s := strings.Repeat(unit, n/len(unit)+1)
	s = s[:n]
	for len(s) > 0 && s[len(s)-1]&0xc0 == 0x80 { // do not end inside a UTF-8 sequence
		s = s[:len(s)-1]
	}
	return strings.TrimRight(s, "\xd0\xd1")
}

func sqlTables(rng *rand.Rand, o SQLDumpOptions) []sqlTable {
	var ts []sqlTable

	// b_option: the settings restore.php's fixes read.
	opt := [][]any{
		{"main", "~ft_b_search_content_text", "a:1:{s:18:\"SEARCHABLE_CONTENT\";b:1;}", nil, nil},
		{"main", "server_name", SQLDumpOldHost, nil, nil},
		{"security", "restriction_hosts_hosts", SQLDumpOldHost + "\r\nwww." + SQLDumpOldHost, nil, nil},
	}
	for i := 0; i < 300; i++ {
		opt = append(opt, []any{"module" + strconv.Itoa(i%17), fmt.Sprintf("option_%04d", i), sqlText(rng, 5+rng.IntN(30)), "описание; \"desc\"", "s1"})
	}
	ts = append(ts, sqlTable{name: "b_option", rows: rowsOf(opt), create: createTable("b_option",
		"`MODULE_ID` varchar(50) NOT NULL",
		"`NAME` varchar(100) NOT NULL",
		"`VALUE` mediumtext DEFAULT NULL",
		"`DESCRIPTION` varchar(255) DEFAULT NULL",
		"`SITE_ID` char(2) DEFAULT NULL",
		"PRIMARY KEY (`MODULE_ID`,`NAME`)")})

	ts = append(ts, sqlTable{name: "b_lang", create: createTable("b_lang",
		"`LID` char(2) NOT NULL",
		"`SORT` int(18) NOT NULL DEFAULT 100",
		"`DEF` char(1) NOT NULL DEFAULT 'N'",
		"`ACTIVE` char(1) NOT NULL DEFAULT 'Y'",
		"`NAME` varchar(50) NOT NULL",
		"`DIR` varchar(50) NOT NULL",
		"`DOC_ROOT` varchar(255) DEFAULT NULL",
		"`SERVER_NAME` varchar(255) DEFAULT NULL",
		"PRIMARY KEY (`LID`)"), rows: rowsOf([][]any{
		{"s1", 1, "Y", "Y", "Интернет-магазин", "/", "", SQLDumpOldHost},
		{"s2", 2, "N", "Y", "Site 2", "/", SQLDumpOldDocRoot, "two." + SQLDumpOldHost},
	})})

	ts = append(ts, sqlTable{name: "b_bitrixcloud_option", create: createTable("b_bitrixcloud_option",
		"`ID` int(11) NOT NULL AUTO_INCREMENT",
		"`NAME` varchar(50) NOT NULL",
		"`SORT` int(11) NOT NULL",
		"`PARAM_KEY` varchar(50) DEFAULT NULL",
		"`PARAM_VALUE` varchar(200) DEFAULT NULL",
		"PRIMARY KEY (`ID`)",
		"KEY `ix_b_bitrixcloud_option_1` (`NAME`)"), rows: rowsOf([][]any{
		{1, "cdn_config_active", 0, nil, "1"},
		{2, "cdn_config_domain", 0, nil, SQLDumpOldHost},
		{3, "cdn_config_expire_time", 0, nil, "1790000000"},
	})})

	ts = append(ts, sqlTable{name: "b_module_to_module", create: createTable("b_module_to_module",
		"`ID` int(11) NOT NULL AUTO_INCREMENT",
		"`TIMESTAMP_X` timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp()",
		"`SORT` int(18) NOT NULL DEFAULT 100",
		"`FROM_MODULE_ID` varchar(50) NOT NULL",
		"`MESSAGE_ID` varchar(255) NOT NULL",
		"`TO_MODULE_ID` varchar(50) NOT NULL",
		"`TO_PATH` varchar(255) DEFAULT NULL",
		"`TO_CLASS` varchar(255) DEFAULT NULL",
		"`TO_METHOD` varchar(255) DEFAULT NULL",
		"`TO_METHOD_ARG` varchar(255) DEFAULT NULL",
		"`VERSION` int(18) DEFAULT NULL",
		"PRIMARY KEY (`ID`)",
		"KEY `ix_module_to_module` (`FROM_MODULE_ID`(20),`MESSAGE_ID`(20),`TO_MODULE_ID`(20),`TO_CLASS`(20),`TO_METHOD`(20))"), rows: rowsOf([][]any{
		{1, "2026-11-01 10:00:00", 100, "main", "OnPageStart", "security", "", `Bitrix\Security\HostRestriction`, "onPageStart", "", 2},
		{2, "2026-11-01 10:00:00", 100, "main", "OnBeforeProlog", "main", "/modules/main/tools.php", "", "CheckIt", "a:0:{}", 1},
		{3, "2026-11-01 10:00:00", 50, "iblock", "OnAfterIBlockElementAdd", "search", "", `\Bitrix\Search\Indexer`, "Add", "", 2},
	})})

	nFiles := o.Files
	if nFiles <= 0 {
		nFiles = 400
	}
	var files [][]any
	for id := 1; id <= nFiles; id++ {
		files = append(files, []any{id, "iblock", 100 + id%5, "image/jpeg", fmt.Sprintf("%03x", id%256), fmt.Sprintf("file_%d.jpg", id), "оригинал " + strconv.Itoa(id) + ".jpg", SQLDumpBlob(id), []byte(fmt.Sprintf("%016x", id*7919))})
	}
	ts = append(ts, sqlTable{name: "b_file", rows: rowsOf(files), create: createTable("b_file",
		"`ID` int(18) NOT NULL AUTO_INCREMENT",
		"`MODULE_ID` varchar(50) DEFAULT NULL",
		"`HEIGHT` int(18) DEFAULT NULL",
		"`CONTENT_TYPE` varchar(255) DEFAULT 'IMAGE'",
		"`SUBDIR` varchar(255) DEFAULT NULL",
		"`FILE_NAME` varchar(255) NOT NULL",
		"`ORIGINAL_NAME` varchar(255) DEFAULT NULL",
		"`CONTENT` longblob DEFAULT NULL",
		"`HASH` binary(16) DEFAULT NULL",
		"PRIMARY KEY (`ID`)")})

	big := o.BigValue
	ts = append(ts, sqlTable{name: "b_iblock_element", create: createTable("b_iblock_element",
		"`ID` int(11) NOT NULL AUTO_INCREMENT",
		"`IBLOCK_ID` int(11) NOT NULL DEFAULT 0",
		"`NAME` varchar(255) NOT NULL",
		"`CODE` varchar(255) DEFAULT NULL",
		"`PREVIEW_TEXT` text DEFAULT NULL",
		"`DETAIL_TEXT` longtext DEFAULT NULL",
		"`SORT` int(11) NOT NULL DEFAULT 500",
		"`PRICE` decimal(18,2) DEFAULT NULL",
		"`RATING` float DEFAULT NULL",
		"`DATE_CREATE` datetime DEFAULT NULL",
		"PRIMARY KEY (`ID`)",
		"KEY `ix_iblock_element_code` (`IBLOCK_ID`,`CODE`)"),
		rows: func(yield func([]any) bool) {
			for id := 1; id <= o.Rows; id++ {
				name := sqlText(rng, 2+rng.IntN(6))
				if id <= len(SQLDumpTricky) {
					name = SQLDumpTricky[id-1]
				}
				detail := any(sqlText(rng, rng.IntN(60)))
				if id == len(SQLDumpTricky)+1 && big > 0 {
					detail = SQLDumpBigValue(big)
				} else if id%13 == 0 {
					detail = nil
				}
				row := []any{id, 1 + id%9, name, fmt.Sprintf("code-%d", id), sqlText(rng, 3+rng.IntN(20)), detail,
					rng.IntN(1000), rawNum(fmt.Sprintf("%d.%02d", rng.IntN(100000), rng.IntN(100))),
					rawNum(strconv.FormatFloat(float64(float32(rng.Float64()*1000)), 'g', 6, 32)),
					fmt.Sprintf("2026-%02d-%02d %02d:%02d:%02d", 1+id%12, 1+id%28, id%24, id%60, (id*7)%60)}
				if !yield(row) {
					return
				}
			}
		}})

	var search [][]any
	for id := 1; id <= 2000; id++ {
		search = append(search, []any{id, fmt.Sprintf("%032x", id*104729), sqlText(rng, 20+rng.IntN(80))})
	}
	ts = append(ts, sqlTable{name: "b_search_content_text", rows: rowsOf(search), create: createTable("b_search_content_text",
		"`SEARCH_CONTENT_ID` int(11) NOT NULL",
		"`SEARCH_CONTENT_MD5` char(32) NOT NULL",
		"`SEARCHABLE_CONTENT` longtext DEFAULT NULL",
		"PRIMARY KEY (`SEARCH_CONTENT_ID`)",
		"FULLTEXT KEY `IXF_B_SEARCH_CONTENT_TEXT` (`SEARCHABLE_CONTENT`)")})

	// A table without any key, rows repeated: importing a statement twice
	// would double them.
	ts = append(ts, sqlTable{name: "b_perf_hit", create: createTable("b_perf_hit",
		"`DATE_HIT` datetime DEFAULT NULL",
		"`REQUEST_URI` text DEFAULT NULL",
		"`QUERIES` int(11) DEFAULT NULL",
		"`TIME` float DEFAULT NULL"),
		rows: func(yield func([]any) bool) {
			for i := 0; i < o.Rows; i++ {
				n := i - i%3 // three identical rows at a time
				row := []any{fmt.Sprintf("2026-11-%02d 12:00:00", 1+n%28), fmt.Sprintf("/catalog/item-%d/?q=a;b),(c", n), n % 97, rawNum(strconv.Itoa(n%50) + ".5")}
				if !yield(row) {
					return
				}
			}
		}})

	for _, name := range []string{"b_stat_hit", "b_event_log"} {
		ts = append(ts, sqlTable{name: name, empty: true, create: createTable(name,
			"`ID` int(18) NOT NULL AUTO_INCREMENT",
			"`TIMESTAMP_X` datetime DEFAULT NULL",
			"`DESCRIPTION` mediumtext DEFAULT NULL",
			"PRIMARY KEY (`ID`)")})
	}
	return ts
}
