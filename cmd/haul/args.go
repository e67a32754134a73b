package main

import (
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/haul-dev/haul/internal/redact"
)

// checkDuplicates refuses, before anything is fetched, a SOURCE given
// twice or two URLs whose file names are the same: both would be written
// to DEST under one name. It names both (redacted: they may be presigned).
func checkDuplicates(srcs []string) error {
	seen := map[string]string{} // part name or source → the source that took it
	for _, s := range srcs {
		if prev, ok := seen["src:"+s]; ok {
			return usagef("SOURCE %s is given twice; give each part once", redact.URL(prev))
		}
		seen["src:"+s] = s
		name := urlPartName(s)
		if name == "" {
			continue
		}
		if prev, ok := seen["name:"+name]; ok {
			return usagef("%s and %s both name the part %s; give each part once (a set's parts need distinct file names)", redact.URL(prev), redact.URL(s), name)
		}
		seen["name:"+name] = s
	}
	return nil
}

// urlPartName is the part name an http(s) URL gives (its last path
// element, as the fetch engine names it), or "" for other sources, whose
// names come from a listing.
func urlPartName(s string) string {
	u, err := url.Parse(s)
	if err != nil || (strings.ToLower(u.Scheme) != "http" && strings.ToLower(u.Scheme) != "https") {
		return ""
	}
	name := path.Base(u.Path)
	if name == "/" || name == "." {
		return ""
	}
	return name
}

// announce prepares the start line the command's reporter prints first in
// log mode: the command, its sources (redacted), DEST and the version.
func (a *app) announce(cmd string, srcs []string, dest string) {
	var b strings.Builder
	b.WriteString("start: haul " + cmd)
	const most = 3 // a --list of 500 URLs is not one line
	for i, s := range srcs {
		if i == most {
			b.WriteString(" … (" + strconv.Itoa(len(srcs)) + " sources)")
			break
		}
		b.WriteString(" " + redact.URL(s))
	}
	b.WriteString(" → " + dest + "; " + readBuildInfo().short())
	a.startLine = b.String()
}
