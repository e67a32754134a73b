package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"
)

// command is one `haul CMD`: its arguments, its flag groups, and what runs.
type command struct {
	name, args, summary string
	// min and max bound the positional arguments (max -1: no bound).
	min, max int
	flags    func(o *opts, fs *pflag.FlagSet)
	run      func(ctx context.Context, a *app, o *opts, pos []string) error
}

// commands are haul's own commands, in the order the help lists them.
var commands []command

func init() {
	commands = []command{
		{"fetch", "[flags] SOURCE... DEST", "download every part, resumably; verify each; re-fetch broken ones", 1, -1,
			func(o *opts, fs *pflag.FlagSet) { o.addMover(fs); o.addReplace(fs) }, cmdFetch},
		{"verify", "[--json] DEST", "re-check the parts on disk against every reference", 1, 1,
			func(o *opts, fs *pflag.FlagSet) { o.addJSON(fs) }, cmdVerify},
		{"repair", "[flags] [--from SOURCE] DEST", "replace only broken or missing parts (or pieces), from the source or from --from", 1, 1,
			func(o *opts, fs *pflag.FlagSet) {
				text(fs, &o.from, "from", "", "SOURCE", "fetch the replacements from this source (e.g. ssh://user@host/dir/)")
				o.addMover(fs)
			}, cmdRepair},
		{"restore", "[flags] DEST... (--into DIR | --assemble FILE)", "join the verified parts in order and unpack them (or write the joined archive)", 1, -1,
			func(o *opts, fs *pflag.FlagSet) {
				o.addRestore(fs)
				o.chain.register(fs, "restore")
				text(fs, &o.assemble, "assemble", "", "FILE", "write the joined archive to FILE instead of unpacking")
				o.addDB(fs)
				o.addCloud(fs)
				o.addDeadline(fs)
				o.addProgress(fs)
			}, cmdRestore},
		{"run", "[flags] SOURCE... DEST --into DIR", "fetch → verify → repair → restore, each step skipped when done; the cron entry point", 1, -1,
			func(o *opts, fs *pflag.FlagSet) {
				o.addRestore(fs)
				o.chain.register(fs, "run")
				o.addDB(fs)
				o.addCloud(fs)
				o.addMover(fs)
				o.addReplace(fs)
			}, cmdRun},
		{"status", "[--json] DEST", "what is done, what is left, what is broken, ETA (exit 0 done, 3 broken, 75 incomplete)", 1, 1,
			func(o *opts, fs *pflag.FlagSet) { o.addJSON(fs) }, cmdStatus},
		{"report", "[--json] DEST", "the journal: every run and step with its times, bytes and rates", 1, 1,
			func(o *opts, fs *pflag.FlagSet) { o.addJSON(fs) }, cmdReport},
		{"manifest", "[--piece-size SIZE] [-o FILE] SOURCE|DIR", "write a haul manifest (per-part and per-piece SHA-256) for a set", 1, 1,
			func(o *opts, fs *pflag.FlagSet) {
				o.pieceSize = 8 << 20
				fs.Var(sizeValue{&o.pieceSize, 4 << 10, 1 << 30, nil}, "piece-size", "piece size")
				text(fs, &o.out, "output", "o", "FILE", "write to FILE (else standard output)")
				o.addS3(fs)
				o.addSSH(fs)
			}, cmdManifest},
		{"demo", "[flags] [DIR]", "the whole job against a built-in slow, faulty server; no setup needed (DIR keeps the files)", 0, 1,
			func(o *opts, fs *pflag.FlagSet) {
				o.size = 24 << 20
				fs.Var(sizeValue{&o.size, 1 << 20, 64 << 30, nil}, "size", "size of the generated site")
				o.addProgress(fs)
			}, cmdDemo},
	}
}

