package main

// Tests of the command line itself, through the binary: the help and the
// completion scripts against golden files, suggestions, every bad flag
// value, flags from the environment, dated logs, plain terminals, man
// pages, the version, and the exit codes of haul status.

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the current output")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from the output (go test -run %s -update rewrites it after a deliberate change):\ngot:\n%s\nwant:\n%s", path, t.Name(), got, want)
	}
}

func TestHelpGolden(t *testing.T) {
	for _, c := range []struct {
		file string
		args []string
	}{
		{"help.golden", []string{"help"}},
		{"help-fetch.golden", []string{"help", "fetch"}},
		{"help-run.golden", []string{"help", "run"}},
		{"completion-bash.golden", []string{"completion", "bash"}},
		{"completion-zsh.golden", []string{"completion", "zsh"}},
	} {
		t.Run(c.file, func(t *testing.T) {
			r := runHaul(t, nil, c.args...)
			wantCode(t, r, 0)
			golden(t, c.file, r.stdout)
		})
	}
	// The other spellings print the same.
	for _, args := range [][]string{{"--help"}, {"-h"}} {
		r := runHaul(t, nil, args...)
		wantCode(t, r, 0)
		golden(t, "help.golden", r.stdout)
	}
	r := runHaul(t, nil, "fetch", "--help")
	wantCode(t, r, 0)
	golden(t, "help-fetch.golden", r.stdout)
	// No command at all: the help, on stderr, as a usage error.
	r = runHaul(t, nil)
	wantCode(t, r, 2)
	golden(t, "help.golden", r.stderr)
}

// TestHelpOneDefault: each flag shows its placeholder and at most one
// default, and the columns line up.
func TestHelpOneDefault(t *testing.T) {
	r := runHaul(t, nil, "help", "fetch")
	wantCode(t, r, 0)
	if n := strings.Count(r.stdout, "(default 8MiB)"); n != 1 || strings.Count(r.stdout, "(default ") != 6 {
		t.Errorf("want one default per flag (connections, chunk-size, retries, timeout, give-up-after, progress):\n%s", r.stdout)
	}
	for _, want := range []string{"-j, --connections N", "--chunk-size SIZE", "--bwlimit RATE", "--until HH:MM", "--max-time DURATION", "--progress auto|bars|log|none", "-i, --identity FILE", "--include GLOB"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	col := -1
	local, _, _ := strings.Cut(r.stdout, "global flags:")
	for _, l := range strings.Split(local, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "-") {
			continue
		}
		m := regexp.MustCompile(`^\s+(-\w, )?--\S+( \S+)?\s+`).FindString(l)
		if col == -1 {
			col = len(m)
		}
		if len(m) != col {
			t.Errorf("descriptions not aligned at column %d: %q", col, l)
		}
	}
}

func TestCompletionScriptsLoad(t *testing.T) {
	t.Run("bash", func(t *testing.T) {
		bash, err := exec.LookPath("bash")
		if err != nil {
			t.Fatal("bash is needed")
		}
		out, err := exec.Command(bash, "-c", `set -e; source <("$0" completion bash); complete -p haul`, haulBin).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "haul") {
			t.Fatalf("the bash completion does not load: %v\n%s", err, out)
		}
	})
	t.Run("zsh", func(t *testing.T) {
		zsh, err := exec.LookPath("zsh")
		if err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("zsh is needed under CI (.ci/test installs it)")
			}
			t.Skip("zsh is not installed")
		}
		script := `autoload -U compinit && compinit -u && source <("$1" completion zsh) && (( $+functions[_haul] ))`
		out, err := exec.Command(zsh, "-f", "-c", script, "zsh", haulBin).CombinedOutput()
		if err != nil {
			t.Fatalf("the zsh completion does not load: %v\n%s", err, out)
		}
	})
	t.Run("commands", func(t *testing.T) {
		// What the shell asks when the user presses Tab after "haul fe".
		r := runHaul(t, nil, "__complete", "fe")
		wantCode(t, r, 0)
		if !strings.Contains(r.stdout, "fetch") {
			t.Fatalf("completing %q does not offer fetch:\n%s", "fe", r.stdout)
		}
		r = runHaul(t, nil, "__complete", "fetch", "--bw")
		if !strings.Contains(r.stdout, "--bwlimit") {
			t.Fatalf("completing --bw does not offer --bwlimit:\n%s", r.stdout)
		}
	})
}

