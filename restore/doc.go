// Package restore turns the verified parts of a set into a tree on disk
// (`haul restore DEST --into DIR`), or into the joined archive
// (`--assemble FILE`), and checks a set's structure without writing
// anything (Test, used by fetch for archives split at arbitrary bytes).
//
// Restore runs these steps:
//
//  1. Run loads DEST/.haul/state.json and refuses while a part is broken,
//     missing, pending or partial (*PartsError, exit 3, naming the parts and
//     the command that fixes them). Unverified parts are restored with a
//     warning.
//  2. The parts are read as one stream (Join) without a joined copy on
//     disk; Join maps every offset back to (part, offset in the part), so
//     a decode error says e.g. "gzip: checksum error in site.tar.gz.4 at
//     byte 123456". Zip is read through Join's io.ReaderAt.
//  3. The format comes from the first bytes of the first part, else from
//     its name: tar, tar.gz (any number of members), tar.zst, tar.xz,
//     tar.bz2, zip, or a Bitrix multi-volume backup. For Bitrix, volumes
//     are ordered by number (.9 before .10), the LN field of the first one
//     names the last, and every missing volume is named before anything is
//     written. Each volume is decoded as its own gzip file and must yield
//     the tar bytes its BX field says.
//  4. The first decoded block is read before anything is written: an
//     encrypted Bitrix archive's header (.enc.gz, .enc) must open with the
//     password, with AES-256 or Blowfish (ECB, tried in that order as
//     Bitrix does; ErrPassword when neither opens it); otherwise it must
//     be a tar header.
//  5. Free space: the file system of DIR must have at least what the
//     archive announces (Bitrix BX sizes, the last gzip ISIZE, the zip
//     central directory, at least the parts' size): ErrNoSpace otherwise.
//     It is a lower bound (an ISIZE is modulo 4 GiB), so each file's
//     header is checked against the space left before the file is
//     written; running out anyway fails the restore cleanly.
//  6. DIR must be absent or empty (ErrNotEmpty). The tree is built in
//     DIR.haul-staging-<hash> beside it, held with an flock. Staging
//     directories whose lock is free were left by a killed run: they are
//     removed, and the extraction starts over (it does not resume
//     mid-archive: decoding a compressed stream cannot start in the
//     middle, and a restart is what makes the result trustworthy).
//  7. Decoding runs in its own goroutine, a few 1 MiB chunks ahead of
//     extraction, as gzip runs beside tar in `tar -xzf`; Bitrix decryption
//     happens there too.
//  8. Every entry goes through an os.Root on the staging directory and is
//     checked first: absolute names, "..", paths over PATH_MAX or names
//     over NAME_MAX, writes through a symlink, a
//     symlink whose target is absolute or climbs above the tree (targets
//     may only climb before they descend), hard links to anything but a
//     file already in the tree, anything replacing a directory, device
//     files and FIFOs all stop the restore with *UnsafeError (exit 1).
//     setuid/setgid bits are dropped (one warning); duplicate names
//     replace the earlier entry, as with tar; a header that claims more
//     data than the archive holds is refused as unsafe. Directories are
//     entered one name at a time from the one open before (never by a
//     whole path from the top), and the context is checked at each level,
//     so any depth restores in linear time and stops at once.
//     PAX records GNU tar accepts with a warning (a malformed time, a
//     path with a NUL) are repaired the same way, with one warning naming
//     the entry (lenient.go). GNU incremental directories ('D') restore as
//     directories; with Options.Incremental their name lists are applied
//     (incremental.go), and RestoreChain applies a chain of sets, level 0
//     first, into one staging directory.
//  9. Modes, mtimes (of symlinks too) and, with SameOwner as root, owners
//     are set; directories last, in one walk over the tree that sets each
//     after everything below it, once nothing more is written inside them.
//  10. On any error the staging directory is removed and DIR is untouched.
//     On success the file system is synced (syncfs) and the staging
//     directory renamed to DIR in one step, then the parent is fsynced: a
//     kill at any instant leaves either no tree or the whole tree at DIR.
//
// Errors and where they point:
//   - The stream is decoded to its very end even after the tar end marker,
//     so the last gzip CRC, zstd frame checksum and Bitrix BX are checked.
//   - A tar error found while decoding a compressed stream is reported
//     only after the rest of the stream has been decoded: if the
//     compression layer is damaged further on, that error is the cause and
//     is returned instead.
//   - Damage in stored (incompressible) data is only seen by a checksum
//     that may cover several parts: a gzip member, a zstd frame or xz
//     block, a zip entry. The FormatError then carries a *SpanError
//     listing those parts; one of them is damaged. Bitrix volumes are
//     separate gzip files, so their errors always name the volume.
package restore
