package bitrixdb

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/haul-dev/haul/internal/gen"
	"github.com/haul-dev/haul/internal/testenv"
)

// readyAt is a Progress that says READY on stdout once the import has
// passed byte n, and goes on importing: the parent kills it right then.
type readyAt struct {
	n    int64
	said bool
}

func (r *readyAt) ImportStart(total, done int64) {}
func (r *readyAt) Warn(string)                   {}
func (r *readyAt) ImportProgress(done, _ int64) {
	if !r.said && done >= r.n {
		r.said = true
		fmt.Println("READY")
	}
}

// helperOpts is what the child needs to run the same import.
type helperOpts struct{ URL, Root, StateDir, PasswordFile string }

// helperMain is the import run in a child process by TestKillDuringImport.
func helperMain() {
	var h helperOpts
	if err := json.Unmarshal([]byte(os.Getenv("HAUL_HELPER_OPTS")), &h); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	target, err := ParseURL(h.URL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	opts := Options{Root: h.Root, StateDir: h.StateDir, Target: target, Create: true,
		Credentials: Credentials{PasswordFile: h.PasswordFile, MyCnf: "-"}}
	n, _ := strconv.ParseInt(os.Getenv("HAUL_HELPER_AT"), 10, 64)
	opts.Progress = &readyAt{n: n}
	opts.SaveEvery = 50 * time.Millisecond
	opts.Credentials.Env = noEnv
	if _, err := Run(context.Background(), opts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("READY") // finished before the mark: let the parent go on
	os.Exit(0)
}

// Acceptance 2: kill -9 at five moments of the import (one of them in the
// rows of the table without a key), run again each time; the result
// equals an uninterrupted import.
func TestKillDuringImport(t *testing.T) {
	m := testenv.StartMariaDB(t)
	o := gen.SQLDumpOptions{Rows: 30000, PartSize: 12_000_000}
	refRoot, _ := site(t, o)
	ref := options(t, m, "ref", refRoot)
	if _, err := Run(ctxT(t), ref); err != nil {
		t.Fatal(err)
	}
	want := sums(t, m, "ref")

	root, d := site(t, o)
	opts := options(t, m, "killed", root)
	js, err := json.Marshal(helperOpts{URL: m.URL("killed"), Root: root, StateDir: opts.StateDir, PasswordFile: opts.Credentials.PasswordFile})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	var joined []byte
	for _, p := range d.Parts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		joined = append(joined, b...)
		total += int64(len(b))
	}
	// The second INSERT of the keyless table: a kill there must not double
	// its rows.
	first := bytes.Index(joined, []byte("INSERT INTO `b_perf_hit`"))
	second := bytes.Index(joined[first+1:], []byte("INSERT INTO `b_perf_hit`"))
	if first < 0 || second < 0 {
		t.Fatal("the dump has fewer than two INSERTs into b_perf_hit")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill points from seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	// One kill point in each fifth of the dump; the one in the keyless
	// table's rows replaces the point of its fifth.
	keyless := int64(first + 1 + second + 10)
	var points []int64
	for i := int64(0); i < 5; i++ {
		lo, hi := total*i/5, total*(i+1)/5
		if keyless >= lo && keyless < hi {
			points = append(points, keyless)
			continue
		}
		points = append(points, lo+rng.Int64N(hi-lo))
	}
	for i, at := range points {
		cmd := testenv.StartHelper(t, fmt.Sprintf("round %d (kill at byte %d)", i, at), 3*time.Minute,
			"HAUL_BITRIXDB_HELPER=1", "HAUL_HELPER_OPTS="+string(js), "HAUL_HELPER_AT="+strconv.FormatInt(at, 10))
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		st, _ := loadState(opts.StateDir)
		if st != nil {
			t.Logf("round %d: killed after byte %d; saved offset %d of %d, phase %s", i, at, st.Offset, total, st.Phase)
		}
	}
	res, err := Run(ctxT(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFrom == 0 && !res.AlreadyDone {
		t.Log("the last run started from the beginning (every kill landed before the first save)")
	}
	sameSums(t, sums(t, m, "killed"), want)
	if _, err := os.Stat(filepath.Join(root, BackupDir, d.Name+".sql")); !os.IsNotExist(err) {
		t.Fatal("the dump is still there after the resumed import")
	}
}
