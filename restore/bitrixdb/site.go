package bitrixdb

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The site's configuration files, relative to its root.
const (
	DBConnFile   = "bitrix/php_interface/dbconn.php"
	SettingsFile = "bitrix/.settings.php"
)

// CacheDirs are the directories under bitrix/ removed after a restore, as
// restore.php does: Bitrix rebuilds them, and old caches point at the old
// host.
var CacheDirs = []string{"cache", "stack_cache", "managed_cache", "resize_cache", "tmp"}

// siteCreds are the values the site's configuration gets.
type siteCreds struct {
	Host, Database, Login, Password string
}

var dbconnLine = regexp.MustCompile(`^[ \t]*\$(DBHost|DBLogin|DBPassword|DBName)\b`)

// rewriteDBConn sets the $DBHost, $DBLogin, $DBPassword and $DBName lines
// of dbconn.php (the backup holds "******" there), or writes the minimal
// file restore.php writes when there is none. Other lines are kept byte
// for byte.
func rewriteDBConn(root *os.Root, c siteCreds) error {
	vals := map[string]string{"DBHost": c.Host, "DBLogin": c.Login, "DBPassword": c.Password, "DBName": c.Database}
	src, err := root.ReadFile(DBConnFile)
	mode := fs.FileMode(0o644)
	if errors.Is(err, fs.ErrNotExist) {
		src = []byte("<?\ndefine(\"DBPersistent\", false);\n$DBType = \"mysql\";\n$DBHost = \"\";\n$DBLogin = \"\";\n$DBPassword = \"\";\n$DBName = \"\";\n\n$DBDebug = false;\n$DBDebugToFile = false;\n?>")
		if err := root.MkdirAll(path.Dir(DBConnFile), 0o755); err != nil {
			return &SiteError{File: DBConnFile, Err: err}
		}
	} else if err != nil {
		return &SiteError{File: DBConnFile, Err: err}
	} else if fi, err := root.Lstat(DBConnFile); err == nil {
		if !fi.Mode().IsRegular() {
			return &SiteError{File: DBConnFile, Err: errors.New("not a regular file")}
		}
		mode = fi.Mode().Perm()
	}
	var out bytes.Buffer
	for line := range bytes.SplitAfterSeq(src, []byte("\n")) {
		m := dbconnLine.FindSubmatch(line)
		if m == nil {
			out.Write(line)
			continue
		}
		eol := ""
		if bytes.HasSuffix(line, []byte("\r\n")) {
			eol = "\r\n"
		} else if bytes.HasSuffix(line, []byte("\n")) {
			eol = "\n"
		}
		fmt.Fprintf(&out, "$%s = %s;%s", m[1], phpString(vals[string(m[1])]), eol)
	}
	if err := writeFileIn(root, DBConnFile, out.Bytes(), mode); err != nil {
		return &SiteError{File: DBConnFile, Err: err}
	}
	return nil
}

// rewriteSettings sets connections.value.default.{host,database,login,
// password} in .settings.php by editing the array literal's text (no PHP
// is run); keys that are missing are added. A file without connections
// (old Bitrix, where dbconn.php alone connects) is left alone: ok false.
func rewriteSettings(root *os.Root, c siteCreds) (ok bool, err error) {
	src, err := root.ReadFile(SettingsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, &SiteError{File: SettingsFile, Err: err}
	}
	fi, err := root.Lstat(SettingsFile)
	if err != nil || !fi.Mode().IsRegular() {
		return false, &SiteError{File: SettingsFile, Err: errors.New("not a regular file")}
	}
	top, err := parseSettings(string(src))
	if err != nil {
		return false, &SiteError{File: SettingsFile, Err: err}
	}
	conns := top.get("connections")
	if conns == nil || conns.arr == nil {
		return false, nil
	}
	val := conns.arr.get("value")
	if val == nil || val.arr == nil {
		return false, &SiteError{File: SettingsFile, Err: errors.New("connections has no 'value' array")}
	}
	def := val.arr.get("default")
	if def == nil || def.arr == nil {
		return false, &SiteError{File: SettingsFile, Err: errors.New("connections.value has no 'default' array")}
	}
	type edit struct {
		start, end int
		text       string
	}
	var edits []edit
	var missing []string
	for _, kv := range [][2]string{{"host", c.Host}, {"database", c.Database}, {"login", c.Login}, {"password", c.Password}} {
		if it := def.arr.get(kv[0]); it != nil {
			edits = append(edits, edit{it.start, it.end, phpString(kv[1])})
		} else {
			missing = append(missing, "\n    "+phpString(kv[0])+" => "+phpString(kv[1])+",")
		}
	}
	if len(missing) > 0 {
		edits = append(edits, edit{def.arr.open, def.arr.open, strings.Join(missing, "")})
	}
	slices.SortFunc(edits, func(a, b edit) int { return b.start - a.start })
	s := string(src)
	for _, e := range edits {
		s = s[:e.start] + e.text + s[e.end:]
	}
	if err := writeFileIn(root, SettingsFile, []byte(s), fi.Mode().Perm()); err != nil {
		return false, &SiteError{File: SettingsFile, Err: err}
	}
	return true, nil
}

