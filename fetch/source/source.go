// Package source is the contract between the transfer engine and the
// places parts come from: Object, Source and every optional ability a
// source may have (Checksummer, RemoteHasher, Expecter, NoSplitter, and
// Healer, Pooler, Accounter of a source with mirrors), the
// options that open one, the errors a source answers with, and how a
// listing becomes a set (SelectSet). The sources themselves live in the
// packages below it (s3, web, sftp, local); open turns a SOURCE argument
// into one of them.
package source

import (
	"context"
	"io"
	"os"
	"slices"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/integrity"
)

// Object is one file or object at a source: a part or a reference file.
type Object struct {
	// Name is the object's name relative to the source's directory; it is
	// also the file name under DEST.
	Name string `json:"name"`
	Size int64  `json:"size"`
	// ETag is the server's entity tag without quotes, "" when none.
	ETag    string    `json:"etag,omitempty"`
	ModTime time.Time `json:"mtime,omitempty"`
	// URL is set by sources that address each object separately (HTTP).
	// It may hold a secret (a presigned query string): never print it.
	URL string `json:"url,omitempty"`
	// Refs are the references the source states for this object itself
	// (HTTP Content-MD5/Digest, an MD5 ETag). Optional.
	Refs []integrity.Reference `json:"refs,omitempty"`
	// Encoding is a stored Content-Encoding the server reports for the
	// object (it is then sent as-is, never decoded).
	Encoding string `json:"encoding,omitempty"`
}

// Version is the token a read is pinned to: the ETag when there is one,
// otherwise the modification time and size.
func (o Object) Version() string { return chunk.VersionToken(o.ETag, o.ModTime, o.Size) }

// Source is where the parts of a set come from.
type Source interface {
	// List returns every object in the source's directory (parts and
	// reference files alike), in any order. Selection by name prefix and
	// --include/--exclude happens in the caller.
	List(ctx context.Context) ([]Object, error)
	// ReadRange returns bytes [off, off+n) of obj. The read is pinned to
	// obj.Version(): if the object changed, it fails with an error that
	// wraps ErrChanged. The reader yields exactly n bytes or an error;
	// callers still count them.
	ReadRange(ctx context.Context, obj Object, off, n int64) (io.ReadCloser, error)
	// String names the source for messages, with no secret in it.
	String() string
	// Close releases connections.
	Close() error
}

// Checksummer is a Source that can state server-side references for an
// object beyond what List returned (S3 checksums, multipart ETag part sizes).
type Checksummer interface {
	References(ctx context.Context, obj Object) ([]integrity.Reference, error)
}

// RemoteHasher is a Source that can hash pieces where the data lives (SSH
// with sha256sum on the remote), so repair moves only pieces that differ.
type RemoteHasher interface {
	// HashPieces returns the SHA-256 of each listed piece of obj, where piece
	// i is bytes [i*pieceSize, min((i+1)*pieceSize, obj.Size)).
	HashPieces(ctx context.Context, obj Object, pieceSize int64, pieces []int) (map[int][]byte, error)
}

// Expecter is a Source that knows names the set must have even though it
// could not find them (a Bitrix first volume's LN field names the last
// volume). Such names are reported missing.
type Expecter interface {
	Expected() []string
}

// NoSplitter is a Source whose transfers the engine's endgame must not
// split: over SFTP a split drops pkg/sftp's read-ahead, so the server
// would read the bytes past the split point twice. A reader ReadRange
// returns may be one too (a source with copies: a read of an SFTP copy).
type NoSplitter interface{ NoSplit() bool }

// Healer is a Source that holds several copies of each part (fetch/multi:
// a primary and its mirrors). The engine tells it which bytes failed proof
// (Blame), so that the next read of them goes to another copy; gives a
// part as many tries as it has copies (Copies, times --retries); and
// appends what each copy gave to a broken part's error (Explain, "" when
// nothing was blamed).
type Healer interface {
	// Blame says bytes [off, off+n) of part failed proof (why); refs are
	// the part's references, for copies that can hash where they live.
	Blame(part string, off, n int64, why string, refs []integrity.Reference)
	Copies(part string) int
	Explain(part string) string
	// Healed is called once part is proven: from names the copies that
	// supplied the bytes that had failed proof, note says which bytes
	// ("" when none had).
	Healed(part string) (from, note string)
}

// HealerOf is s's Healer, or, for a source with one copy, one that
// counts one copy and blames nothing.
func HealerOf(s Source) Healer {
	if h, ok := s.(Healer); ok {
		return h
	}
	return oneCopy{}
}

