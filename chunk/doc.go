// Package chunk owns what haul keeps in DEST/.haul: the resume state of a
// set, the journal of runs, the run lock, and the status and report built
// from them.
//
//  1. A part of Size bytes is cut into pieces of PieceSize bytes, the last
//     one shorter (Pieces, PieceRange).
//  2. The transfer engine writes a piece into NAME.partial, fsyncs the file,
//     and only then marks the piece in Part.Done and saves state.json with
//     atomicfile.WriteFile (temp, fsync, rename, fsync dir). The state therefore
//     never claims bytes that are not on disk.
//  3. On start nothing is trusted that cannot be re-checked: piece hashes of
//     what was written let a resume re-check local data.
//  4. Every run appends events to journal.jsonl (one JSON object a line,
//     a torn last line is skipped on read); BuildReport turns them into the
//     timeline of `haul report`, and BuildStatus uses the last run's rate
//     for the ETA of `haul status`.
//  5. LockFor takes an flock on DEST/.haul/lock for the run and writes the
//     holder's PID into it; a crashed run leaves no stale lock.
package chunk
