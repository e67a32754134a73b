package integrity

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// maxSumLine bounds one line of a sum file.
const maxSumLine = 1 << 20

// sumFileAlgos maps the names of coreutils sum files and the endings of
// per-file sum files (lowercase) to their algorithm. Algorithms haul does
// not compute are listed so that their files are still recognised as
// reference files, not parts.
var (
	sumFileAlgos = map[string]string{
		"sha256sums": SHA256, "sha512sums": SHA512, "sha1sums": SHA1, "md5sums": MD5,
		"sha224sums": "sha224", "sha384sums": "sha384", "b2sums": "blake2b",
	}
	sumExtAlgos = map[string]string{
		".sha256": SHA256, ".sha256sum": SHA256, ".sha512": SHA512, ".sha512sum": SHA512,
		".sha1": SHA1, ".sha1sum": SHA1, ".md5": MD5, ".md5sum": MD5,
		".sha224": "sha224", ".sha224sum": "sha224", ".sha384": "sha384", ".sha384sum": "sha384",
	}
	// bsdTags maps the tag of a BSD-style line (coreutils --tag, BSD
	// md5/sha256, openssl dgst) to the algorithm.
	bsdTags = map[string]string{
		"SHA256": SHA256, "SHA2-256": SHA256, "SHA512": SHA512, "SHA2-512": SHA512,
		"SHA1": SHA1, "MD5": MD5, "SHA224": "sha224", "SHA384": "sha384",
	}
	// algoByHexLen guesses the algorithm of a bare hash from its length.
	algoByHexLen = map[int]string{32: MD5, 40: SHA1, 64: SHA256, 128: SHA512}
)

// IsReferenceFile reports whether a file name (or path, or URL path) names
// a reference file rather than a part, by its base name:
//
//   - coreutils sum files: SHA256SUMS, SHA512SUMS, SHA1SUMS, MD5SUMS (also
//     SHA224SUMS, SHA384SUMS, B2SUMS), in any case, optionally with .txt;
//   - per-file sum files: NAME.sha256, NAME.sha512, NAME.sha1, NAME.md5 and
//     the same with "sum" appended (NAME.sha256sum), any case;
//   - haul manifests: NAME.haul.json.
func IsReferenceFile(name string) bool {
	base := strings.ToLower(path.Base(name))
	if IsManifestFile(base) {
		return true
	}
	if _, ok := sumFileAlgos[strings.TrimSuffix(base, ".txt")]; ok {
		return true
	}
	ext := path.Ext(base)
	_, ok := sumExtAlgos[ext]
	return ok && len(base) > len(ext)
}

// IsManifestFile reports whether name names a haul manifest (*.haul.json).
func IsManifestFile(name string) bool {
	return strings.HasSuffix(strings.ToLower(path.Base(name)), ".haul.json")
}

// ParseReferenceFile reads a reference file of either kind: a haul
// manifest when IsManifestFile(fileName), else a sum file. It returns the
// references per part base name.
func ParseReferenceFile(fileName string, r io.Reader) (map[string][]Reference, error) {
	if IsManifestFile(fileName) {
		return ManifestReferences(fileName, r)
	}
	return ParseSumFile(fileName, r)
}

// sumEntry is one accepted line of a sum file, kept until conflicts
// between lines are resolved.
type sumEntry struct {
	key    string // part base name
	algo   string
	sum    string // lowercase hex
	hasDir bool   // the line named the part inside a directory
	line   int
}

