package chunk

import "github.com/haul-dev/haul/internal/safefs"

// OpenStateDir opens DEST/.haul, creating it (mode 0700) when create is
// true and it is absent. It must be a real directory owned by this user,
// mode 0700; otherwise the error is a *safefs.UnsafeError naming it (exit
// 1). Every file haul keeps there is opened through the returned Dir, so
// none is ever reached through a link.
func OpenStateDir(dest string, create bool) (*safefs.Dir, error) {
	d, err := safefs.Open(dest)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if create {
		return d.Private(StateDir)
	}
	return d.OpenPrivate(StateDir)
}
