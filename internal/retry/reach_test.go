package retry

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReachOf sorts the errors real clients return on loopback: what a
// user gets from a wrong port, an HTTPS URL to a plain HTTP server, a
// certificate nobody trusts, TLS to something that is not TLS.
func TestReachOf(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer tlsSrv.Close()
	garbage, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer garbage.Close()
	go func() {
		for range 4 { // bounded: the test makes one connection
			c, err := garbage.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "SSH-2.0-OpenSSH_9.6\r\n")
			time.Sleep(50 * time.Millisecond)
			c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := closed.Addr().String()
	closed.Close()

	client := &http.Client{Timeout: 10 * time.Second}
	get := func(url string) error {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	for _, tc := range []struct {
		name string
		err  error
		want Reach
	}{
		{"answered", nil, Reached},
		{"cancelled", fmt.Errorf("x: %w", context.Canceled), Reached},
		{"wrong port", get("http://" + refusedAddr + "/"), Refused},
		{"https to plain http", get(strings.Replace(plain.URL, "http://", "https://", 1) + "/"), WrongProtocol},
		{"untrusted certificate", get(tlsSrv.URL + "/"), TLSFailed},
		{"tls to ssh", get("https://" + garbage.Addr().String() + "/"), WrongProtocol},
		{"name does not resolve", fmt.Errorf("open: %w", &net.OpError{Op: "dial", Err: &net.DNSError{Name: "x.invalid", Err: "no such host", IsNotFound: true}}), NoSuchHost},
		{"resolver timeout", &net.DNSError{Name: "h", IsTimeout: true}, Reached},
		{"no route", &net.OpError{Op: "dial", Err: syscall.EHOSTUNREACH}, NoRoute},
		{"reset mid-read", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, Reached},
	} {
		if got := ReachOf(tc.err); got != tc.want {
			t.Errorf("%s: %v (%v), want %v", tc.name, got, tc.err, tc.want)
		}
	}
	if !Refused.Network() || !NoSuchHost.Network() || TLSFailed.Network() || WrongProtocol.Network() {
		t.Error("Network: refused and no-such-host are the way to the server, TLS and protocol are not")
	}
}