// rootCommand builds the command tree afresh (the demo runs commands in
// the same process).
func (a *app) rootCommand() *cobra.Command {
	cobra.EnableCommandSorting = false // the help lists the commands in the order of a job
	root := &cobra.Command{
		Use:           "haul",
		Short:         "move large multi-part backups from slow storage, prove every part, restore them",
		Version:       readBuildInfo().String(),
		SilenceErrors: true,
		SilenceUsage:  true,
		// `haul fecth` → fetch: two edits (a swap) away.
		SuggestionsMinimumDistance: 2,
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetIn(a.stdin)
	root.SetVersionTemplate("{{.Version}}")
	root.Flags().BoolP("version", "V", false, "print the version, commit, Go version and platform")
	root.PersistentFlags().BoolVarP(&a.quiet, "quiet", "q", false, "print only errors: no progress, no summary")
	root.PersistentFlags().BoolVarP(&a.verbose, "verbose", "v", false, "also print every retry and the start line on a terminal")
	root.SetFlagErrorFunc(flagError)
	root.SetHelpFunc(func(c *cobra.Command, _ []string) { a.writeHelp(c.OutOrStdout(), c) })
	root.SetUsageFunc(func(c *cobra.Command) error { a.writeHelp(c.OutOrStderr(), c); return nil })
	root.SetHelpCommand(a.helpCommand(root))

	for _, spec := range commands {
		spec := spec
		o := &opts{}
		c := &cobra.Command{
			Use:                   spec.name + " " + spec.args,
			Short:                 spec.summary,
			DisableFlagsInUseLine: true,
			Args: func(c *cobra.Command, pos []string) error {
				if len(pos) < spec.min || (spec.max >= 0 && len(pos) > spec.max) {
					return usagef("wrong number of arguments")
				}
				return nil
			},
			RunE: func(c *cobra.Command, pos []string) error {
				if err := applyEnv(c.Flags(), lookupEnv); err != nil {
					return err
				}
				return spec.run(c.Context(), a, o, pos)
			},
		}
		spec.flags(o, c.Flags())
		c.Flags().SortFlags = false
		root.AddCommand(c)
	}
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "print the version, commit, Go version and platform",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			_, err := io.WriteString(a.stdout, readBuildInfo().String())
			return err
		},
	})
	root.AddCommand(&cobra.Command{
		Use:   "man DIR",
		Short: "write a man page for every command into DIR",
		Args: func(c *cobra.Command, pos []string) error {
			if len(pos) != 1 {
				return usagef("wrong number of arguments")
			}
			return nil
		},
		RunE: func(c *cobra.Command, pos []string) error {
			if err := os.MkdirAll(pos[0], 0o755); err != nil {
				return fmt.Errorf("man: %w", err)
			}
			hdr := &doc.GenManHeader{Title: "HAUL", Section: "1", Source: "haul " + version, Manual: "haul manual"}
			if err := doc.GenManTree(root, hdr, pos[0]); err != nil {
				return fmt.Errorf("man: %w", err)
			}
			if !a.quiet {
				fmt.Fprintf(a.stderr, "haul: wrote the man pages into %s (man -l %s/haul.1)\n", pos[0], strings.TrimRight(pos[0], "/"))
			}
			return nil
		},
	})
	// As cobra does when it executes: completion, then help (moved last).
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Short = "print the shell completion script for bash, zsh, fish or powershell"
		}
	}
	return root
}

// helpCommand is `haul help [COMMAND]`; an unknown COMMAND is a usage
// error with suggestions, as a mistyped command is.
func (a *app) helpCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "print the usage of haul or of one command",
		ValidArgsFunction: func(c *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			var names []cobra.Completion
			for _, sub := range root.Commands() {
				if sub.IsAvailableCommand() {
					names = append(names, sub.Name())
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				a.writeHelp(a.stdout, root)
				return nil
			}
			if err := unknownCommand(root, args[:1]); err != nil {
				return err
			}
			target, _, err := root.Find(args)
			if err != nil || target == root {
				return usagef("unknown command %q (see: haul help)", args[0])
			}
			target.InitDefaultHelpFlag()
			a.writeHelp(a.stdout, target)
			return nil
		},
	}
}

// helpWidth is where flag descriptions wrap: fixed, so the help is the
// same on every terminal (and in the golden files).
const helpWidth = 100

