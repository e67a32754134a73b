// Package destdir is DEST on disk, with no engine and no source: where the
// part files are, how haul opens them, and what it checks on them.
//
//   - Dir names a part's files (NAME.partial while it comes, NAME once it
//     is proven) and opens them only through internal/safefs: a link or a
//     file with more than one hard link is never written through nor taken
//     as a part's bytes. Promote gives a proven part its final name after
//     making sure the name still holds the file written; Unname takes it
//     back from a part found broken.
//   - Prove proves a part as it completes in one sequential pass (every
//     reference and structural check at once, integrity.VerifyFile),
//     counting the manifest piece hashes the engine compared on arrival;
//     RefetchPieces says which pieces come again when it fails. A
//     Follower runs the same pass over a big part while it comes, each
//     stretch once the engine has made it durable (Followers).
//   - Verify re-reads every complete part (up to MaxVerifiers at once),
//     proves it against every reference in the state, and, when a
//     multi-part set has parts no reference proves, decodes the set as one
//     stream (the caller's SetCheck); the state records the verdicts.
//     LoadChecked and Check re-establish the state's verdicts from the
//     files (chunk.Recheck) without a full read when nothing changed.
//   - SameSet keeps one set per DEST: the sources of a run are compared with
//     those the state names, their secrets and changing query strings left
//     out, and another set is refused (*OtherSetError) unless replaced.
//
// The transfer engine (package fetch) writes through Dir; `haul verify` and
// `haul status` use the rest without one.
package destdir
