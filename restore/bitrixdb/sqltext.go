package bitrixdb

import (
	"bytes"
	"strings"
)

// kind is what a statement of the dump does, as far as resuming and the
// error paths care.
type kind int

const (
	kOther       kind = iota
	kSet              // SET NAMES ... and other session settings
	kDropTable        // DROP TABLE IF EXISTS `T`
	kCreateTable      // CREATE TABLE `T` (not IF NOT EXISTS)
	kCreateTableIfNotExists
	kInsert     // INSERT INTO `T` VALUES ...
	kDropView   // DROP VIEW IF EXISTS `V`
	kCreateView // CREATE ... VIEW `V` AS ...
)

// classify reads the leading keywords of a statement and the name of the
// table or view it touches.
func classify(text []byte) (kind, string) {
	w := words(text, 24)
	at := func(i int, s ...string) bool {
		if i+len(s) > len(w) {
			return false
		}
		for k, x := range s {
			if !strings.EqualFold(w[i+k], x) {
				return false
			}
		}
		return true
	}
	last := func() string {
		for _, x := range w {
			if strings.HasPrefix(x, "`") {
				return unquoteIdent(x)
			}
		}
		return ""
	}
	switch {
	case at(0, "SET"):
		return kSet, ""
	case at(0, "INSERT"):
		return kInsert, last()
	case at(0, "DROP", "TABLE"):
		return kDropTable, last()
	case at(0, "DROP", "VIEW"):
		return kDropView, last()
	case at(0, "CREATE", "TABLE", "IF", "NOT", "EXISTS"):
		return kCreateTableIfNotExists, last()
	case at(0, "CREATE", "TABLE"):
		return kCreateTable, last()
	case at(0, "CREATE"):
		for i, x := range w {
			if strings.EqualFold(x, "VIEW") && i+1 < len(w) {
				return kCreateView, unquoteIdent(w[i+1])
			}
		}
	}
	return kOther, ""
}

// words splits the start of a statement into up to n words: runs of
// letters, digits and '_', `backticked` names whole, anything else alone.
func words(b []byte, n int) []string {
	var out []string
	i := 0
	for i < len(b) && len(out) < n {
		c := b[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '`':
			j := i + 1
			for j < len(b) {
				if b[j] == '`' {
					if j+1 < len(b) && b[j+1] == '`' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			out = append(out, string(b[i:min(j+1, len(b))]))
			i = j + 1
		case isWord(c):
			j := i
			for j < len(b) && isWord(b[j]) {
				j++
			}
			out = append(out, string(b[i:j]))
			i = j
		default:
			out = append(out, string(c))
			i++
		}
	}
	return out
}

func isWord(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func unquoteIdent(s string) string {
	if len(s) >= 2 && s[0] == '`' && s[len(s)-1] == '`' {
		return strings.ReplaceAll(s[1:len(s)-1], "``", "`")
	}
	return s
}

// quoteIdent quotes a name for SQL with backticks.
func quoteIdent(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

// skipQuoted returns the index after the quoted string, identifier or
// name that starts at b[i] (a quote or backtick), honouring backslash
// escapes inside quotes; len(b) if it does not end.
func skipQuoted(b []byte, i int) int {
	q := b[i]
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			if q != '`' {
				j++
			}
		case q:
			return j + 1
		}
	}
	return len(b)
}

// splitInsert splits "INSERT INTO `T` [(...)] VALUES (...),(...)" into the
// part up to and including VALUES and the rows, each "(...)" whole, with
// the same lexer rules as the scanner: a value holding "),(" or ';' stays
// in its row. ok is false if the statement has another shape.
func splitInsert(text []byte) (prefix []byte, rows [][]byte, ok bool) {
	i := 0
	for {
		if i >= len(text) {
			return nil, nil, false
		}
		c := text[i]
		if c == '\'' || c == '"' || c == '`' {
			i = skipQuoted(text, i)
			continue
		}
		if (c == 'V' || c == 'v') && i+6 <= len(text) && bytes.EqualFold(text[i:i+6], []byte("VALUES")) &&
			(i == 0 || !isWord(text[i-1])) && (i+6 == len(text) || !isWord(text[i+6])) {
			i += 6
			break
		}
		i++
	}
	prefix = text[:i]
	for {
		for i < len(text) && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n') {
			i++
		}
		if i >= len(text) || text[i] != '(' {
			return nil, nil, false
		}
		start, depth := i, 0
		for i < len(text) {
			c := text[i]
			if c == '\'' || c == '"' || c == '`' {
				i = skipQuoted(text, i)
				continue
			}
			i++
			if c == '(' {
				depth++
			} else if c == ')' {
				if depth--; depth == 0 {
					break
				}
			}
		}
		if depth != 0 {
			return nil, nil, false
		}
		rows = append(rows, text[start:i])
		for i < len(text) && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n') {
			i++
		}
		if i == len(text) {
			return prefix, rows, true
		}
		if text[i] != ',' {
			return nil, nil, false
		}
		i++
	}
}

// stripFullText drops the FULLTEXT KEY lines of a CREATE TABLE statement
// (SHOW CREATE TABLE puts each key on its own line) and the comma the
// line before then no longer needs, as restore.php does when the server
// refuses full-text indexes.
func stripFullText(text []byte) ([]byte, bool) {
	lines := bytes.Split(text, []byte("\n"))
	out := make([][]byte, 0, len(lines))
	changed := false
	for _, l := range lines {
		t := bytes.TrimSpace(l)
		if bytes.HasPrefix(bytes.ToUpper(t), []byte("FULLTEXT KEY")) || bytes.HasPrefix(bytes.ToUpper(t), []byte("FULLTEXT INDEX")) {
			changed = true
			continue
		}
		if len(t) > 0 && t[0] == ')' && len(out) > 0 {
			prev := bytes.TrimRight(out[len(out)-1], " \t\r")
			if bytes.HasSuffix(prev, []byte(",")) {
				out[len(out)-1] = prev[:len(prev)-1]
			}
		}
		out = append(out, l)
	}
	return bytes.Join(out, []byte("\n")), changed
}

// hasFullText reports whether a CREATE TABLE statement declares a
// full-text index on a line of its own.
func hasFullText(text []byte) bool {
	for l := range bytes.SplitSeq(text, []byte("\n")) {
		t := bytes.ToUpper(bytes.TrimSpace(l))
		if bytes.HasPrefix(t, []byte("FULLTEXT KEY")) || bytes.HasPrefix(t, []byte("FULLTEXT INDEX")) {
			return true
		}
	}
	return false
}

// stripDefiner removes the DEFINER=user@host clause from the head of a
// CREATE VIEW, so that the importing user becomes the definer.
func stripDefiner(text []byte) ([]byte, bool) {
	head := text[:min(len(text), 1024)]
	i := bytes.Index(bytes.ToUpper(head), []byte("DEFINER="))
	if i < 0 {
		return text, false
	}
	j := i + len("DEFINER=")
	for j < len(text) && text[j] != ' ' && text[j] != '\t' && text[j] != '\n' {
		if text[j] == '`' || text[j] == '\'' || text[j] == '"' {
			j = skipQuoted(text, j)
			continue
		}
		j++
	}
	out := make([]byte, 0, len(text))
	out = append(out, text[:i]...)
	out = append(out, bytes.TrimLeft(text[j:], " \t")...)
	return out, true
}
