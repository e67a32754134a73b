// Package fetch is the transfer engine that moves the parts of a set into
// DEST, proves them, and repairs them. The sources it reads from (S3,
// HTTP(S), SFTP, local directories) and their contract are in fetch/source;
// what is retried is decided by internal/retry.
//
// A run (Fetch, or Repair with another source):
//
//  1. Open the SOURCE (source/open) and list its directory;
//     source.SelectSet keeps the parts
//     (natural order, name prefix, --include/--exclude) and the reference
//     files beside them (sum files, haul manifests).
//  2. prepare reads the references, asks the source for its own
//     (Checksummer: S3 checksums and ETags; HTTP digests), and reconciles
//     with DEST/.haul/state.json: a part whose version (ETag, or size and
//     mtime) changed starts from zero; complete parts must exist with their
//     size; done pieces of unfinished parts are re-hashed and kept only if
//     they match. With a manifest, pieces are cut to its piece size.
//  3. -j workers take missing pieces, earliest part first, and stream each
//     one through the rate limiter and a stall watchdog into NAME.partial
//     with WriteAt, hashing it on the way; a cut connection resumes inside
//     the piece. Retries use capped, jittered backoff; every read is pinned
//     to the version first seen, and a change sends the run back to 1.
//  4. Every 100 ms the committer fsyncs the files touched and only then
//     appends their new pieces (and digests), how far each piece in flight
//     has got, and changed part records to the state log, with one fsync
//     (chunk.Store); a kill loses about 100 ms per connection, and a clean
//     stop commits every byte in flight: the next run resumes inside the
//     piece, after reading its prefix back.
//  5. A part whose pieces are all durable is proven by a verifier (one per
//     core) in one sequential pass (every reference and structural check
//     at once, integrity.VerifyFile); it then takes its final name. A part that
//     fails goes back to step 3 — only its bad pieces when a manifest says
//     which — up to --retries times, then it is broken.
//  6. When every part is here, a multi-part set that no reference fully
//     proves is decoded as one stream (SetCheck); a part the decode blames
//     is fetched again.
//
// With --mirror, the source is a fetch/multi.Source over the primary and
// its mirrors (mirrors.go holds the hooks): the engine runs a worker per
// connection of every copy, blames the bytes that fail proof in steps 3,
// 5 and 6 so that they are read from another copy next, gives a part
// --retries tries per copy, and reports the bytes each copy delivered.
//
// Errors say what to do next: IncompleteError (exit 3), ErrInterrupted and
// ErrNetworkDown (exit 75, run again), permanent errors (exit 1). Every
// retry loop (opening and listing, pieces, whole-object streams, reference
// files) runs through retry.Do with the run's policy (--retries, backoff).
//
// DEST's files and their checks are in fetch/destdir, the reference files
// in fetch/reffiles: neither needs an engine.
package fetch
