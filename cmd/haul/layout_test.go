package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLayoutRules guards issue 11's acceptance 1 and 2, so that a change
// that breaks them fails here and not only in a reviewer's shell: the
// binary links neither the testing package nor internal/testenv; no
// non-test Go file is over 600 lines; the fetch package itself (not its
// subpackages) stays within 3,000 non-test lines.
func TestLayoutRules(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("the go tool is needed to list the binary's dependencies")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "testing" || strings.HasPrefix(dep, "testing/") || strings.HasSuffix(dep, "/internal/testenv") {
			t.Errorf("haul links %s: test code in the binary", dep)
		}
	}

	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	fetchLines := 0
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != root || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n := bytes.Count(b, []byte("\n"))
		rel, _ := filepath.Rel(root, p)
		if n > 600 {
			t.Errorf("%s has %d lines; no non-test file may pass 600", rel, n)
		}
		if filepath.Dir(rel) == "fetch" {
			fetchLines += n
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fetchLines == 0 || fetchLines > 3000 {
		t.Errorf("the fetch package has %d non-test lines; the cap is 3,000 (move self-contained code into a subpackage)", fetchLines)
	}
	t.Logf("fetch: %d non-test lines", fetchLines)
}