type oneCopy struct{}

func (oneCopy) Blame(string, int64, int64, string, []integrity.Reference) {}
func (oneCopy) Copies(string) int                                         { return 1 }
func (oneCopy) Explain(string) string                                     { return "" }
func (oneCopy) Healed(string) (string, string)                            { return "", "" }

// FileCopier is a reader over a range of a local file that can move its
// next bytes into another file inside the kernel (copy_file_range), with
// no pass through the caller's memory. CopyTo copies at most n of them
// into dst at off, advancing the reader as Read would, and returns how
// many it copied (io.EOF at the range's end). It returns
// errors.ErrUnsupported, having copied nothing, when the kernel cannot
// copy between the two files; Read then serves the rest.
type FileCopier interface {
	CopyTo(dst *os.File, off int64, n int) (int, error)
}

// Answerer is a reader from a source with copies that knows how long its
// copy took to answer the read, not counting the wait for a free
// connection (the engine sizes its endgame by the answer time).
type Answerer interface{ AnswerTime() time.Duration }

// Pooler is a Source that keeps more transfers busy than -j: one pool of
// connections per copy. Connections is how many workers it can use.
type Pooler interface{ Connections() int }

// Account is what one source (named with no secret) delivered.
type Account struct {
	Source string `json:"source"`
	Bytes  int64  `json:"bytes"`
}

// AddAccounts adds more to to, summing the bytes of one source.
func AddAccounts(to []Account, more ...Account) []Account {
	for _, a := range more {
		i := slices.IndexFunc(to, func(x Account) bool { return x.Source == a.Source })
		if i < 0 {
			to = append(to, a)
			continue
		}
		to[i].Bytes += a.Bytes
	}
	return to
}

// Accounter is a Source made of several sources that counts the bytes of
// parts each of them delivered; they sum to the bytes the engine pulled.
type Accounter interface{ Accounts() []Account }

// Opened is a parsed SOURCE: the Source, and the name prefix that selects
// the set inside the source's directory ("" = every file).
type Opened struct {
	Source Source
	Prefix string
}

// SSHOptions configures SSH/SFTP sources.
type SSHOptions struct {
	// Identity is an extra private key file (-i); tried before the agent
	// and ~/.ssh/config's IdentityFile keys.
	Identity string
	// KnownHosts is the known_hosts file to check and record host keys in;
	// "" means ~/.ssh/known_hosts.
	KnownHosts string
	// AcceptNewHostKey records an unknown host's key (OpenSSH accept-new).
	// A changed key is always refused.
	AcceptNewHostKey bool
	// ConfigFile is the ssh config to read; "" means ~/.ssh/config.
	ConfigFile string
	// Passphrase asks for a key's passphrase; nil when there is no
	// terminal, so an encrypted key without an agent is a clear error.
	Passphrase func(keyFile string) ([]byte, error)
	// Timeout bounds the SSH connect and handshake (OpenOptions.Timeout;
	// open sets it); 0 means DefaultTimeout.
	Timeout time.Duration
	// Connections is the most SSH connections an SFTP source opens: one
	// more whenever every open one is busy with a read, so -j transfers
	// are -j TCP connections on a link that caps each. 0 means 1 (Fetch
	// and Repair default it to Options.Connections). An encrypted key's
	// passphrase is asked for once per source, however many connections
	// it opens.
	Connections int
}

// S3Options configures S3 sources.
type S3Options struct {
	Endpoint  string // --endpoint; "" = as the AWS CLI finds it (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, ~/.aws/config)
	Region    string // --region; "" = AWS_REGION, AWS_DEFAULT_REGION, ~/.aws/config
	Anonymous bool   // --anonymous
	// Timeout bounds every wait on the network (OpenOptions.Timeout; open
	// sets it); 0 means DefaultTimeout.
	Timeout time.Duration
}

// OpenOptions configures how a SOURCE string becomes a Source.
type OpenOptions struct {
	S3  S3Options
	SSH SSHOptions
	// ProbeParts derives NAME.1, NAME.2 … for a single HTTP URL by trying
	// the next number until the server says 404.
	ProbeParts bool
	// Timeout bounds every wait on the network (--timeout): a connect, a
	// handshake, an answer, a read that gets no byte for this long fails
	// as a transient fault. 0 means DefaultTimeout.
	Timeout time.Duration
}
