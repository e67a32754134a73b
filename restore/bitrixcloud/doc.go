// Package bitrixcloud downloads the files a Bitrix site keeps in the
// Bitrix cloud, as Bitrix's restore.php does after unpacking a backup
// (restore.php in the public repository Wladimir-N/bitrix-docker-compose,
// bitrix-distr/www/restore.php: RESTORE_CLOUD_FILE_LIST and the
// cloud_download step with CMultiGet), from the command line and
// resumably, through haul's transfer engine (package fetch).
//
// The facts it follows from restore.php:
//   - The list is DIR/bitrix/restore_cloud.php, else
//     DIR/bitrix/restore_cloud.txt (with both, restore.php deletes the
//     .txt). A line starting with `<?php` is passed over; every other
//     line, trimmed, is `YYYY-MM-DD HH:MM:SS<blanks>SIZE<blanks>PATH`, or
//     restore.php stops with a parse error.
//   - PATH is the object at the CDN: the URL is https://HOST/PATH, HOST
//     one of cdn.bitrix24.ru, cdn.bitrix24.com, cdn.bitrix24.de,
//     cdn-ru.bitrix24.ru, cdn-ru.bitrix24.de (DefaultHosts), the fastest
//     first, passing to the next when one fails. The file goes to DIR/upload/ + PATH
//     without its first element (the bucket).
//   - Passed over: a path under upload/ whose first element ends in
//     `cache` or `tmp`, or names `test.txt` (`#^[^/]*(cache/|tmp/|test.txt)#`),
//     and a file already there with the listed size.
//   - A file no host serves is logged in DIR/bitrix/restore_cloud_404.php
//     (first line `<?php die(); ?>`), and the list is removed at the end.
//
// Run, in order:
//
//  1. Find the list; none means nothing to do.
//  2. Survey: read the list once, streaming. Every line must parse
//     (*FormatError) and every path be safe — relative, no `..`, `.` or
//     empty element, no backslash or NUL — or nothing is downloaded
//     (*UnsafeError, exit 1). Count the files to fetch; note which of
//     them the batch of an interrupted run left in Work.
//  3. Fetch in batches of 8×-j files (32…256), the leftover batch first,
//     then the list in order. Each batch is one fetch.Fetch into
//     Work/batch with a source of this package: an object per file,
//     named for its line, sized as listed. A read goes to the fastest
//     host: each host's answers are timed from the request to the last
//     byte (a slow answer counts as much as a slow stream), a host not
//     measured yet is asked once before that, one that failed goes
//     last, and every 32nd read goes to another host so that a host
//     measured slow once is measured again; a host that fails passes
//     the read to the next. The listed size is the proof: an answer for
//     another size is bad data, fetched again up to --retries, then a
//     miss. A file every host
//     answers 4xx for is a miss at once: it ends the engine's run, and
//     the rest of the batch runs again without it. --timeout, --retries
//     and --bwlimit apply as in the fetch; the engine's state makes a
//     batch resumable after kill -9, so a rerun pulls only what is
//     missing.
//  4. Place each complete file under upload/: every directory on the way
//     is opened without following links (a link there, even inside the
//     site, is refused and named); the file is renamed (or copied, across
//     file systems) beside its place and renamed over it, so a link at
//     the place is replaced, never written through. Work/batch is then
//     emptied.
//  5. With misses, write restore_cloud_404.php (`DATE SIZE PATH: why`
//     per line) and keep the list, so a rerun tries them again
//     (*MissingError, exit 3); with none, remove the list and an old
//     miss log, as restore.php does.
//
// Why batches, and why this size: batches came when the engine
// rewrote its whole state on every commit. Its state is now a
// snapshot and a log (chunk/store.go), so that reason is gone; the
// batch still bounds memory (the engine's plan and state, the
// source's objects: O(batch), not O(list)) and a rerun's leftover
// work. Its cost is one engine run per batch, and one more per miss
// in it. BenchmarkList20k (files of 100-1,000 bytes from a local
// host, -j 8; 2026-11-29, a loaded 2-core VM): 20,000 files at 256
// took 95-110 s (about 5 ms a file); 2,000 files took 11-15 ms a
// file at 64, 256 and 2,048 alike, within the noise. The process
// is on the CPU a sixth of that time: it waits on fsyncs (the
// engine's per part, and the directory a file lands in, now once
// per directory and batch), not on the runs, so 256 stays.
//
// Work is haul's (DEST/.haul/cloud): the engine's batch, the list's
// digest and status.json (Status, for `haul status`), written once the
// list is read, after each batch and at the end. The site gets the
// files and nothing else. Progress reports the files placed, the bytes
// pulled and the misses as they come. Memory holds one batch and the
// misses, never a file's bytes; the list is read twice, never held, so
// a list of 100,000 lines costs two passes and a stat per line.
package bitrixcloud
