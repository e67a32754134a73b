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
// repository run in every plain `go test`. It is called from a package
// one level below the repository root (integrity, restore).
func AddSeeds(f Seeder, target string) {
	f.Helper()
	dir := filepath.Join("..", "testdata", "fuzz", target)
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
