package gen

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// BitrixSampleTree writes a small fixed site (about 12 KB) into dir, the
// source of the committed Bitrix test sets (testdata/bitrix): few entries,
// but each shape a restore of a Bitrix backup must get right — a file that
// ends inside a 512-byte block and one that fills whole blocks, an empty
// file and an empty directory, a path longer than 100 bytes (a GNU long
// name record), a UTF-8 name with spaces, modes 0600/0640/0755/0444, a
// 0555 directory, a symlink to a file (stored as the file) and one to a
// directory inside the site (left out), fixed mtimes.
func BitrixSampleTree(dir string) error {
	base := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	long := "local/components/haul/very-long-component-directory-name-for-the-catalog-section-list/templates/.default/template.php"
	bin := make([]byte, 3000)
	r := rand.New(rand.NewPCG(18, 9))
	for i := range bin {
		bin[i] = byte(r.Uint32())
	}
	type ent struct {
		name string
		mode fs.FileMode
		data []byte // nil for a directory
		link string // symlink target
	}
	ents := []ent{
		{name: "bitrix", mode: 0o755},
		{name: "bitrix/php_interface", mode: 0o755},
		{name: "bitrix/modules", mode: 0o755},
		{name: "bitrix/modules/main", mode: 0o555},
		{name: "local", mode: 0o755},
		{name: "local/components/haul/very-long-component-directory-name-for-the-catalog-section-list/templates/.default", mode: 0o755},
		{name: "upload", mode: 0o775},
		{name: "upload/tmp", mode: 0o700},
		{name: "docs", mode: 0o755},
		{name: "index.php", mode: 0o644, data: sampleText("index", 1500)},
		{name: "bitrix/.settings.php", mode: 0o600, data: sampleText("settings", 700)},
		{name: "bitrix/php_interface/dbconn.php", mode: 0o640, data: sampleText("dbconn", 512)},
		{name: "bitrix/modules/main/version.php", mode: 0o444, data: sampleText("version", 90)},
		{name: "bitrix/modules/main/tools.sh", mode: 0o755, data: sampleText("tools", 1024)},
		{name: long, mode: 0o644, data: sampleText("template", 800)},
		{name: "upload/photo.jpg", mode: 0o644, data: bin},
		{name: "upload/.access.php", mode: 0o644, data: []byte{}},
		{name: "docs/отчёт за год.txt", mode: 0o644, data: sampleText("report", 1300)},
		{name: "home.php", link: "index.php"},
		{name: "upload/bitrix", link: "../bitrix"},
	}
	for i, e := range ents {
		p := filepath.Join(dir, filepath.FromSlash(e.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("gen sample: %w", err)
		}
		var err error
		switch {
		case e.link != "":
			err = os.Symlink(e.link, p)
		case e.data == nil:
			err = os.MkdirAll(p, 0o755)
		default:
			err = os.WriteFile(p, e.data, 0o644)
			if err == nil {
				err = os.Chmod(p, e.mode)
			}
			if err == nil {
				t := base.Add(time.Duration(i) * time.Hour)
				err = os.Chtimes(p, t, t)
			}
		}
		if err != nil {
			return fmt.Errorf("gen sample: %w", err)
		}
	}
	// Directories last, deepest first, so creating entries does not move
	// their mtimes; the root too.
	var dirs []string
	for _, e := range ents {
		if e.data == nil && e.link == "" {
			for d := e.name; d != "."; d = filepath.Dir(d) {
				if !slices.Contains(dirs, d) {
					dirs = append(dirs, d)
				}
			}
		}
	}
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	dirs = append(dirs, ".")
	for i, d := range dirs {
		mode := fs.FileMode(0o755)
		if j := slices.IndexFunc(ents, func(e ent) bool { return e.name == d }); j >= 0 {
			mode = ents[j].mode
		}
		p := filepath.Join(dir, filepath.FromSlash(d))
		t := base.Add(-time.Duration(i+1) * time.Minute)
		if err := os.Chtimes(p, t, t); err != nil {
			return fmt.Errorf("gen sample: %w", err)
		}
		if err := os.Chmod(p, mode); err != nil {
			return fmt.Errorf("gen sample: %w", err)
		}
	}
	return nil
}

// sampleText is n bytes of PHP-like lines, different for each seed word.
func sampleText(seed string, n int) []byte {
	var b strings.Builder
	b.WriteString("<?php\n")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "$%s[%d] = \"%s-%03d\"; // line %d\n", seed, i, words[i%len(words)], i*7, i)
	}
	return []byte(b.String()[:n])
}

// BitrixListing describes the tree at root as a Bitrix backup of it
// restores: one line per entry, sorted by path, "path dir MODE MTIME" or
// "path file MODE MTIME SIZE SHA256". A symlink is described as what it
// points to, as CTar stores it; a link to a directory or a broken link is
// left out (BitrixSet skips both). Restored trees have no links, so the
// same listing of a restore and of its source must be equal.
func BitrixListing(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		fi, err := os.Stat(p)
		if err != nil {
			return nil // a broken link
		}
		if d.Type()&fs.ModeSymlink != 0 && fi.IsDir() {
			return nil
		}
		line := fmt.Sprintf("%s %s %04o %d", rel, "dir", fi.Mode().Perm(), fi.ModTime().Unix())
		if !fi.IsDir() {
			sum, err := fileSHA256(p)
			if err != nil {
				return err
			}
			line = fmt.Sprintf("%s file %04o %d %d %s", rel, fi.Mode().Perm(), fi.ModTime().Unix(), fi.Size(), sum)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gen listing: %w", err)
	}
	slices.Sort(out)
	return out, nil
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
