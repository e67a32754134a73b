package bitrixdb

import (
	"errors"
	"fmt"
	"strings"
)

// phpArray is an array literal found in a PHP file: where each element's
// value lies, so that a value can be replaced in the text without
// running PHP. Only what .settings.php needs is understood: array(...)
// and [...], string and other scalar literals, nested arrays, comments.
type phpArray struct {
	open  int // index just after "array(" or "["
	items []phpItem
}

type phpItem struct {
	key        string // decoded key; "" for a list item or a key that is not a literal
	start, end int    // the value's span in the file
	arr        *phpArray
}

func (a *phpArray) get(key string) *phpItem {
	for i := range a.items {
		if a.items[i].key == key {
			return &a.items[i]
		}
	}
	return nil
}

// phpLexer walks PHP source skipping blanks and comments.
type phpLexer struct {
	src string
	i   int
}

var errPHP = errors.New("not a PHP array file haul can edit")

func (l *phpLexer) skip() {
	for l.i < len(l.src) {
		c := l.src[l.i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			l.i++
		case c == '#' && !strings.HasPrefix(l.src[l.i:], "#["), strings.HasPrefix(l.src[l.i:], "//"):
			for l.i < len(l.src) && l.src[l.i] != '\n' {
				if strings.HasPrefix(l.src[l.i:], "?>") {
					return
				}
				l.i++
			}
		case strings.HasPrefix(l.src[l.i:], "/*"):
			end := strings.Index(l.src[l.i+2:], "*/")
			if end < 0 {
				l.i = len(l.src)
				return
			}
			l.i += end + 4
		default:
			return
		}
	}
}

// parseSettings finds the array returned by a .settings.php file.
func parseSettings(src string) (*phpArray, error) {
	l := &phpLexer{src: src}
	l.skip()
	switch {
	case strings.HasPrefix(src[l.i:], "<?php"):
		l.i += 5
	case strings.HasPrefix(src[l.i:], "<?"):
		l.i += 2
	default:
		return nil, fmt.Errorf("%w: it does not start with <?php", errPHP)
	}
	l.skip()
	if !strings.HasPrefix(strings.ToLower(src[l.i:]), "return") {
		return nil, fmt.Errorf("%w: its first statement is not return", errPHP)
	}
	l.i += 6
	l.skip()
	it, err := l.value()
	if err != nil {
		return nil, err
	}
	if it.arr == nil {
		return nil, fmt.Errorf("%w: it does not return an array", errPHP)
	}
	return it.arr, nil
}

// value parses one value at l.i: an array, or anything else up to the
// next ',' or closing bracket at this level.
func (l *phpLexer) value() (phpItem, error) {
	start := l.i
	rest := strings.ToLower(l.src[l.i:])
	if strings.HasPrefix(rest, "array") {
		j := l.i + 5
		for j < len(l.src) && (l.src[j] == ' ' || l.src[j] == '\t' || l.src[j] == '\r' || l.src[j] == '\n') {
			j++
		}
		if j < len(l.src) && l.src[j] == '(' {
			l.i = j + 1
			a, err := l.array(')')
			return phpItem{start: start, end: l.i, arr: a}, err
		}
	}
	if l.i < len(l.src) && l.src[l.i] == '[' {
		l.i++
		a, err := l.array(']')
		return phpItem{start: start, end: l.i, arr: a}, err
	}
	depth := 0
	for l.i < len(l.src) {
		c := l.src[l.i]
		switch {
		case c == '\'' || c == '"':
			if err := l.str(); err != nil {
				return phpItem{}, err
			}
			continue
		case c == '(' || c == '[':
			depth++
		case c == ')' || c == ']' || c == ',' || c == ';':
			if depth == 0 || c == ';' {
				end := l.i
				for end > start && strings.ContainsRune(" \t\r\n", rune(l.src[end-1])) {
					end--
				}
				return phpItem{start: start, end: end}, nil
			}
			depth--
		case c == '=' && depth == 0 && strings.HasPrefix(l.src[l.i:], "=>"):
			end := l.i
			for end > start && strings.ContainsRune(" \t\r\n", rune(l.src[end-1])) {
				end--
			}
			return phpItem{start: start, end: end}, nil
		case c == '<' && strings.HasPrefix(l.src[l.i:], "<<<"):
			return phpItem{}, fmt.Errorf("%w: heredoc strings", errPHP)
		case c == '/' && (strings.HasPrefix(l.src[l.i:], "//") || strings.HasPrefix(l.src[l.i:], "/*")), c == '#':
			l.skip()
			continue
		}
		l.i++
	}
	return phpItem{}, fmt.Errorf("%w: it ends inside a value", errPHP)
}

// array parses the elements up to the closing bracket.
func (l *phpLexer) array(close byte) (*phpArray, error) {
	a := &phpArray{open: l.i}
	for {
		l.skip()
		if l.i >= len(l.src) {
			return nil, fmt.Errorf("%w: an array is not closed", errPHP)
		}
		if l.src[l.i] == close {
			l.i++
			return a, nil
		}
		first, err := l.value()
		if err != nil {
			return nil, err
		}
		l.skip()
		it := first
		if strings.HasPrefix(l.src[l.i:], "=>") {
			l.i += 2
			l.skip()
			if it, err = l.value(); err != nil {
				return nil, err
			}
			it.key = phpLiteralKey(l.src[first.start:first.end])
			l.skip()
		}
		a.items = append(a.items, it)
		if l.i < len(l.src) && l.src[l.i] == ',' {
			l.i++
			continue
		}
		l.skip()
		if l.i >= len(l.src) || l.src[l.i] != close {
			return nil, fmt.Errorf("%w: unexpected text at byte %d", errPHP, l.i)
		}
	}
}

// str skips a quoted string at l.i.
func (l *phpLexer) str() error {
	q := l.src[l.i]
	for j := l.i + 1; j < len(l.src); j++ {
		switch l.src[j] {
		case '\\':
			j++
		case q:
			l.i = j + 1
			return nil
		}
	}
	return fmt.Errorf("%w: a string is not closed", errPHP)
}

// phpLiteralKey decodes a quoted key without interpolation; other keys
// (numbers, constants) come back as written.
func phpLiteralKey(s string) string {
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return strings.NewReplacer(`\\`, `\`, `\'`, `'`).Replace(s[1 : len(s)-1])
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' && !strings.ContainsAny(s, `$\`) {
		return s[1 : len(s)-1]
	}
	return s
}

// phpString is s as a single-quoted PHP literal: in single quotes only \\
// and \' are escapes, so '$', '"', newlines and every other byte stay
// what they are.
func phpString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
