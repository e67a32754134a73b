// Command haul moves large multi-part backups from slow object storage to
// the host where they will be restored, proves every part, and restores
// them. See README.md and `haul help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/haul-dev/haul/internal/sigstop"
)

// app carries the process's streams, so tests can run commands in-process.
type app struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	// stdoutTTY and stderrTTY are whether they are terminals: bars vs log
	// lines, dated error lines.
	stdoutTTY, stderrTTY bool
	// quiet and verbose are -q and -v.
	quiet, verbose bool
	// startLine is what the next reporter prints first in log mode: the
	// command, its (redacted) source and DEST, and the version.
	startLine string
}

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		// The promise is under 100 MB at 100,000 parts: such a set is
		// about 50 MB live in a fetch (36 MB loaded for status), so the
		// collector must not let the heap double before it runs (a soft
		// limit: it never fails). At 72 MiB the whole process peaks near
		// 85 MiB there; past about 130,000 parts the live heap nears the
		// limit and the collector runs more often (at most half the CPU).
		debug.SetMemoryLimit(memoryLimit)
	}
	if os.Getenv("GOGC") == "" {
		// Collect when the heap has grown by half of what is live, not
		// all of it, so that it seldom reaches the soft limit above. The
		// cost is the same factor at every size (about twice the marking
		// per byte allocated), so the CPU per part stays flat.
		debug.SetGCPercent(gcPercent)
	}
	// The stop signals have been caught since sigstop's init; the run's
	// context ends at the first (SIGINT, SIGTERM, SIGHUP), with it as
	// the cause, and a second one exits 75 at once.
	ctx, stop := sigstop.Context(context.Background(), os.Stderr)
	a := &app{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, stdoutTTY: isTerminal(os.Stdout), stderrTTY: isTerminal(os.Stderr)}
	code := a.main(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// memoryLimit is the soft limit of the Go runtime's memory (GOMEMLIMIT
// overrides it).
const memoryLimit = 72 << 20

// gcPercent is the collector's GOGC (the GOGC variable overrides it).
const gcPercent = 50

// main runs one command line and returns the exit code.
func (a *app) main(ctx context.Context, args []string) int {
	root := a.rootCommand()
	if len(args) == 0 {
		a.writeHelp(a.stderr, root)
		return 2
	}
	if err := unknownCommand(root, args); err != nil {
		return a.fail(nil, err)
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil {
		return a.fail(cmd, err)
	}
	return 0
}

// fail prints err on one line (unless it is a quiet exit) and returns the
// exit code. Not on a terminal the line starts with the date, as log
// lines do.
func (a *app) fail(cmd *cobra.Command, err error) int {
	code := exitCode(err)
	var q *quietExit
	if errors.As(err, &q) {
		return code
	}
	name := "haul"
	if cmd != nil && cmd.HasParent() {
		name = "haul " + cmd.Name()
	}
	line := name + ": " + oneLine(err.Error())
	if code == 2 && cmd != nil && cmd.HasParent() && !strings.Contains(line, "haul help") {
		line += fmt.Sprintf(" (usage: haul %s; see haul help %s)", cmd.Use, cmd.Name())
	}
	if !a.stderrTTY {
		line = stamp(time.Now()) + " " + line
	}
	fmt.Fprintln(a.stderr, line)
	return code
}

// quietExit ends a command with an exit code and no message: the command
// already said everything (haul status).
type quietExit struct{ code int }

func (e *quietExit) Error() string { return fmt.Sprintf("exit %d", e.code) }

// stampLayout is RFC 3339 with a numeric offset even in UTC, so a log read
// next week, elsewhere, still says when.
const stampLayout = "2006-01-02T15:04:05-07:00"

func stamp(t time.Time) string { return t.Format(stampLayout) }

// unknownCommand refuses a first word that names no command, suggesting the
// nearest ones: `haul fecth` → did you mean fetch?
func unknownCommand(root *cobra.Command, args []string) error {
	for _, w := range args {
		if w == "--" {
			return nil
		}
		if strings.HasPrefix(w, "-") {
			continue // -v, -q, -V, -h: flags of the root
		}
		for _, c := range root.Commands() {
			if c.Name() == w || c.HasAlias(w) {
				return nil
			}
		}
		if w == "help" || w == cobra.ShellCompRequestCmd || w == cobra.ShellCompNoDescRequestCmd {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q", w)
		if s := root.SuggestionsFor(w); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return usagef("%s (see: haul help)", msg)
	}
	return nil
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
