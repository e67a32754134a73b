// Package testenv gives haul's tests the real components users have and the
// bad links they suffer from, on 127.0.0.1 only.
//
//  1. MinIO: MinIOBinary finds the pinned MinIO server ($HAUL_MINIO, the
//     user cache, or a one-time `go install` under a file lock), StartMinIO
//     runs it for one test, and SharedMinIO runs one per test binary (the
//     package's TestMain must call Main). Put uploads single-part or
//     multipart objects with optional S3 additional checksums.
//  2. FaultServer: a static file server over HTTP with switchable faults
//     (rate caps, resets, stalls, bit flips, ignored Range, wrong
//     Content-Range, short bodies, gzip, 5xx) and exact byte counters. It
//     lives in internal/faultserver, which does not import package testing
//     (`haul demo` and benchmarks use it); the names here are aliases.
//  3. Helpers: CI, Missing, RequireTool, FreePort, Main, and StartHelper
//     and StartChild (the child process a kill -9 test kills).
//
// A component that cannot be had fails the test when CI=true and skips it
// otherwise; it is never skipped silently under CI.
package testenv
