package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/haul-dev/haul/fetch"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/internal/faultserver"
	"github.com/haul-dev/haul/internal/gen"
	"github.com/haul-dev/haul/internal/testhook"
	"github.com/haul-dev/haul/internal/units"
)

// cmdDemo runs the whole job on a generated Bitrix-style backup served by
// an in-process slow, faulty HTTP server: fetch (cut short by --max-time,
// then resumed), a part damaged on disk, verify, repair, restore, report.
func cmdDemo(ctx context.Context, a *app, o *opts, pos []string) (err error) {
	dir := ""
	if len(pos) == 1 {
		dir = pos[0]
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	} else {
		if dir, err = os.MkdirTemp("", "haul-demo-"); err != nil {
			return err
		}
		// Without DIR nothing is kept: a demo run leaves no 100 MB behind.
		defer func() {
			if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
				err = fmt.Errorf("demo: remove %s: %w", dir, rerr)
			}
		}()
	}
	say := func(format string, args ...any) { fmt.Fprintf(a.stdout, "\n== "+format+"\n", args...) }
	tree, served, dest, into := filepath.Join(dir, "site"), filepath.Join(dir, "server"), filepath.Join(dir, "dest"), filepath.Join(dir, "restored")
	for _, d := range []string{served, dest, into} {
		os.RemoveAll(d)
	}

	say("generating a %s site and its Bitrix-style multi-volume backup in %s", units.FormatBytes(o.size), dir)
	if _, err := os.Stat(tree); err != nil {
		if err := gen.Tree(tree, 20261120, o.size); err != nil {
			return fmt.Errorf("demo: generate site: %w", err)
		}
	}
	if err := os.MkdirAll(served, 0o755); err != nil {
		return err
	}
	vols, err := gen.BitrixSet(tree, served, "site_20261120", max(o.size/6, 256<<10), "")
	if err != nil {
		return fmt.Errorf("demo: build backup: %w", err)
	}
	pieceSize := int64(256 << 10)
	if err := writeDemoManifest(ctx, served, filepath.Base(vols[0]), pieceSize); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%d volumes: %s … %s, with a haul manifest (per-piece SHA-256)\n", len(vols), filepath.Base(vols[0]), filepath.Base(vols[len(vols)-1]))

	// A slow, faulty link: a per-connection cap, resets, and bits flipped
	// in two volumes the first time they are sent.
	perConn := max(o.size/40, 64<<10)
	srv := faultserver.New(served,
		faultserver.ConnRate(perConn),
		faultserver.ResetAfter(pieceSize/2, faultserver.When{Every: 9}),
		faultserver.FlipBits(filepath.Base(vols[1]), 1, 1000),
		faultserver.FlipBits(filepath.Base(vols[len(vols)-1]), 1, 77),
	)
	defer srv.Close()
	url := srv.URL(filepath.Base(vols[0]))
	say("the link: %s per connection, a reset every 9th request, bits flipped in transit", units.FormatRate(float64(perConn)))

	progress := []string{"--progress", o.progress}
	common := append([]string{"--chunk-size", units.FormatBytes(pieceSize), "-j", "4", "--retries", "6"}, progress...)
	testhook.SetFastRetry() // the demo's faults are ours: retry at once
	step := func(want int, args ...string) error {
		fmt.Fprintf(a.stdout, "$ haul %s\n", joinArgs(args))
		code := a.main(ctx, args)
		fmt.Fprintf(a.stdout, "exit %d\n", code)
		if ctx.Err() != nil {
			return fmt.Errorf("demo: %w", fetch.ErrInterrupted)
		}
		if code != want {
			return fmt.Errorf("demo: haul %s exited %d, expected %d", args[0], code, want)
		}
		return nil
	}

	say("1. fetch, cut short by --max-time as a deadline would (exit 75, state saved)")
	if err := step(75, append([]string{"fetch", url, dest, "--max-time", "3s"}, common...)...); err != nil {
		return err
	}
	say("2. the same command again resumes where it stopped; damaged pieces are caught and fetched again")
	if err := step(0, append([]string{"fetch", url, dest}, common...)...); err != nil {
		return err
	}
	victim := filepath.Join(dest, filepath.Base(vols[len(vols)/2]))
	say("3. a byte of %s rots on disk; verify finds it (exit 3)", filepath.Base(victim))
	if err := flipByte(victim, 4096); err != nil {
		return err
	}
	if err := step(3, "verify", dest); err != nil {
		return err
	}
	say("4. repair moves only the broken piece, then verify passes")
	before := srv.BytesSent()
	if err := step(0, append([]string{"repair", dest}, progress...)...); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "repair pulled %s over the link\n", units.FormatBytes(srv.BytesSent()-before))
	if err := step(0, "verify", dest); err != nil {
		return err
	}
	say("5. restore into %s (built beside it, moved into place when complete)", into)
	if err := step(0, append([]string{"restore", dest, "--into", into}, progress...)...); err != nil {
		return err
	}
	same, err := sameTree(tree, into)
	if err != nil {
		return err
	}
	if !same {
		return fmt.Errorf("demo: the restored tree differs from the original")
	}
	fmt.Fprintln(a.stdout, "every restored file is identical to the original site's")
	say("6. the journal of the night")
	if err := step(0, "report", dest); err != nil {
		return err
	}
	kept := "removed " + dir + " (give DIR to keep the files)"
	if len(pos) == 1 {
		kept = "everything is in " + dir
	}
	fmt.Fprintf(a.stdout, "\nserved %s for a %s set; %s\n", units.FormatBytes(srv.BytesSent()), units.FormatBytes(dirSize(served)), kept)
	return nil
}

func joinArgs(args []string) string {
	s := ""
	for i, a := range args {
		if i > 0 {
			s += " "
		}
		s += a
	}
	return s
}

func writeDemoManifest(ctx context.Context, dir, first string, pieceSize int64) error {
	f, err := os.Create(filepath.Join(dir, first+".haul.json"))
	if err != nil {
		return err
	}
	if err := fetch.WriteManifest(ctx, dir, source.OpenOptions{}, pieceSize, f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func flipByte(path string, off int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		f.Close()
		return err
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sameTree checks that every regular file restored equals the original
// one (Bitrix archives store what links point at, so the original is read
// through its links) and that every original file is there.
func sameTree(orig, restored string) (bool, error) {
	n := 0
	err := filepath.WalkDir(restored, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(restored, p)
		a, err := fileSum(filepath.Join(orig, rel))
		if err != nil {
			return err
		}
		b, err := fileSum(p)
		if err != nil {
			return err
		}
		if a != b {
			return fmt.Errorf("demo: %s differs from the original", rel)
		}
		n++
		return nil
	})
	if err != nil {
		return false, err
	}
	m := 0
	filepath.WalkDir(orig, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			m++
		}
		return nil
	})
	return n >= m, nil
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
