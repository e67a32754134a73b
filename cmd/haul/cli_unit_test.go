package main

import (
	"strings"
	"testing"

	"github.com/mattn/go-runewidth"
	"github.com/spf13/pflag"
)

func TestApplyEnv(t *testing.T) {
	o := &opts{}
	fs := pflag.NewFlagSet("fetch", pflag.ContinueOnError)
	o.addTransfer(fs)
	o.addProgress(fs)
	if err := fs.Parse([]string{"--retries", "3"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"HAUL_RETRIES":     "7",  // the flag wins
		"HAUL_BWLIMIT":     "1M", // taken
		"HAUL_CHUNK_SIZE":  "4M",
		"HAUL_INCLUDE":     "a.* b.*",
		"HAUL_TEST_FOO":    "x", // a test hook, no flag
		"HAUL_CONNECTIONS": "16",
	}
	if err := applyEnv(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if o.retries != 3 || o.bwlimit != "1M" || o.chunkSize != 4<<20 || !o.chunkSizeSet || o.connections != 16 || strings.Join(o.include, " ") != "a.* b.*" {
		t.Fatalf("retries %d bwlimit %q chunk %d (set %v) -j %d include %v", o.retries, o.bwlimit, o.chunkSize, o.chunkSizeSet, o.connections, o.include)
	}
	err := applyEnv(fs, func(k string) (string, bool) { return "nonsense", k == "HAUL_TIMEOUT" })
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "HAUL_TIMEOUT=nonsense") {
		t.Fatalf("a bad value from the environment: %v", err)
	}
}

func TestEnvName(t *testing.T) {
	for flag, env := range map[string]string{"bwlimit": "HAUL_BWLIMIT", "chunk-size": "HAUL_CHUNK_SIZE", "accept-new-host-key": "HAUL_ACCEPT_NEW_HOST_KEY"} {
		if got := envName(flag); got != env {
			t.Errorf("envName(%q) = %q, want %q", flag, got, env)
		}
	}
	// No flag of any command may read a test hook's variable.
	root := (&app{}).rootCommand()
	for _, c := range root.Commands() {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if n := envName(f.Name); strings.HasPrefix(n, "HAUL_TEST_") || n == "HAUL_MINIO" || n == "HAUL_BENCH_TOOLS" {
				t.Errorf("haul %s --%s collides with the test variable %s", c.Name(), f.Name, n)
			}
		})
	}
}

// TestShortenByWidth: names are cut and padded by terminal cells, so
// Cyrillic and wide names keep the columns.
func TestShortenByWidth(t *testing.T) {
	for _, name := range []string{"site.tar.gz.3", "резервная-копия-сайта-2026-11-20.tar.gz.12", "備份檔案備份檔案備份檔案備份檔案.tar", strings.Repeat("x", 40)} {
		got := shorten(name, 28)
		if w := runewidth.StringWidth(got); w != 28 {
			t.Errorf("shorten(%q) = %q, %d cells wide, want 28", name, got, w)
		}
		if runewidth.StringWidth(name) > 28 && !strings.HasPrefix(got, "…") {
			t.Errorf("shorten(%q) = %q: a cut name starts with …", name, got)
		}
		if !strings.HasSuffix(strings.TrimRight(got, " "), name[len(name)-3:]) {
			t.Errorf("shorten(%q) = %q lost the end of the name", name, got)
		}
	}
}

func TestCheckDuplicates(t *testing.T) {
	ok := [][]string{
		{"https://h/a/x.1", "https://h/a/x.2"},
		{"s3://b/p/", "s3://b/q/"},
		{"https://h/a/"},
	}
	for _, srcs := range ok {
		if err := checkDuplicates(srcs); err != nil {
			t.Errorf("%v: %v", srcs, err)
		}
	}
	bad := [][]string{
		{"https://h/a/x.1", "https://h/a/x.1"},
		{"https://h/a/x.1?sig=1", "https://g/b/x.1?sig=2"},
		{"s3://b/p/", "s3://b/p/"},
	}
	for _, srcs := range bad {
		err := checkDuplicates(srcs)
		if exitCode(err) != 2 || strings.Contains(err.Error(), "sig=") {
			t.Errorf("%v: %v, want a usage error without the query", srcs, err)
		}
	}
}