// stampRe is the start of every line haul writes when not on a terminal.
var stampRe = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d `)

// unstamp removes the date a log line starts with, failing if there is
// none.
func unstamp(t *testing.T, line string) string {
	t.Helper()
	m := stampRe.FindString(line)
	if m == "" {
		t.Fatalf("line without an RFC 3339 date: %q", line)
	}
	return line[len(m):]
}

// wantUsage fails unless r is exit 2 with one line that contains each of
// want.
func wantUsage(t *testing.T, r result, want ...string) {
	t.Helper()
	wantCode(t, r, 2)
	e2eOneLine(t, r)
	if strings.Count(strings.TrimRight(r.stderr, "\n"), "\n") > 0 {
		t.Fatalf("more than one line:\n%s", r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("the message does not say %q: %s", w, r.stderr)
		}
	}
}

func TestTypoSuggestions(t *testing.T) {
	wantUsage(t, runHaul(t, nil, "fecth", "http://127.0.0.1:9/x", t.TempDir()), `"fecth"`, "did you mean fetch?")
	wantUsage(t, runHaul(t, nil, "-v", "stauts", t.TempDir()), "did you mean status?")
	wantUsage(t, runHaul(t, nil, "help", "fecth"), "did you mean fetch?")
	wantUsage(t, runHaul(t, nil, "fetch", "http://127.0.0.1:9/x", t.TempDir(), "--bwlimt", "1M"), "--bwlimt", "did you mean --bwlimit?")
	wantUsage(t, runHaul(t, nil, "restore", t.TempDir(), "--int", "x"), "did you mean --into?")
}

// TestBadFlagValues is issue 15's point 5: every bad value is refused where
// it is parsed, with exit 2 and one line naming the flag, before anything
// is fetched.
func TestBadFlagValues(t *testing.T) {
	srv := e2eServe(t, e2eSet(3, 1000))
	url := srv.URL("backup.bak")
	cases := []struct {
		args []string
		say  string
	}{
		{[]string{"--progress", "rainbow"}, "--progress rainbow"},
		{[]string{"--retries", "-1"}, "--retries -1"},
		{[]string{"--retries", "0"}, "--retries 0"},
		{[]string{"--retries", "many"}, "--retries many"},
		{[]string{"--timeout", "0s"}, "--timeout 0s"},
		{[]string{"--timeout", "soon"}, "--timeout soon"},
		{[]string{"--max-time", "-1s"}, "--max-time -1s"},
		{[]string{"--max-time", "0"}, "--max-time 0"},
		{[]string{"--include", "["}, "--include ["},
		{[]string{"--exclude", "a[b"}, "--exclude a[b"},
		{[]string{"--chunk-size", "12Q"}, "--chunk-size 12Q"},
		{[]string{"--chunk-size", "1K"}, "--chunk-size 1K"},
		{[]string{"--chunk-size", "2G"}, "--chunk-size 2G"},
		{[]string{"--bwlimit", "fast"}, "--bwlimit fast"},
		{[]string{"--bwlimit", "25:00,1M"}, "--bwlimit 25:00,1M"},
		{[]string{"--until", "25:00"}, "--until 25:00"},
		{[]string{"--until", "7am"}, "--until 7am"},
		{[]string{"-j", "0"}, "--connections 0"},
		{[]string{"-j", "1000"}, "--connections 1000"},
		{[]string{"--retries"}, "--retries needs a value"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			dest := t.TempDir()
			wantUsage(t, runHaul(t, nil, append([]string{"fetch", url, dest}, c.args...)...), c.say)
			if left, _ := os.ReadDir(dest); len(left) > 0 {
				t.Errorf("a refused command line wrote into DEST: %v", left)
			}
		})
	}
	t.Run("env", func(t *testing.T) {
		wantUsage(t, runHaul(t, []string{"HAUL_RETRIES=0"}, "fetch", url, t.TempDir()), "HAUL_RETRIES=0")
		wantUsage(t, runHaul(t, []string{"HAUL_PROGRESS=rainbow"}, "fetch", url, t.TempDir()), "HAUL_PROGRESS=rainbow")
	})
	t.Run("other-commands", func(t *testing.T) {
		wantUsage(t, runHaul(t, nil, "restore", t.TempDir(), "--into", t.TempDir(), "--max-time", "-5m"), "--max-time -5m")
		wantUsage(t, runHaul(t, nil, "manifest", "--piece-size", "0", t.TempDir()), "--piece-size 0")
		wantUsage(t, runHaul(t, nil, "demo", "--size", "1K"), "--size 1K")
	})
	t.Run("db", func(t *testing.T) {
		// The database flags, refused before the fetch; a password typed
		// into the URL is never echoed, from the command line or HAUL_DB.
		run := func(env []string, args ...string) result {
			dest := t.TempDir()
			r := runHaul(t, env, append([]string{"run", url, dest, "--into", filepath.Join(t.TempDir(), "www")}, args...)...)
			if left, _ := os.ReadDir(dest); len(left) > 0 {
				t.Errorf("a refused command line wrote into DEST: %v", left)
			}
			return r
		}
		for _, c := range []struct {
			env  []string
			args []string
			say  string
		}{
			{nil, []string{"--db", "mysql://u:hunter22@db/site"}, `--db: bad database URL "mysql://u:***@db/site": it holds a password`},
			{[]string{"HAUL_DB=mysql://u:hunter22@db/site"}, nil, `HAUL_DB: bad database URL "mysql://u:***@db/site"`},
			{nil, []string{"--db", "postgres://u@db/site"}, `--db: bad database URL "postgres://u@db/site": it must start with mysql://`},
			{nil, []string{"--db", "mysql://u@db/site", "--db-password-file", filepath.Join(t.TempDir(), "none")}, "--db-password-file"},
			{nil, []string{"--db", "mysql://u@db/site", "--site-host", "https://www.example.com/"}, "--site-host https://www.example.com/: want a host name"},
			{nil, []string{"--db", "mysql://u@db/site", "--db-dump", "../x"}, "--db-dump ../x: want the name of a dump"},
			{nil, []string{"--keep-dump"}, "--keep-dump needs --db URL"},
		} {
			r := run(c.env, c.args...)
			wantUsage(t, r, c.say)
			if strings.Contains(r.stderr+r.stdout, "hunter22") {
				t.Errorf("the message shows the password: %s", r.stderr)
			}
		}
		wantUsage(t, runHaul(t, nil, "restore", t.TempDir(), "--assemble", filepath.Join(t.TempDir(), "x"), "--db", "mysql://u@db/site"), "--db", "--into DIR, not --assemble")
	})
	if n := srv.Requests(); n != 0 {
		t.Fatalf("the server got %d requests from refused command lines", n)
	}
}

