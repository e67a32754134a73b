// Package bitrixdb finishes the restore of a Bitrix site: it imports the
// database dump the backup carries into MySQL/MariaDB, resumably, points
// the site at the new database, applies Bitrix's settings fixes and
// cleans up, as Bitrix's restore.php does in a browser, from the command
// line (`haul restore/run … --db URL`).
//
// Run does these steps; a rerun continues where the last one stopped:
//
//  1. The dump: bitrix/backup/NAME.sql, continued in NAME.sql.1, .sql.2, …
//     (CBackup starts a new part before a write that would pass 2e9
//     bytes), and NAME_after_connect.sql. Several dumps need a pick
//     (*SeveralDumpsError lists them). The last part must end with the
//     "-- Finished:" line, else the backup was cut short (ErrDumpFormat).
//  2. The connection (go-sql-driver/mysql, one connection), set up as
//     restore.php does on every connect: FOREIGN_KEY_CHECKS=0, the
//     database (CREATE DATABASE IF NOT EXISTS with Create), an empty SQL_MODE,
//     innodb_strict_mode=0 (errors ignored), the after-connect statements
//     with <DATABASE> replaced (errors reported, ignored); on a resume the
//     dump's SET statements seen so far (SET NAMES) are replayed.
//  3. Before the first statement: a privilege check on a scratch table
//     and view (CREATE, INSERT, UPDATE, DELETE, CREATE VIEW, DROP; a
//     refusal names the privilege), and max_allowed_packet against the
//     largest statement, found by a pre-scan at disk speed (in a Bitrix
//     dump a quoted value never holds a raw newline, so each line ending in
//     ';' ends a statement). A statement too large stops the import before
//     anything runs, naming its size and `SET GLOBAL max_allowed_packet=…`
//     (*PacketError); the import loop checks each statement again.
//  4. The import: the parts are read as one stream (never held in memory;
//     only the statement being read is). A lexer splits it where a line
//     ends in ';' outside quotes, backticks and comments; inside quotes a
//     backslash escapes the next byte (mysqli_real_escape_string's
//     escaping), so ';', "),(" and escaped newlines in values are data.
//     Leading comments are dropped; each statement goes to the server
//     whole (COM_QUERY). Fallbacks: on a duplicate key (1062) the INSERT's
//     rows go one at a time and duplicates are skipped, rows split by the
//     same lexer; when a CREATE TABLE with FULLTEXT keys fails it is run
//     without them, later ones lose them too, and at the end b_option's
//     main/~ft_% rows are reset to a:0:{}; when a view's DEFINER needs a
//     privilege the user lacks (1227) the view is created without it (a
//     warning names it). Any other error stops with the statement's part,
//     offset and head (*StatementError); a broken connection is
//     ErrConnLost. Last, FOREIGN_KEY_CHECKS=1.
//  5. Resume: DEST/.haul/bitrixdb.json (temp file, fsync, rename) holds the
//     offset before which every statement is in the database, written at
//     most every SaveEvery (1 s) and when the run stops (deadline, signal:
//     the statement in flight finishes first). Only safe points are
//     recorded: places from which running the rest again gives the same
//     database. Not between DROP and CREATE (the CREATE would fail), not
//     inside the rows of a table without a primary or NOT NULL unique key
//     (rows would double: the rerun starts before that table's DROP and
//     builds it again). Inside a keyed table, statements that ran before a
//     kill -9 but after the last record run again and their rows are
//     skipped as duplicates. So a resumed import ends identical to an
//     uninterrupted one. A state for another dump (names and sizes) or
//     another database is not trusted: the import starts over, which the
//     dump's DROP TABLEs make safe.
//  6. The site: in bitrix/php_interface/dbconn.php the lines starting with
//     $DBHost, $DBLogin, $DBPassword, $DBName are replaced (other bytes
//     kept; a missing file is written as restore.php writes it); in
//     bitrix/.settings.php connections.value.default.{host, database,
//     login, password} are replaced in the text of the array literal (no
//     PHP runs; missing keys are added). Values are single-quoted PHP
//     literals, where only \\ and \' are escapes, so any password is safe.
//     $DBHost is HOST, HOST:PORT off port 3306, or "localhost" for a socket
//     (PHP's default socket; Options.SiteDBHost overrides).
//  7. Settings fixes (restore.php's last step): b_lang.DOC_ROOT cleared
//     when a row names another non-empty root; with SiteHost, the Bitrix
//     CDN turned off when its domain is another host (cdn_config_active=0,
//     cdn_config_expire_time = now + 10 years), and the main/OnPageStart →
//     Bitrix\Security\HostRestriction handler deleted when
//     security/restriction_hosts_hosts does not contain the host. Without
//     SiteHost these two are skipped and reported.
//  8. Cleanup: every part (.sql, .sql.N — restore.php forgets them) and
//     the after-connect file unless KeepDump, and bitrix/{cache,
//     stack_cache, managed_cache, resize_cache, tmp}, through an os.Root
//     on the site. Then the state says done, and a rerun does nothing.
//
// The password comes from Credentials (a file, MYSQL_PWD, ~/.my.cnf
// [client]); it goes to the server and into the site's files, never into
// a message, the state file or a Result. The core never prints: progress
// and warnings go to a Progress.
package bitrixdb
