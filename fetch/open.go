package fetch

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/haul-dev/haul/internal/redact"
)

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
	Endpoint  string // --endpoint or AWS_ENDPOINT_URL
	Region    string // --region or AWS_REGION
	Anonymous bool   // --anonymous
}

// OpenOptions configures how a SOURCE string becomes a Source.
type OpenOptions struct {
	S3  S3Options
	SSH SSHOptions
	// ProbeParts derives NAME.1, NAME.2 … for a single HTTP URL by trying
	// the next number until the server says 404.
	ProbeParts bool
}

// Opened is a parsed SOURCE: the Source, and the name prefix that selects
// the set inside the source's directory ("" = every file).
type Opened struct {
	Source Source
	Prefix string
}

// Open turns one SOURCE argument into a Source.
func Open(ctx context.Context, spec string, opts OpenOptions) (*Opened, error) {
	u, err := url.Parse(spec)
	if err != nil || u.Scheme == "" || len(u.Scheme) == 1 { // "C:" style or plain path
		return openLocal(spec)
	}
	switch strings.ToLower(u.Scheme) {
	case "file":
		return openLocal(u.Path)
	case "s3":
		return openS3(ctx, u, opts.S3)
	case "http", "https":
		return openHTTP(ctx, []string{spec}, opts)
	case "sftp", "ssh":
		return openSFTP(ctx, u, opts.SSH)
	}
	return nil, fmt.Errorf("source %q: unknown scheme %q (want s3://, https://, http://, sftp://, ssh://, file:// or a path): %w", Redact(spec), u.Scheme, ErrBadSource)
}

// Redact returns a URL with its query string, fragment and password
// removed, for messages (redact.URL).
func Redact(spec string) string { return redact.URL(spec) }

// OpenSources opens the SOURCE arguments of a command: any number of
// HTTP(S) URLs (one part each), or exactly one other source. A --list
// file's URLs arrive here as separate arguments.
func OpenSources(ctx context.Context, specs []string, opts OpenOptions) (*Opened, error) {
	if len(specs) == 0 {
		return nil, Permanent(fmt.Errorf("no SOURCE given: %w", ErrBadSource))
	}
	allHTTP := true
	for _, s := range specs {
		l := strings.ToLower(s)
		if !strings.HasPrefix(l, "http://") && !strings.HasPrefix(l, "https://") {
			allHTTP = false
		}
	}
	if allHTTP {
		return openHTTP(ctx, specs, opts)
	}
	if len(specs) > 1 {
		return nil, Permanent(fmt.Errorf("several SOURCEs given (%s, …): give one s3://, sftp:// or local source, or any number of https:// URLs: %w", Redact(specs[0]), ErrBadSource))
	}
	return Open(ctx, specs[0], opts)
}
