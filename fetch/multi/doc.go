// Package multi is a source made of several copies of one set: the
// primary SOURCE and its mirrors (--mirror, --mirror-list). It implements
// the source contract, so the transfer engine runs over it unchanged and
// only tells it, through the optional abilities source.Healer, Pooler and
// Accounter, what failed proof and how many workers to start.
//
//  1. Open opens every mirror (source/open: the same SSH rules, the same
//     S3 and HTTP options as the primary). A mirror that cannot be opened
//     is a warning and the run goes on without it; only the primary is
//     fatal. An HTTP(S) mirror given as a base URL ending in "/" and a
//     --mirror-list (one URL per part, for presigned mirrors) are opened
//     on the first listing, when the part names are known.
//  2. List is the primary's listing: the primary alone defines the set
//     (names, sizes, versions) and its references prove every part. Each
//     mirror is listed beside it; a part a mirror lacks, or on whose size,
//     MD5 ETag or stated digest it disagrees, is not read from that mirror
//     (one warning per mirror and part).
//  3. ReadRange routes each read of a part to the copy expected to deliver
//     it first: its measured per-connection rate and answer time, and the
//     time until one of its connections is free (-j per copy, or URL#j=N).
//     A copy not measured yet gets one read at a time until it is. A read
//     may wait for a busy copy that is expected to be first, never longer
//     than a third of the stall timeout; reads waiting for one copy get
//     its connections in the order they came. The engine's endgame splits
//     a slow span; its second half is routed like any read, so it goes to
//     a faster copy. Whether a read may be split is the copy's (an SFTP
//     copy's may not: read.NoSplit). Reads of other objects (reference
//     files) go to the primary.
//  4. Healing: the engine blames the bytes of a piece or part that failed
//     proof (Blame, with the part's references); the copies that served
//     them are charged, and every copy that can hash where it lives (SSH,
//     source.RemoteHasher) is asked for the SHA-256 of those bytes
//     (vet.go). The next read of them goes to a copy whose hash matched,
//     else to the copy charged least (in the order the copies were given,
//     so that the whole of a part that failed as a whole comes from one
//     copy); a copy whose hash differs is not read for them. A mirror with
//     #j=0 serves only such reads. The engine gives a part --retries tries
//     per copy not shown bad (Copies), and a broken part's error says what
//     each copy gave (Explain).
//  5. A mirror's failure never stops the run: its errors reach the engine
//     as transient, the mirror rests with a growing pause, and a mirror
//     that changed, lacks a part or ignores Range is dropped for that part.
//  6. Every byte of a part a copy delivers is counted for that copy
//     (Accounts); the counts sum to the bytes the engine pulled.
package multi