// ParseSumFile reads a coreutils-style sum file and returns the references
// it states, per part base name. fileName is the file's name (or path;
// only its base name is used, and becomes every reference's Origin).
//
// Lines are in GNU form ("HASH  NAME", "HASH *NAME"), BSD form
// ("SHA256 (NAME) = HASH", also openssl's "SHA256(NAME)= HASH"), or a bare
// "HASH" in a per-file sum file (NAME.sha256 holding only a hash applies
// to NAME, as does a line naming "-", standard input). A line starting
// with a backslash has an escaped name (\\ and \n, as coreutils writes).
// Blank lines and lines starting with '#' are skipped; CRLF endings are
// accepted.
//
// The algorithm is the BSD tag when there is one, else the one the file
// name implies (SHA256SUMS, x.sha256), else the one the hash length
// implies (32 hex digits md5, 40 sha1, 64 sha256, 128 sha512).
//
// Names are matched by base name, because the parts of a set sit in one
// directory: "./site.tar.gz" and "backup/site.tar.gz" both state
// something about the part site.tar.gz. When lines disagree about one
// base name, a line without a directory wins; if several lines without a
// directory disagree the file contradicts itself and that is an error;
// if only lines with (different) directories disagree, they describe
// files elsewhere and that name gets no reference from this file.
//
// A line that cannot be read returns a *SumFileError naming the file and
// the line.
func ParseSumFile(fileName string, r io.Reader) (map[string][]Reference, error) {
	origin := originName(fileName)
	fileAlgo, implied := sumFileNameAlgo(origin)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxSumLine)
	var entries []sumEntry
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSuffix(sc.Text(), "\r")
		if lineNo == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e, skip, err := parseSumLine(line, fileAlgo, implied)
		if err != nil {
			return nil, &SumFileError{File: origin, Line: lineNo, Err: err}
		}
		if skip {
			continue
		}
		e.line = lineNo
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &SumFileError{File: origin, Line: lineNo + 1, Err: fmt.Errorf("line longer than %d bytes", maxSumLine)}
		}
		return nil, fmt.Errorf("read %s: %w", origin, err)
	}
	return resolveSumEntries(origin, entries)
}

// resolveSumEntries settles disagreements between lines (see ParseSumFile)
// and builds the references in line order.
func resolveSumEntries(origin string, entries []sumEntry) (map[string][]Reference, error) {
	// The first line of each (name, algorithm) and the lines after it
	// for the few named again: a list per name cost some 16 MB of a
	// 100,000-line SHA256SUMS at once.
	type slot struct{ key, algo string }
	first := make(map[slot]int, len(entries))
	again := map[slot][]int{}
	for i, e := range entries {
		s := slot{e.key, e.algo}
		if _, ok := first[s]; ok {
			again[s] = append(again[s], i)
		} else {
			first[s] = i
		}
	}
	out := make(map[string][]Reference, len(first))
	for i, e := range entries {
		s := slot{e.key, e.algo}
		if first[s] != i {
			continue
		}
		var plain, all []sumEntry
		for _, k := range append([]int{i}, again[s]...) {
			e := entries[k]
			all = append(all, e)
			if !e.hasDir {
				plain = append(plain, e)
			}
		}
		chosen := ""
		switch {
		case len(plain) > 0:
			for _, e := range plain[1:] {
				if e.sum != plain[0].sum {
					return nil, &SumFileError{File: origin, Line: e.line,
						Err: fmt.Errorf("%s is listed again with another %s (first on line %d)", s.key, s.algo, plain[0].line)}
				}
			}
			chosen = plain[0].sum
		default:
			chosen = all[0].sum
			for _, e := range all[1:] {
				if e.sum != chosen {
					chosen = "" // files of that name in several directories
					break
				}
			}
		}
		if chosen != "" {
			out[s.key] = append(out[s.key], Reference{Algo: s.algo, Sum: chosen, Origin: origin})
		}
	}
	return out, nil
}

