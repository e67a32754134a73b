// Package reffiles reads and writes the reference files of a set: sum
// files (SHA256SUMS, MD5SUMS…) and haul manifests found beside the parts,
// the one --manifest names, and the manifest `haul manifest` writes.
//
// Reading (Reader.Load), before any part is fetched:
//
//  1. Every reference file is refused above MaxFile bytes.
//  2. All of them are read at once, each cut into ranges (at least
//     2 KiB each) spread over up to Reader.Conns requests, through the
//     caller's ReadAt (package fetch retries it and watches it for stalls
//     as it does a part). A server that ignores Range gets the file read
//     whole instead.
//  3. Each is parsed (integrity.ReadManifest, integrity.ParseSumFile) into
//     one Index: the references of each part by name, and the piece size
//     of the first haul manifest, which the engine cuts its pieces to.
//  4. --manifest PATH is read from disk, a URL through its own source.
//
// A malformed file is an error naming it and the line.
package reffiles
