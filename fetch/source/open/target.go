package open

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/source/s3"
	"github.com/haul-dev/haul/internal/retry"
)

// Target is the server a command's SOURCE arguments reach.
type Target struct {
	// ID names the server(s) with no secret in it (scheme, host and port:
	// no user, password or query string): the key under which a DEST
	// records that the source was reached. "" for a local source, which
	// has no network to fail.
	ID string
	// Kind says what the server is ("S3 endpoint", "server", "SSH server").
	Kind string
	// Addr is the address dialled, as a user writes it.
	Addr string
	// Setting says where that address was given ("--endpoint",
	// "AWS_ENDPOINT_URL", "the SOURCE URL" …), so a message names what to
	// change.
	Setting string
}

// TargetOf is the Target of specs, the SOURCE arguments of a command, as
// OpenSources would open them with opts.
func TargetOf(specs []string, opts source.OpenOptions) (Target, error) {
	var addrs []string
	t := Target{Kind: "server", Setting: "the SOURCE URL"}
	for _, spec := range specs {
		u, err := url.Parse(spec)
		if err != nil || len(u.Scheme) <= 1 {
			continue // a local path
		}
		switch scheme := strings.ToLower(u.Scheme); scheme {
		case "s3":
			addr, setting, err := s3.Identity(u, opts.S3)
			if err != nil {
				return Target{}, err
			}
			t.Kind, t.Setting = "S3 endpoint", setting
			addrs = append(addrs, addr)
		case "http", "https":
			addrs = append(addrs, scheme+"://"+u.Host)
		case "sftp", "ssh":
			t.Kind, t.Setting = "SSH server", "the SOURCE URL (or ~/.ssh/config)"
			addrs = append(addrs, scheme+"://"+u.Host)
		}
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	t.ID, t.Addr = strings.Join(addrs, " "), strings.Join(addrs, ", ")
	return t, nil
}

// ReachError is a source that could not be reached at all: the name did
// not resolve, nothing listened, TLS failed or another protocol answered
// (retry.ReachOf). Its message names the address, the cause and the fix
// on one line; it unwraps to the failure, so retry.Classify still sees it.
type ReachError struct {
	Target Target
	Reach  retry.Reach
	Err    error
}

func (e *ReachError) Error() string {
	t := e.Target
	host := t.Addr
	if u, err := url.Parse(t.Addr); err == nil && u.Host != "" && !strings.Contains(t.Addr, ", ") {
		host = u.Host
	}
	switch e.Reach {
	case retry.NoSuchHost:
		name := host
		var dns *net.DNSError
		if errors.As(e.Err, &dns) {
			name = dns.Name
		}
		return fmt.Sprintf("%s %s: host %s does not resolve; check the host name in %s", t.Kind, t.Addr, name, t.Setting)
	case retry.Refused:
		return fmt.Sprintf("%s %s: connection refused (nothing listens there); check the host and port in %s, and that the server runs", t.Kind, t.Addr, t.Setting)
	case retry.NoRoute:
		return fmt.Sprintf("%s %s: no route (host unreachable or the connect timed out); check the address in %s and any firewall", t.Kind, t.Addr, t.Setting)
	case retry.TLSFailed:
		return fmt.Sprintf("%s %s: TLS failed (%s); check that %s names this server, or, for a private CA, point SSL_CERT_FILE at its certificate", t.Kind, t.Addr, tlsCause(e.Err), t.Setting)
	case retry.WrongProtocol:
		if errors.Is(e.Err, http.ErrSchemeMismatch) {
			return fmt.Sprintf("%s %s answers plain HTTP, not HTTPS: use http://%s in %s", t.Kind, t.Addr, host, t.Setting)
		}
		return fmt.Sprintf("%s %s does not speak TLS (%v): use http://%s in %s if it is a plain HTTP server, else check the port", t.Kind, t.Addr, tlsCause(e.Err), host, t.Setting)
	}
	return fmt.Sprintf("%s %s: %v", t.Kind, t.Addr, e.Err)
}

func (e *ReachError) Unwrap() error { return e.Err }

// tlsCause is the TLS layer's own words, without the URL and dial
// prefixes around them.
func tlsCause(err error) string {
	var cert *tls.CertificateVerificationError
	if errors.As(err, &cert) {
		return cert.Err.Error()
	}
	var rec tls.RecordHeaderError
	if errors.As(err, &rec) {
		return rec.Msg
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// reachError wraps err in a *ReachError when it is a failure to reach the
// source of specs; other errors are returned as they are.
func reachError(err error, specs []string, opts source.OpenOptions) error {
	r := retry.ReachOf(err)
	if r == retry.Reached {
		return err
	}
	t, terr := TargetOf(specs, opts)
	if terr != nil || t.ID == "" {
		return err
	}
	return &ReachError{Target: t, Reach: r, Err: err}
}
