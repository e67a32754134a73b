// Command haul moves large multi-part backups from slow object storage to
// the host where they will be restored, proves every part, and restores
// them. See README.md and `haul help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one `haul CMD`.
type command struct {
	name    string
	args    string
	summary string
	run     func(ctx context.Context, a *app, args []string) error
}

var commands []command

func init() {
	commands = []command{
		{"fetch", "[flags] SOURCE... DEST", "download every part, resumably; verify each; re-fetch broken ones", cmdFetch},
		{"verify", "[--json] DEST", "re-check the parts on disk against every reference", cmdVerify},
		{"repair", "[flags] [--from URL] DEST", "replace only broken or missing parts (or pieces), from the source or from URL", cmdRepair},
		{"restore", "[flags] DEST... (--into DIR | --assemble FILE)", "join the verified parts in order and unpack them (or write the joined archive)", cmdRestore},
		{"run", "[flags] SOURCE... DEST --into DIR", "fetch → verify → repair → restore, each step skipped when done; the cron entry point", cmdRun},
		{"status", "[--json] DEST", "what is done, what is left, what is broken, ETA", cmdStatus},
		{"report", "[--json] DEST", "the journal: every run and step with its times, bytes and rates", cmdReport},
		{"manifest", "[--piece-size SIZE] [-o FILE] SOURCE|DIR", "write a haul manifest (per-part and per-piece SHA-256) for a set", cmdManifest},
		{"demo", "[DIR]", "the whole job against a built-in slow, faulty server; no setup needed", cmdDemo},
	}
}

// app carries the process's streams, so tests can run commands in-process.
type app struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	// stdoutTTY is whether stdout is a terminal (bars vs log lines).
	stdoutTTY bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	a := &app{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, stdoutTTY: isTerminal(os.Stdout)}
	code := a.main(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// main runs one command line and returns the exit code.
func (a *app) main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		a.usage(a.stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "--help":
		if len(args) > 1 {
			if c := findCommand(args[1]); c != nil {
				a.commandUsage(a.stdout, c)
				return 0
			}
			fmt.Fprintf(a.stderr, "haul: unknown command %q; run: haul help\n", args[1])
			return 2
		}
		a.usage(a.stdout)
		return 0
	case "version", "--version":
		fmt.Fprintln(a.stdout, "haul", version)
		return 0
	}
	c := findCommand(name)
	if c == nil {
		fmt.Fprintf(a.stderr, "haul: unknown command %q; run: haul help\n", name)
		return 2
	}
	err := c.run(ctx, a, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		a.commandUsage(a.stdout, c)
		return 0
	}
	code := exitCode(err)
	if err != nil {
		fmt.Fprintf(a.stderr, "haul %s: %s\n", c.name, oneLine(err.Error()))
		if code == 2 {
			fmt.Fprintf(a.stderr, "usage: haul %s %s (see: haul help %s)\n", c.name, c.args, c.name)
		}
	}
	return code
}

const version = "0.1.0"

func findCommand(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

func (a *app) usage(w io.Writer) {
	fmt.Fprintln(w, "haul moves large multi-part backups from slow storage, proves every part, and restores them.")
	fmt.Fprintln(w, "\nusage: haul COMMAND [flags] ARGS")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'haul help COMMAND' for a command's flags. Exit codes: 0 done, 1 needs a person,")
	fmt.Fprintln(w, "2 usage, 3 broken or missing parts remain, 75 incomplete but resumable (run again later).")
}

func (a *app) commandUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "usage: haul %s %s\n\n%s\n", c.name, c.args, c.summary)
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	registerFor(c.name, fs)
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	fmt.Fprintln(w, "\nflags:")
	for _, n := range names {
		f := fs.Lookup(n)
		dash := "--"
		if len(n) == 1 {
			dash = "-"
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
			def = " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "  %s%-22s %s%s\n", dash, n, f.Usage, def)
	}
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
