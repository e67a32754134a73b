package main

// End-to-end tests of the SFTP connection pool: -j transfers over sftp://
// are -j SSH connections (one TCP connection each, for links that cap
// each one), counted in the real sshd's log.

import (
	"testing"
	"time"
)

// TestSSHFetchPool: haul fetch -j N over sftp:// logs in N times (the
// transfers run at once: --bwlimit keeps each busy), and the parts are
// byte-identical, each read exactly once.
func TestSSHFetchPool(t *testing.T) {
	h := newSSHHost(t)
	parts := e2eNumberedSet("db.bak", 31, 900_000, 700_001, 500_000)
	h.put(t, parts)
	h.putManifest(t, parts)
	for _, tc := range []struct {
		j    string
		want int
	}{{"4", 4}, {"1", 1}} {
		t.Run("j"+tc.j, func(t *testing.T) {
			reads := h.d.SFTPReads(t)
			logins := h.d.Logins(t)
			dest := t.TempDir()
			// At -j 4 the pool dials one connection at a time while the
			// others are busy; a slow link keeps them busy long enough for
			// every dial even on a loaded machine (the suite runs the SFTP
			// package's tests beside this one).
			rate := "1M"
			if tc.want > 1 {
				rate = "160K"
			}
			args := sshFetchArgs(h.url("sftp"), dest, append(h.keyArgs(), "--bwlimit", rate)...)
			args = append(args, "-j", tc.j) // the last -j wins
			r := h.run(t, nil, args...)
			wantCode(t, r, 0)
			e2eIdentical(t, dest, parts)
			if got := h.d.Logins(t) - logins; got != tc.want {
				t.Errorf("-j %s: %d SSH connections, want %d", tc.j, got, tc.want)
			}
			after := h.d.SFTPReads(t)
			for _, p := range parts {
				if got := after[h.remotePath(p.name)] - reads[h.remotePath(p.name)]; got != int64(len(p.data)) {
					t.Errorf("part %s: SFTP read %d bytes of it, want exactly its %d", p.name, got, len(p.data))
				}
			}
		})
	}
}

// TestSSHFetchPoolSessionsKilled: the server-side processes of every
// pooled connection are killed twice during a fetch -j 4; haul dials
// again and the fetch ends with the parts identical.
func TestSSHFetchPoolSessionsKilled(t *testing.T) {
	h := newSSHHost(t)
	parts := e2eNumberedSet("db.bak", 32, 900_000, 800_000, 700_001)
	h.put(t, parts)
	h.putManifest(t, parts)
	dest := t.TempDir()
	// About 2.4 MB at 128 KiB/s: twenty seconds undisturbed, so that both
	// rounds see -j connections up again even where dials are slow (at
	// 256 KiB/s a loaded CI machine ended the fetch before the second
	// round's logins).
	_, done := h.start(t, sshFetchArgs(h.url("sftp"), dest, append(h.keyArgs(), "--bwlimit", "128K")...)...)

	waitLogins := func(n int) {
		t.Helper()
		deadline := time.Now().Add(40 * time.Second)
		for h.d.Logins(t) < n {
			select {
			case r := <-done:
				t.Fatalf("haul ended (exit %d) before %d SSH connections were up: make the link slower\n%s", r.code, n, r.stderr)
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d SSH connections after 40s, want %d", h.d.Logins(t), n)
			}
		}
	}
	killed := 0
	for round := 0; round < 2; round++ {
		// Every -j connection up (again), then cut them all.
		waitLogins(killed + 4)
		time.Sleep(300 * time.Millisecond) // let data flow on them
		n := h.d.KillSessions(t)
		if n == 0 {
			t.Fatalf("round %d: no session to kill", round)
		}
		killed = h.d.Logins(t)
		t.Logf("round %d: killed %d connections (%d logins so far)", round, n, killed)
	}
	r := <-done
	h.noSecret(t, r)
	wantCode(t, r, 0)
	e2eIdentical(t, dest, parts)
	wantCode(t, h.run(t, nil, "verify", dest), 0)
}
