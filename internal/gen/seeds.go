package gen

import (
	"os"
	"path/filepath"
)

// Seeder is the part of *testing.F that AddSeeds needs.
type Seeder interface {
	Helper()
	Add(args ...any)
	Fatalf(format string, args ...any)
}

// AddSeeds adds every file of the repository's testdata/fuzz/<target>/ to
// a fuzz target as one []byte input each, so that the seeds shared in the
// repository run in every plain `go test`. It may be called from a
// package at any depth: the repository root is the nearest directory
// above with a go.mod.
func AddSeeds(f Seeder, target string) {
	f.Helper()
	dir := filepath.Join(repoRoot(), "testdata", "fuzz", target)
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) == 0 {
		f.Fatalf("no seeds in %s: %v", dir, err)
		return
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			f.Fatalf("seed: %v", err)
			return
		}
		f.Add(b)
	}
}

// repoRoot is the nearest directory at or above the working directory
// (a test's package directory) holding go.mod; ".." when none is found.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ".."
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			return ".."
		}
		dir = up
	}
}
