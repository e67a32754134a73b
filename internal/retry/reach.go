package retry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"syscall"
)

// Reach says whether an error is a failure to reach a server at all, and
// how: the name does not resolve, nothing listens, no route, TLS fails, or
// something answers in another protocol. For a source never reached
// before, each of these is far more often a wrong address than a network
// that is down (the exit-code rule of the README); Classify says, as for
// any error, whether another try may help.
type Reach int

const (
	// Reached means err is not a failure to reach the server (nil, a
	// cancelled context, or an answer from the server itself).
	Reached Reach = iota
	// NoSuchHost: the host name does not resolve (DNS answered "no such
	// host").
	NoSuchHost
	// Refused: the host answered but nothing listens on the port.
	Refused
	// NoRoute: the host or its network is unreachable, or the connect
	// timed out (a wrong address, or a firewall dropping packets).
	NoRoute
	// TLSFailed: the TLS handshake failed or the certificate does not
	// verify for this name.
	TLSFailed
	// WrongProtocol: something answered, but not in the protocol asked
	// for (plain HTTP to an HTTPS request, not TLS at all).
	WrongProtocol
)

var reachNames = [...]string{"reached", "no such host", "connection refused", "no route", "TLS failed", "wrong protocol"}

func (r Reach) String() string {
	if r >= 0 && int(r) < len(reachNames) {
		return reachNames[r]
	}
	return "reach(?)"
}

// Network reports whether r is a failure of the way to the server (a
// name, a port, a route) rather than of the server's identity or protocol:
// once a server has been reached, such a failure is the network down.
func (r Reach) Network() bool { return r == NoSuchHost || r == Refused || r == NoRoute }

// ReachOf sorts err by the way a server could not be reached; Reached
// when it is not such a failure. Like Classify, it decides from the
// error's types alone (net/http's scheme-mismatch sentinel included).
func ReachOf(err error) Reach {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Reached
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		if dns.IsNotFound || !(dns.IsTimeout || dns.IsTemporary) {
			return NoSuchHost
		}
		return Reached // the resolver itself is unreachable: the network, not the name
	}
	var (
		rec   tls.RecordHeaderError
		cert  *tls.CertificateVerificationError
		alert tls.AlertError
		unk   x509.UnknownAuthorityError
		host  x509.HostnameError
		inv   x509.CertificateInvalidError
	)
	switch {
	case errors.Is(err, http.ErrSchemeMismatch), errors.As(err, &rec):
		return WrongProtocol
	case errors.As(err, &cert), errors.As(err, &alert), errors.As(err, &unk), errors.As(err, &host), errors.As(err, &inv):
		return TLSFailed
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return NoRoute
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" && op.Timeout() {
		return NoRoute
	}
	return Reached
}
