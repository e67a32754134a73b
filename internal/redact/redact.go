// Package redact keeps secrets out of messages: the query string and
// fragment of a URL (a presigned URL's signature) and a password in it.
// Sources, the SSH dialler and the journal all say where they read from
// through URL.
package redact

import (
	"net/url"
	"strings"
)

// URL returns spec with its query string, fragment and password removed,
// for messages. Presigned URLs carry their signature there.
func URL(spec string) string {
	u, err := url.Parse(spec)
	if err != nil || u.Scheme == "" {
		if i := strings.IndexAny(spec, "?#"); i >= 0 {
			return spec[:i] + "?…"
		}
		return spec
	}
	red := *u
	if red.User != nil {
		red.User = url.User(red.User.Username())
	}
	q := red.RawQuery != ""
	red.RawQuery, red.Fragment, red.RawFragment = "", "", ""
	s := red.String()
	if red.Host == "" && red.Opaque == "" && strings.Contains(spec, "://") && !strings.Contains(s, "://") {
		s = strings.Replace(s, ":", "://", 1) // "s3://" stays "s3://", not "s3:"
	}
	if q {
		s += "?…"
	}
	return s
}