// writeHelp prints the usage of haul or of one command: typed flags with
// placeholders, aligned, one default each.
func (a *app) writeHelp(w io.Writer, c *cobra.Command) {
	var b strings.Builder
	if !c.HasParent() {
		b.WriteString("haul moves large multi-part backups from slow storage, proves every part, and restores them.\n\n")
		b.WriteString("usage: haul COMMAND [flags] ARGS\n\ncommands:\n")
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() || sub.Name() == "help" {
				fmt.Fprintf(&b, "  %-11s %s\n", sub.Name(), sub.Short)
			}
		}
		c.InitDefaultHelpFlag()
		b.WriteString("\nflags:\n" + c.LocalFlags().FlagUsagesWrapped(helpWidth))
		b.WriteString("\nEvery flag can also be given in the environment as HAUL_<FLAG>, upper case with\n")
		b.WriteString("underscores (HAUL_BWLIMIT=1M, HAUL_CHUNK_SIZE=4M); a flag on the command line wins.\n")
		b.WriteString("Flags may stand anywhere on the line (haul run SRC DEST --into DIR -j 16).\n")
		b.WriteString("Exit codes: 0 done, 1 needs a person, 2 usage, 3 broken or missing parts remain,\n")
		b.WriteString("75 incomplete but resumable (run again later).\n")
		b.WriteString("Run 'haul help COMMAND' for a command's flags.\n")
		io.WriteString(w, b.String())
		return
	}
	fmt.Fprintf(&b, "usage: haul %s\n\n%s\n", c.Use, c.Short)
	if c.Long != "" {
		b.WriteString("\n" + c.Long + "\n")
	}
	if c.HasAvailableSubCommands() {
		b.WriteString("\ncommands:\n")
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				fmt.Fprintf(&b, "  %-11s %s\n", sub.Name(), sub.Short)
			}
		}
	}
	if fs := c.LocalFlags(); fs.HasAvailableFlags() {
		b.WriteString("\nflags:\n" + fs.FlagUsagesWrapped(helpWidth))
	}
	if fs := c.InheritedFlags(); fs.HasAvailableFlags() {
		b.WriteString("\nglobal flags:\n" + fs.FlagUsagesWrapped(helpWidth))
	}
	if c.LocalFlags().HasAvailableFlags() {
		fmt.Fprintf(&b, "\nEach flag can also be set as HAUL_<FLAG> in the environment (--%s: %s);\na flag on the command line wins.\n", firstFlag(c), envName(firstFlag(c)))
	}
	io.WriteString(w, b.String())
}

// firstFlag names the command's first flag other than --help, for the
// environment example of its help.
func firstFlag(c *cobra.Command) string {
	name := "help"
	c.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if name == "help" && f.Name != "help" {
			name = f.Name
		}
	})
	return name
}

// flagError turns pflag's errors into one line naming the flag and what it
// wants, with a suggestion for a mistyped name.
func flagError(c *cobra.Command, err error) error {
	var ne *pflag.NotExistError
	var ve *pflag.InvalidValueError
	var re *pflag.ValueRequiredError
	switch {
	case errors.As(err, &ve):
		f := ve.GetFlag()
		if secretFlag(f) {
			return usagef("--%s: %v", f.Name, ve.Unwrap())
		}
		return usagef("--%s %s: %v", f.Name, ve.GetValue(), ve.Unwrap())
	case errors.As(err, &re):
		return usagef("--%s needs a value", re.GetFlag().Name)
	case errors.As(err, &ne):
		if name := ne.GetSpecifiedName(); name != "" {
			msg := "unknown flag --" + name
			if s := suggestFlag(c.Flags(), name); s != "" {
				msg += "; did you mean --" + s + "?"
			}
			return usagef("%s", msg)
		}
		return usagef("unknown flag -%s", ne.GetSpecifiedShortnames())
	}
	return usagef("%v", err)
}

// suggestFlag is the flag name nearest to a mistyped one, or "".
func suggestFlag(fs *pflag.FlagSet, typed string) string {
	best, bestD := "", 3 // at most two edits away, or a prefix
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		d := editDistance(typed, f.Name)
		if strings.HasPrefix(f.Name, typed) && len(typed) >= 3 {
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = f.Name, d
		}
	})
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
