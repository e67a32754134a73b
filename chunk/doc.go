// Package chunk owns the resume state of a set: the pieces of each part,
// which of them are durably on disk, and the journal of runs.
//
//  1. A part of Size bytes is cut into pieces of PieceSize bytes, the last
//     one shorter (Pieces, PieceRange).
//  2. The transfer engine writes a piece into NAME.partial, fsyncs the file,
//     and only then marks the piece in Part.Done and saves state.json with
//     WriteFileAtomic (temp, fsync, rename, fsync dir). The state therefore
//     never claims bytes that are not on disk.
//  3. On start nothing is trusted that cannot be re-checked: piece hashes of
//     what was written let a resume re-check local data.
package chunk
