package job

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/haul-dev/haul/restore/bitrixdb"
)

// TestDBExitCodes: the database step's errors get the SPEC's exit codes:
// a refusal or an unreachable server on first contact needs a person (1),
// several dumps without --db-dump is a usage error (2), a connection lost
// during the import and a deadline are resumable (75).
func TestDBExitCodes(t *testing.T) {
	unreachable := fmt.Errorf("bitrixdb: cannot connect to mysql://u@h/db: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")})
	timedOut := fmt.Errorf("bitrixdb: cannot connect to mysql://u@h/db: %w", context.DeadlineExceeded)
	for _, c := range []struct {
		name string
		err  error
		want int
	}{
		{"login refused", &bitrixdb.AccessError{What: "login", Err: errors.New("1045")}, 1},
		{"privilege", &bitrixdb.AccessError{What: "privilege CREATE", Err: errors.New("1142")}, 1},
		{"packet", &bitrixdb.PacketError{Size: 2 << 20, Max: 1 << 20}, 1},
		{"statement", &bitrixdb.StatementError{Err: errors.New("1064")}, 1},
		{"unreachable", &dbRefused{unreachable}, 1},
		{"dial timeout on first contact", &dbRefused{timedOut}, 1},
		{"several dumps", &bitrixdb.SeveralDumpsError{Names: []string{"a", "b"}}, 2},
		{"connection lost", fmt.Errorf("bitrixdb: %w: EOF", bitrixdb.ErrConnLost), 75},
		{"deadline", wrapDeadline(deadlineCtx(t), fmt.Errorf("bitrixdb: %w", context.DeadlineExceeded)), 75},
	} {
		if got := ExitCode(c.err); got != c.want {
			t.Errorf("%s: exit %d, want %d", c.name, got, c.want)
		}
	}
}

func deadlineCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithDeadlineCause(context.Background(), time.Now(), ErrDeadline)
	t.Cleanup(cancel)
	return ctx
}
