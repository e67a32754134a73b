package restore

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/haul-dev/haul/internal/testenv"
)

// stopAfter is a Progress that, after n files, says READY on stdout and
// waits to be killed.
type stopAfter struct{ n int }

func (s *stopAfter) RestoreStart(int64) {}
func (s *stopAfter) RestoreBytes(int64) {}
func (s *stopAfter) Warn(string)        {}
func (s *stopAfter) RestoreFile(string) {
	if s.n--; s.n == 0 {
		fmt.Println("READY")
		time.Sleep(time.Minute) // the test kills us long before
		os.Exit(2)
	}
}

// helperMain is the restore run by TestKillDuringRestore in a child process.
func helperMain() {
	var parts []Part
	if err := json.Unmarshal([]byte(os.Getenv("HAUL_HELPER_PARTS")), &parts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	n, _ := strconv.Atoi(os.Getenv("HAUL_HELPER_AFTER"))
	err := Restore(context.Background(), parts, Options{Into: os.Getenv("HAUL_HELPER_INTO"), Progress: &stopAfter{n: n}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// kill -9 in the middle of a restore leaves nothing at the target; the
// next run removes the stale staging directory and builds the whole tree.
func TestKillDuringRestore(t *testing.T) {
	for _, kind := range []string{"bitrix", "tar.zst"} {
		t.Run(kind, func(t *testing.T) {
			parts := fixture(t, kind)
			base := t.TempDir()
			chmodWritable(t, base)
			into := filepath.Join(base, "site")
			js, err := json.Marshal(parts)
			if err != nil {
				t.Fatal(err)
			}
			for i, after := range []int{40, 300} {
				cmd := testenv.StartHelper(t, fmt.Sprintf("round %d", i), time.Minute, "HAUL_RESTORE_HELPER=1",
					"HAUL_HELPER_PARTS="+string(js), "HAUL_HELPER_INTO="+into, "HAUL_HELPER_AFTER="+strconv.Itoa(after))
				if s := staged(t, into); len(s) != 1 {
					t.Fatalf("round %d: staging directories %v, want one", i, s)
				}
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				_ = cmd.Wait()
				if _, err := os.Lstat(into); !os.IsNotExist(err) {
					t.Fatalf("round %d: something is at the target after kill -9", i)
				}
			}
			if err := Restore(context.Background(), parts, Options{Into: into}); err != nil {
				t.Fatal(err)
			}
			v := view{}
			if kind == "bitrix" {
				v = view{deref: true, copiedLinks: true}
			}
			sameTree(t, snapshot(t, srcTree(t), v), snapshot(t, into, v))
			if s := staged(t, into); len(s) > 0 {
				t.Fatalf("staging left behind: %v", s)
			}
		})
	}
}
