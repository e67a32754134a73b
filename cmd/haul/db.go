package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"

	"github.com/haul-dev/haul/restore/bitrixdb"
)

// dbOpts are the flags of the Bitrix database step (restore, run).
type dbOpts struct {
	url          string
	passwordFile string
	create       bool
	dump         string
	siteHost     string
	keepDump     bool
}

// secretFlags are flags whose value may hold a secret by mistake (a
// password in --db's URL): a usage error names the flag, never the value
// as typed (the parser's own message shows it with the password removed).
var secretFlags = map[string]bool{"db": true}

func checkDBURL(s string) error {
	_, err := bitrixdb.ParseURL(s)
	return err
}

// checkPasswordFile: the file must be there and readable when the command
// line is read, not after an hour of fetching.
func checkPasswordFile(s string) error {
	f, err := os.Open(s)
	if err != nil {
		return fmt.Errorf("cannot read it: %w", errors.Unwrap(err))
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.IsDir() {
		return fmt.Errorf("not a file")
	}
	return nil
}

func checkDumpName(s string) error {
	if s == "" || strings.ContainsAny(s, `/\`) || s == "." || s == ".." {
		return fmt.Errorf("want the name of a dump in bitrix/backup (NAME of NAME.sql), not a path")
	}
	return nil
}

// checkSiteHost: a host name as the site is reached (www.example.com,
// пример.рф), no scheme, port or path.
func checkSiteHost(s string) error {
	if s == "" || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.HasPrefix(s, "-") {
		return fmt.Errorf("want a host name like www.example.com")
	}
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '.' && r != '-' {
			return fmt.Errorf("want a host name like www.example.com (no scheme, port or path)")
		}
	}
	return nil
}

// check says which database flags need which others.
func (d *dbOpts) check(assemble string) error {
	if d.url == "" {
		for name, set := range map[string]bool{"db-password-file": d.passwordFile != "", "db-create": d.create,
			"db-dump": d.dump != "", "site-host": d.siteHost != "", "keep-dump": d.keepDump} {
			if set {
				return usagef("--%s needs --db URL (the database to import the site's dump into)", name)
			}
		}
		return nil
	}
	if assemble != "" {
		return usagef("--db imports the dump of an unpacked site: use it with --into DIR, not --assemble")
	}
	return nil
}

// options are the library's options for the site restored into root.
func (d *dbOpts) options(root string) (bitrixdb.Options, error) {
	t, err := bitrixdb.ParseURL(d.url)
	if err != nil {
		return bitrixdb.Options{}, usagef("--db: %v", err)
	}
	return bitrixdb.Options{
		Root:        root,
		Target:      t,
		Credentials: bitrixdb.Credentials{PasswordFile: d.passwordFile},
		Create:      d.create,
		Dump:        d.dump,
		SiteHost:    d.siteHost,
		KeepDump:    d.keepDump,
	}, nil
}