// parseSumLine reads one non-blank, non-comment line. skip is true for a
// valid line that states nothing about a part (standard input in a file
// that implies no name).
func parseSumLine(line, fileAlgo, implied string) (e sumEntry, skip bool, err error) {
	line = strings.TrimLeft(line, " \t")
	escaped := strings.HasPrefix(line, "\\")
	if escaped {
		line = line[1:]
	}
	var tag, sum, name string
	hexEnd := 0
	for hexEnd < len(line) && isHexDigit(line[hexEnd]) {
		hexEnd++
	}
	switch {
	case hexEnd == len(line) || hexEnd > 0 && strings.TrimSpace(line[hexEnd:]) == "":
		// A bare hash, as in a per-file sum file.
		sum = line[:hexEnd]
	case hexEnd > 0 && (line[hexEnd] == ' ' || line[hexEnd] == '\t'):
		// GNU: HASH, one blank, then ' ' (text) or '*' (binary), then NAME.
		sum = line[:hexEnd]
		i := hexEnd + 1
		if i < len(line) && (line[i] == ' ' || line[i] == '*') {
			i++
		}
		name = line[i:]
		if name == "" {
			return e, false, errors.New("no file name after the hash")
		}
	default:
		tag, name, sum, err = parseBSDLine(line)
		if err != nil {
			return e, false, err
		}
	}
	if escaped {
		if name, err = unescapeName(name); err != nil {
			return e, false, err
		}
	}

	algo := fileAlgo
	if tag != "" {
		algo = bsdTags[strings.ToUpper(tag)]
		if algo == "" {
			algo = strings.ToLower(tag)
		}
	}
	if algo == "" {
		if algo = algoByHexLen[len(sum)]; algo == "" {
			return e, false, fmt.Errorf("cannot tell the algorithm of a %d-digit hash", len(sum))
		}
	}
	if size := DigestSize(algo); size > 0 && len(sum) != 2*size {
		return e, false, fmt.Errorf("a %s hash has %d hex digits, this one has %d", algo, 2*size, len(sum))
	}

	if name == "" || name == "-" {
		if implied == "" {
			if name == "-" {
				return e, true, nil
			}
			return e, false, errors.New("a hash without a file name (only NAME.sha256-style files may hold one)")
		}
		name = implied
	}
	clean := path.Clean(strings.TrimPrefix(name, "./"))
	key := path.Base(clean)
	if key == "." || key == "/" || key == ".." {
		return e, false, fmt.Errorf("%q is not a file name", name)
	}
	return sumEntry{key: key, algo: algo, sum: strings.ToLower(sum), hasDir: key != clean}, false, nil
}

// parseBSDLine reads "TAG (NAME) = HASH" with optional blanks around
// "(", ")" and "=".
func parseBSDLine(line string) (tag, name, sum string, err error) {
	open := strings.IndexByte(line, '(')
	closeAt := strings.LastIndexByte(line, ')')
	if open <= 0 || closeAt < open {
		return "", "", "", errors.New(`not a checksum line (want "HASH  NAME" or "ALGO (NAME) = HASH")`)
	}
	tag = strings.TrimRight(line[:open], " ")
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return "", "", "", fmt.Errorf("bad algorithm tag %q", tag)
		}
	}
	rest := strings.TrimLeft(line[closeAt+1:], " ")
	rest, ok := strings.CutPrefix(rest, "=")
	if !ok {
		return "", "", "", errors.New(`no "=" after the file name`)
	}
	sum = strings.TrimSpace(rest)
	if sum == "" || !isHexLen(sum, len(sum)) {
		return "", "", "", fmt.Errorf("%q is not a hex hash", sum)
	}
	return tag, line[open+1 : closeAt], sum, nil
}

// unescapeName undoes coreutils' escaping of names holding '\\' or '\n'.
func unescapeName(s string) (string, error) {
	if !strings.Contains(s, "\\") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		i++
		if i == len(s) {
			return "", errors.New("file name ends in a lone backslash")
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			return "", fmt.Errorf("unknown escape \\%c in file name", s[i])
		}
	}
	return b.String(), nil
}

// sumFileNameAlgo returns the algorithm a sum file's name implies and, for
// a per-file sum file (NAME.sha256), the part name NAME.
func sumFileNameAlgo(base string) (algo, implied string) {
	lower := strings.ToLower(base)
	if a, ok := sumFileAlgos[strings.TrimSuffix(lower, ".txt")]; ok {
		return a, ""
	}
	ext := path.Ext(lower)
	if a, ok := sumExtAlgos[ext]; ok && len(base) > len(ext) {
		return a, base[:len(base)-len(ext)]
	}
	return "", ""
}

// originName reduces a reference file's name, path or URL to its base
// name, dropping any query or fragment (a presigned URL's query is a
// secret and must not end up in a label).
func originName(fileName string) string {
	if i := strings.Index(fileName, "://"); i >= 0 {
		if j := strings.IndexAny(fileName[i:], "?#"); j >= 0 {
			fileName = fileName[:i+j]
		}
	}
	return path.Base(fileName)
}
