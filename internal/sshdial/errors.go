package sshdial

import (
	"errors"

	"github.com/haul-dev/haul/internal/retry"
)

// The dialler's sentinels. Each is permanent (retry.Permanent): a person
// has to change the command, the config or the keys. The SFTP source maps
// them to its own (bad source, access denied, not found). Network
// failures are returned as they are; retry.Classify calls them transient.
var (
	// ErrConfig means the URL, ~/.ssh/config or known_hosts cannot be
	// used as they are (a bad port, a ProxyJump loop, ProxyCommand, a
	// malformed line).
	ErrConfig = retry.Mark(retry.Permanent, errors.New("bad ssh setting"))
	// ErrAuth means the server refused every key offered, or a key could
	// not be read or unlocked.
	ErrAuth = retry.Mark(retry.Permanent, errors.New("access denied"))
	// ErrNoHost means a host name does not resolve.
	ErrNoHost = retry.Mark(retry.Permanent, errors.New("not found"))
)

// permanent marks err as not worth retrying.
func permanent(err error) error { return retry.Mark(retry.Permanent, err) }
