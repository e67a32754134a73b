// Package sshdial is haul's SSH client, close to OpenSSH in what it reads
// and refuses:
//
//  1. New resolves a URL's host with ~/.ssh/config (Host blocks, HostName,
//     User, Port, IdentityFile, IdentitiesOnly, IdentityAgent,
//     UserKnownHostsFile, HostKeyAlias, ConnectTimeout, ServerAlive*), and
//     its ProxyJump chain, each hop with its own Host block; ProxyCommand
//     is refused (no shell commands from the config).
//  2. Host keys are checked against known_hosts strictly, per hop: an
//     unknown key stops with its fingerprint (*HostKeyError) unless
//     accept-new records it; a changed key is always refused.
//  3. Authentication offers -i, the agent's keys, then the config's or the
//     default keys; an encrypted key's passphrase is asked for once per
//     Dialer and the unlocked key serves every connection and hop.
//  4. Dial connects to the first hop, opens a direct-tcpip channel through
//     it to the next, and so on to the target, within a handshake deadline
//     that pauses while a passphrase prompt waits; keepalives close a
//     connection whose server stops answering.
//
// Its own sentinels (ErrConfig, ErrAuth, ErrNoHost, ErrHostKey*) are
// permanent; network failures are returned as they are.
package sshdial
