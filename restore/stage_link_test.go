package restore

import (
	"os"
	"path/filepath"
	"testing"
)

// TestStagingNotThroughALink: a symlink or file planted at the staging
// directory's name is removed, never followed; the tree is built in a
// directory of haul's own, and the directory the link pointed to stays
// as it was.
func TestStagingNotThroughALink(t *testing.T) {
	for _, kind := range []string{"symlink", "file"} {
		t.Run(kind, func(t *testing.T) {
			victim := t.TempDir()
			if err := os.WriteFile(filepath.Join(victim, "keep"), []byte("keep"), 0o640); err != nil {
				t.Fatal(err)
			}
			into := filepath.Join(t.TempDir(), "www")
			id := "0123456789ab"
			at := filepath.Join(filepath.Dir(into), "www"+stagingMark+id)
			var err error
			if kind == "symlink" {
				err = os.Symlink(victim, at)
			} else {
				err = os.WriteFile(at, []byte("planted"), 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			s, err := newStaging(into, id)
			if err != nil {
				t.Fatalf("staging over a planted %s: %v", kind, err)
			}
			f, err := s.root.Create("written")
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			s.discard()
			ents, _ := os.ReadDir(victim)
			if len(ents) != 1 || ents[0].Name() != "keep" {
				t.Fatalf("the planted link's target changed: %v", ents)
			}
			if fi, err := os.Stat(filepath.Join(victim, "keep")); err != nil || fi.Mode().Perm() != 0o640 {
				t.Fatalf("victim: %v %v", fi, err)
			}
			if _, err := os.Lstat(at); !os.IsNotExist(err) {
				t.Fatalf("staging left at %s: %v", at, err)
			}
		})
	}
}
