// Package testhook is the one place where production code reads switches
// that exist for end-to-end tests (and the demo, whose faults are its own).
// Each is an environment variable, so a test can set it on a haul it runs
// as a child process; none is for users, and none weakens a check: they
// only shorten waits (or lengthen one, to stop a run at a chosen point).
//
//   - HAUL_TEST_FAST_RETRY (any value): retries back off 5 ms … 50 ms
//     instead of 1 s … 30 s, so fault tests finish in seconds.
//   - HAUL_TEST_LOG_INTERVAL (a Go duration): the log reporter's line
//     interval instead of 10 s, so a test sees several lines.
//   - HAUL_TEST_NO_DNS (any value): dials that go through DialContext
//     resolve no host name but localhost; any other name fails at once as
//     "no such host", the resolver's own error, so a test of a name that
//     does not resolve sends no DNS query off the machine.
//   - HAUL_TEST_DB_DELAY (a Go duration): a pause after each statement of
//     a database import, so a test can stop a small import in its middle.
package testhook

import (
	"context"
	"net"
	"os"
	"strings"
	"time"
)

const (
	fastRetryEnv   = "HAUL_TEST_FAST_RETRY"
	logIntervalEnv = "HAUL_TEST_LOG_INTERVAL"
	noDNSEnv       = "HAUL_TEST_NO_DNS"
	dbDelayEnv     = "HAUL_TEST_DB_DELAY"
)

// Dial is the signature of net.Dialer.DialContext.
type Dial func(ctx context.Context, network, addr string) (net.Conn, error)

// DialContext returns dial, or under HAUL_TEST_NO_DNS a dial that answers
// every host name but localhost with the error a resolver gives for a name
// that does not exist, without asking one.
func DialContext(dial Dial) Dial {
	if os.Getenv(noDNSEnv) == "" {
		return dial
	}
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second}).DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err == nil && net.ParseIP(host) == nil && !strings.EqualFold(host, "localhost") {
			return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
		}
		return dial(ctx, network, addr)
	}
}

// FastRetry reports whether retries should back off in milliseconds.
func FastRetry() bool { return os.Getenv(fastRetryEnv) != "" }

// SetFastRetry switches FastRetry on for this process (the demo, whose
// faults are injected by itself).
func SetFastRetry() { os.Setenv(fastRetryEnv, "1") }

// LogInterval is the log reporter's interval: def unless a test set one.
func LogInterval(def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(logIntervalEnv)); err == nil && d > 0 {
		return d
	}
	return def
}

// DBDelay is the pause after each statement of a database import: zero
// unless a test set one.
func DBDelay() time.Duration {
	if d, err := time.ParseDuration(os.Getenv(dbDelayEnv)); err == nil && d > 0 {
		return d
	}
	return 0
}
