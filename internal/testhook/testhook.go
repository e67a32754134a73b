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
//   - HAUL_TEST_DB_DELAY (a Go duration): a pause after each statement of
//     a database import, so a test can stop a small import in its middle.
package testhook

import (
	"os"
	"time"
)

const (
	fastRetryEnv   = "HAUL_TEST_FAST_RETRY"
	logIntervalEnv = "HAUL_TEST_LOG_INTERVAL"
	dbDelayEnv     = "HAUL_TEST_DB_DELAY"
)

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
