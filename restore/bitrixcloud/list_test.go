package bitrixcloud

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestLines(t *testing.T) {
	in := "<?php die(); ?>\n" +
		"2026-11-01 03:00:00 1234 bucket/iblock/a b/фото 1.jpg\n" +
		"\n" +
		"2026-11-01 03:00:00\t\t0\tbucket/x.txt  \r\n" +
		"2026-11-01 03:00:00 5 top.bin"
	lr := newLineReader("list", strings.NewReader(in))
	var got []Entry
	for {
		e, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	want := []Entry{
		{Line: 2, Date: "2026-11-01 03:00:00", Size: 1234, Path: "bucket/iblock/a b/фото 1.jpg", Save: "iblock/a b/фото 1.jpg"},
		{Line: 4, Date: "2026-11-01 03:00:00", Size: 0, Path: "bucket/x.txt", Save: "x.txt"},
		{Line: 5, Date: "2026-11-01 03:00:00", Size: 5, Path: "top.bin", Save: "top.bin"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestBadLines(t *testing.T) {
	for _, line := range []string{
		"2026-11-01 03:00:00 12",                       // no path
		"2026-11-01 03:00 12 b/x",                      // short time
		"2026-11-01T03:00:00 12 b/x",                   // not a blank
		"2026-11-01 03:00:00 -12 b/x",                  // sign
		"2026-11-01 03:00:00 12b/x",                    // no blank after the size
		"garbage",                                      // nothing
		"2026-11-01 03:00:00 99999999999999999999 b/x", // overflows
	} {
		lr := newLineReader("L", strings.NewReader("2026-11-01 03:00:00 1 b/ok\n"+line+"\n"))
		if _, err := lr.next(); err != nil {
			t.Fatal(err)
		}
		_, err := lr.next()
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Line != 2 || !errors.Is(err, ErrFormat) {
			t.Errorf("%q: got %v, want a FormatError on line 2", line, err)
		}
	}
	lr := newLineReader("L", strings.NewReader("2026-11-01 03:00:00 1 b/"+strings.Repeat("x", maxLine)+"\n"))
	if _, err := lr.next(); !errors.Is(err, ErrFormat) {
		t.Errorf("a line over %d bytes: got %v, want ErrFormat", maxLine, err)
	}
}

func TestSkipped(t *testing.T) {
	for save, want := range map[string]bool{
		"resize_cache/iblock/a.jpg": true,
		"cache/x":                   true,
		"tmp/x":                     true,
		"bxtmp/x":                   true,
		"test.txt":                  true,
		"test_txt":                  true,
		"atest.txt":                 true,
		"iblock/cache/x":            false, // only the first element
		"iblock/test.txt":           false,
		"cachex/y":                  false,
		"iblock/a.jpg":              false,
		"tmpfile":                   false,
	} {
		if got := skipped(save); got != want {
			t.Errorf("skipped(%q) = %v, want %v", save, got, want)
		}
	}
}

func TestUnsafePath(t *testing.T) {
	for save, bad := range map[string]bool{
		"../x":         true,
		"a/../../x":    true,
		"/etc/passwd":  true,
		"a/./b":        true,
		"a//b":         true,
		"a/":           true,
		`a\..\b`:       true,
		"a\x00b":       true,
		"..":           true,
		"iblock/a.jpg": false,
		"a b/фото.jpg": false,
		"..a/b..":      false,
	} {
		if got := unsafePath(save) != ""; got != bad {
			t.Errorf("unsafePath(%q) = %q, want unsafe=%v", save, unsafePath(save), bad)
		}
	}
}
