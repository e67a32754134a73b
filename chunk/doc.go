// Package chunk owns what haul keeps in DEST/.haul: the resume state of a
// set, the journal of runs, the run lock, and the status and report built
// from them.
//
//  1. A part of Size bytes is cut into pieces of PieceSize bytes, the last
//     one shorter (Pieces, PieceRange).
//  2. The transfer engine writes pieces into NAME.partial and, every
//     100 ms, commits: fsync of the files, then one append of framed
//     records (piece done with its digest, how far each piece in flight
//     durably got, a part's changed record) to state.log and one fsync
//     (statelog.go). state.json is a snapshot, rewritten (temp, fsync,
//     rename, fsync dir) only when the log has outgrown it; the log names
//     the snapshot generation it extends, and a torn last record is
//     dropped on load. The state therefore never claims bytes that are
//     not on disk, and a commit costs the same at 10 or 100,000 parts.
//  3. On start nothing is trusted that cannot be re-checked: piece digests
//     of what was written let a resume re-check local data, and a piece
//     resumed from its durable progress first reads that prefix back and
//     compares it with the digest recorded (ResumeDigest).
//  4. Every run appends events to journal.jsonl (one JSON object a line,
//     a torn last line is skipped on read); BuildReport turns them into the
//     timeline of `haul report`, and BuildStatus uses the last run's rate
//     for the ETA of `haul status`.
//  5. LockFor takes an flock on DEST/.haul/lock for the run and writes the
//     holder's PID into it; a crashed run leaves no stale lock.
package chunk
