// Package redact keeps secrets out of messages: the query string and
// fragment of a URL (a presigned URL's signature) and a password in it.
// Sources, the SSH dialler and the journal all say where they read from
// through URL.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// connSuffix is the "#j=N" a --mirror URL may end with: haul's own
// syntax, never sent anywhere, and what the journal must keep to say how
// the run was asked to use the mirror.
var connSuffix = regexp.MustCompile(`#j=[0-9]+$`)

// URL returns spec with its query string, fragment and password removed,
// for messages. Presigned URLs carry their signature there. A trailing
// "#j=N" (a mirror's connections) is kept.
func URL(spec string) string {
	keep := connSuffix.FindString(spec)
	return redact(strings.TrimSuffix(spec, keep)) + keep
}

func redact(spec string) string {
	u, err := url.Parse(spec)
	if err != nil || u.Scheme == "" {
		spec = dropPassword(spec)
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

// dropPassword removes the password from a URL that does not parse (a
// password with a "#", "?", "/" or "@" in it, unescaped). The login is
// taken to end at the last "@": a path with an "@" in it may then lose
// part of its text in the message, but no password shows.
func dropPassword(spec string) string {
	i := strings.Index(spec, "://")
	if i < 0 {
		return spec
	}
	rest := spec[i+3:]
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return spec
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	if !hasPassword {
		return spec
	}
	return spec[:i+3] + user + rest[at:]
}
