// Package gen builds realistic test data: a site tree, and backups of it in
// the shapes haul restores. Restore tests, `haul demo` and the benchmarks use
// it, so it is ordinary code (no testing import) and deterministic: the same
// arguments give the same bytes.
//
//   - Tree writes a Bitrix-like site: nested directories, many small
//     PHP/HTML/CSS/JS files that compress well, some larger random binaries,
//     relative symlinks (to files and to directories), hard links, a name
//     longer than 100 bytes, UTF-8 names with spaces, varied modes (0600,
//     0444, 0755, a 0555 directory) and mtimes in whole seconds.
//   - BitrixSet writes a Bitrix multi-volume backup of a directory, as the
//     CTar class of Bitrix's main module (classes/general/backup.php) does.
//   - SplitTarGz writes a GNU tar archive compressed as gz, zst, xz or bz2
//     (or a zip, or a plain tar) and cuts it at arbitrary bytes into
//     NAME.000, NAME.001, ...
//
// # Bitrix layout
//
// Each volume (NAME.tar.gz, NAME.tar.gz.1, ...) is its own gzip file:
//
//  1. An empty first member with FEXTRA, written byte for byte like
//     CTar::createEmptyGzipExtra: the 10-byte header with FLG=4, XLEN=10,
//     then 10 extra bytes: offsets 12-15 hold "LN" + uint16 LE last volume
//     number in the first volume of a multi-volume set (zeros otherwise),
//     offsets 16-21 hold "BX" + uint32 LE, the tar bytes this volume holds.
//     The empty deflate body is the one Bitrix hard-codes (an empty stored
//     block and an empty final block), then CRC and ISIZE of zero.
//  2. One or more data members. Bitrix appends a member each time a backup
//     step reopens the volume (gzopen "ab"); we start a new one every
//     4 MiB of tar bytes to get the same shape.
//
// The tar stream is cut into volumes at 512-byte blocks: a volume holds
// volumeSize bytes rounded up to a block (CTar checks the limit before
// each block). Headers are old style, as CTar::writeHeader packs them:
// octal numbers without zero padding, NUL-terminated ("644\x00..."), empty
// magic and version, empty uname/gname, directories named with a trailing
// slash and type '5', files type '0'. A path longer than 100 bytes is
// preceded by a GNU 'L' header named "././@LongLink" whose one data block
// holds the path (CTar refuses paths over 512 bytes, and so do we).
//
// Encrypted sets (a password) are named NAME.enc.gz, NAME.enc.gz.1, ...
// (NAME.enc, NAME.enc.1, ... without compression) and start their tar
// stream with a plaintext 512-byte block: the first 100 bytes are
// md5(uniqid()) as 32 hex digits, NUL-padded (pack "a100"), then "Bitrix
// Encrypted File" padded to 90, the version "1.2" padded to 10, 56 zero
// bytes, then those first 256 bytes encrypted. Everything after it is
// encrypted in ECB mode with the key being the 32 ASCII characters of the
// lowercase hex MD5 of the password: AES-256 (16-byte blocks) in current
// Bitrix versions (CTar::getDefaultCryptoAlgorithm), Blowfish (8-byte
// blocks) in older ones; both write "1.2". CTar encrypts each 51200-byte
// write buffer before gzip, so the whole stream is encrypted; it pads a
// buffer with zeros to the cipher block, which never happens because the
// stream is made of 512-byte blocks. BX counts the header block too.
//
// Without compression (BitrixOptions.NoGzip) a volume is the raw stream:
// no empty member and no LN/BX fields, volumes cut at the same limit.
//
// Where the format is not written down anywhere, these are our reading of
// CTar, documented as guesses:
//   - CTar writes no end-of-archive zero blocks; its reader stops at the
//     end of the last volume. We write none either (restore accepts both).
//   - CTar stats files (following symlinks): a symlink to a file is stored
//     as a regular file with the target's content, mode and mtime; a
//     symlink to a directory inside the site is skipped (CBackup::ignorePath);
//     a broken symlink is skipped; hard links become separate files. Modes
//     are masked with 0777; uid and gid are the file's.
//   - The random hex of the encrypted header comes from the set name here,
//     so that the output is deterministic.
package gen