// TestDuplicateSources: two URLs with the same file name, or one URL
// twice, are refused before any request, naming both URLs (redacted).
func TestDuplicateSources(t *testing.T) {
	srv := e2eServe(t, e2eSet(4, 1000, 1000))
	a := srv.URL("backup.bak")
	other := strings.Replace(a, "/backup.bak", "/elsewhere/backup.bak", 1)
	const sig = "?X-Amz-Signature=SECRET999"
	list := filepath.Join(t.TempDir(), "urls.txt")
	if err := os.WriteFile(list, []byte(srv.URL("backup.bak.1")+"\n"+a+sig+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		say  []string
	}{
		{"same-url-twice", []string{a, a}, []string{a, "twice"}},
		{"same-name", []string{a, other + sig}, []string{a, other + "?…", "backup.bak"}},
		{"list-and-argument", []string{a, "--list", list}, []string{a, "?…"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, cmd := range []string{"fetch", "run"} {
				dest := t.TempDir()
				args := append([]string{cmd}, append(c.args, dest, "--into", filepath.Join(t.TempDir(), "www"))...)
				if cmd == "fetch" {
					args = append([]string{cmd}, append(c.args, dest)...)
				}
				r := runHaul(t, nil, args...)
				wantUsage(t, r, c.say...)
				if strings.Contains(r.stderr, "SECRET999") {
					t.Fatalf("the message shows the signature: %s", r.stderr)
				}
			}
		})
	}
	if n := srv.Requests(); n != 0 {
		t.Fatalf("the server got %d requests before the duplicates were refused", n)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-V"}} {
		r := runHaul(t, nil, args...)
		wantCode(t, r, 0)
		for _, want := range []string{"haul " + version, "commit: ", "go: go1.", "platform: " + runtime.GOOS + "/" + runtime.GOARCH} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("haul %v does not say %q:\n%s", args, want, r.stdout)
			}
		}
	}
}

func TestManPages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man1")
	r := runHaul(t, nil, "man", dir)
	wantCode(t, r, 0)
	for _, page := range []string{"haul.1", "haul-fetch.1", "haul-run.1", "haul-status.1", "haul-completion-bash.1"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Fatalf("no man page %s: %v", page, err)
		}
		if !strings.Contains(string(b), ".TH") {
			t.Errorf("%s is not a man page", page)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "haul-fetch.1"))
	if !strings.Contains(string(b), "bwlimit") {
		t.Errorf("haul-fetch.1 does not describe --bwlimit")
	}
}