// writeFileIn replaces name inside root durably: a temp file beside it,
// fsync, rename.
func writeFileIn(root *os.Root, name string, data []byte, mode fs.FileMode) error {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(path.Dir(name), ".haul-"+hex.EncodeToString(rnd[:])+".tmp")
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(mode)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = root.Rename(tmp, name)
	}
	if werr != nil {
		_ = root.Remove(tmp)
		return werr
	}
	if d, err := root.Open(path.Dir(name)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// Fix names one settings fix of restore.php's last step.
type Fix string

// The settings fixes.
const (
	FixDocRoot         Fix = "b_lang DOC_ROOT cleared"                    // another site path was set
	FixCDN             Fix = "Bitrix CDN turned off"                      // its domain is not the site's host
	FixHostRestriction Fix = "security module's host restriction removed" // the site's host is not allowed
)

// applyFixes runs restore.php's settings fixes. docRoot is the site's
// new root; without siteHost the CDN and host-restriction checks cannot
// be made and are returned as skipped.
func applyFixes(ctx context.Context, s *session, docRoot, siteHost string) (done, skipped []Fix, err error) {
	// The dump's SET NAMES may be a one-byte charset; the values below are
	// UTF-8.
	if err := s.exec(ctx, "SET NAMES utf8mb4"); err != nil {
		return nil, nil, err
	}
	exists := func(q string, args ...any) (bool, error) {
		rows, err := s.conn.QueryContext(ctx, q, args...)
		if err != nil {
			if me := mysqlErr(err); me != nil && me.Number == erNoSuchTable {
				return false, nil
			}
			return false, err
		}
		defer rows.Close()
		has := rows.Next()
		return has, rows.Err()
	}
	ok, err := exists("SELECT 1 FROM b_lang WHERE DOC_ROOT != ? AND DOC_ROOT IS NOT NULL AND DOC_ROOT != '' LIMIT 1", docRoot)
	if err != nil {
		return nil, nil, fmt.Errorf("b_lang: %w", err)
	}
	if ok {
		if err := s.exec(ctx, "UPDATE b_lang SET DOC_ROOT = ''"); err != nil {
			return nil, nil, fmt.Errorf("b_lang: %w", err)
		}
		done = append(done, FixDocRoot)
	}
	if siteHost == "" {
		return done, []Fix{FixCDN, FixHostRestriction}, nil
	}
	ok, err = exists("SELECT 1 FROM b_bitrixcloud_option WHERE NAME = 'cdn_config_active' AND PARAM_VALUE = 1")
	if err != nil {
		return nil, nil, fmt.Errorf("b_bitrixcloud_option: %w", err)
	}
	if ok {
		var domain string
		err := s.conn.QueryRowContext(ctx, "SELECT PARAM_VALUE FROM b_bitrixcloud_option WHERE NAME = 'cdn_config_domain'").Scan(&domain)
		if err == nil && domain != siteHost {
			expire := time.Now().Unix() + 86400*3650
			if err := s.exec(ctx, "UPDATE b_bitrixcloud_option SET PARAM_VALUE = 0 WHERE NAME = 'cdn_config_active'"); err != nil {
				return nil, nil, fmt.Errorf("b_bitrixcloud_option: %w", err)
			}
			if err := s.exec(ctx, "UPDATE b_bitrixcloud_option SET PARAM_VALUE = ? WHERE NAME = 'cdn_config_expire_time'", expire); err != nil {
				return nil, nil, fmt.Errorf("b_bitrixcloud_option: %w", err)
			}
			done = append(done, FixCDN)
		}
	}
	var id int64
	err = s.conn.QueryRowContext(ctx, `SELECT ID FROM b_module_to_module WHERE FROM_MODULE_ID = 'main' AND MESSAGE_ID = 'OnPageStart' AND TO_CLASS = ? LIMIT 1`,
		`Bitrix\Security\HostRestriction`).Scan(&id)
	if err == nil {
		var hosts string
		herr := s.conn.QueryRowContext(ctx, "SELECT VALUE FROM b_option WHERE MODULE_ID = 'security' AND NAME = 'restriction_hosts_hosts'").Scan(&hosts)
		if herr == nil && !strings.Contains(hosts, siteHost) {
			if err := s.exec(ctx, "DELETE FROM b_module_to_module WHERE ID = ?", id); err != nil {
				return nil, nil, fmt.Errorf("b_module_to_module: %w", err)
			}
			done = append(done, FixHostRestriction)
		}
	}
	return done, nil, nil
}

// resetFullTextOptions marks search's full-text indexes as absent after
// they were dropped, as restore.php does.
func resetFullTextOptions(ctx context.Context, s *session) error {
	err := s.exec(ctx, "UPDATE b_option SET VALUE = 'a:0:{}' WHERE MODULE_ID = 'main' AND NAME LIKE '~ft_%'")
	if me := mysqlErr(err); me != nil && me.Number == erNoSuchTable {
		return nil
	}
	return err
}

// cleanup removes the dump's files (unless keep) and the cache
// directories, through root so nothing outside the site is touched.
func cleanup(root *os.Root, dumpFiles []string, keep bool) (removed []string, err error) {
	var errs []error
	if !keep {
		for _, f := range dumpFiles {
			name := path.Join(BackupDir, f)
			if err := root.Remove(name); err == nil {
				removed = append(removed, name)
			} else if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	for _, d := range CacheDirs {
		name := path.Join("bitrix", d)
		if _, err := root.Lstat(name); err != nil {
			continue
		}
		if err := root.RemoveAll(name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name+"/")
	}
	return removed, errors.Join(errs...)
}
