package sshdial

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/haul-dev/haul/internal/retry"
)

// TestDialErrorKeepsDNSError: a name that does not resolve is ErrNoHost
// and keeps the resolver's *net.DNSError, so that the contact rule
// (retry.ReachOf) tells it apart from a server that answered.
func TestDialErrorKeepsDNSError(t *testing.T) {
	cause := &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "gone.invalid", IsNotFound: true}}
	err := dialError("ssh u@gone.invalid:22", cause)
	var dns *net.DNSError
	if !errors.As(err, &dns) || dns.Name != "gone.invalid" {
		t.Fatalf("the *net.DNSError is lost: %v", err)
	}
	if !errors.Is(err, ErrNoHost) {
		t.Errorf("not ErrNoHost: %v", err)
	}
	if r := retry.ReachOf(err); r != retry.NoSuchHost {
		t.Errorf("ReachOf = %v, want %v", r, retry.NoSuchHost)
	}
	if !retry.IsPermanent(err) {
		t.Errorf("a name that does not resolve must be permanent for a plain retry: %v", err)
	}
	if got := err.Error(); !strings.Contains(got, "ssh u@gone.invalid:22") || !strings.Contains(got, "no such host gone.invalid") {
		t.Errorf("message %q does not name the hop and the host", got)
	}
}
