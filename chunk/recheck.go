// Re-establishing the verdicts in the state against the part files on
// disk, before any verdict is given.

package chunk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/haul-dev/haul/internal/atomicfile"
	"github.com/haul-dev/haul/internal/safefs"
)

// Change is a verdict Recheck took back: the part's file is gone or is
// not the file it was proven in.
type Change struct {
	Part   string
	Status string // Missing, Broken, or Partial (pieces kept for a fetch)
	Why    string
}

// RecheckOptions says how Recheck treats what it finds.
type RecheckOptions struct {
	// Write renames files (a part no longer proven loses its final name:
	// DEST/NAME becomes NAME.partial) and records new stamps in the state.
	// Without it (`haul status`, which takes no lock) only the state in
	// memory changes.
	Write bool
	// Keep is a fetch's view: a part found changed becomes Partial with
	// its pieces, and a broken part whose pieces are all on disk too, so
	// that the fetch re-hashes them and moves again only those that
	// differ.
	Keep bool
	// Prove proves a file in full against the part's references, for a
	// part proven before digests were recorded; it returns the labels
	// that passed and the file's CRC-32C.
	Prove func(ctx context.Context, p *Part, path string) (verifiedBy []string, crc string, err error)
}

// maxRecheckers bounds the parts whose content is read at once.
const maxRecheckers = 4

// Recheck re-establishes every verdict in st against the files in DEST: a
// part recorded complete counts only while its file stats as it did when
// it was proven (Part.Unchanged: size, device, inode, mtime). A file that
// does not is proven again by content — its CRC-32C against the one
// recorded then (o.Prove, for a part proven before digests were
// recorded) — and the part is broken when that fails; a file that is
// gone makes it missing. A file that is not DEST's own plain file — a
// symbolic link, not a regular file, more than one hard link (another
// name, maybe another user's, for the same bytes) — is broken without
// being read, and with o.Write its name is removed from DEST (the file
// under the other name is left as it is), so that the part is fetched
// again into a new file. Nothing unchanged is read: it costs one stat per
// part. dirty says st must be saved.
func Recheck(ctx context.Context, dest string, st *State, o RecheckOptions) (changes []Change, dirty bool, err error) {
	final := func(p *Part) string { return filepath.Join(dest, p.Name) }
	var reprove, unsafe []*Part
	for _, p := range st.Parts {
		if o.Keep && p.Status == Broken && len(p.Done) > 0 {
			if fi, err := os.Lstat(final(p) + ".partial"); err == nil && fi.Size() == p.Size {
				p.Status, dirty = Partial, true
				p.SetAttempts(0)
			}
		}
		if !p.Complete() {
			continue
		}
		fi, err := os.Lstat(final(p))
		switch {
		case errors.Is(err, os.ErrNotExist):
			p.Status, p.Error, p.VerifiedBy, p.Done = Missing, "deleted from DEST after it was verified", nil, nil
			p.ClearProof()
			changes = append(changes, Change{p.Name, p.Status, p.Error})
		case err != nil:
			return nil, false, fmt.Errorf("check %s: %w", p.Name, err)
		case safefs.Problem(fi) != "":
			// A symlink, or a second name someone else holds for the
			// file: its bytes can change under that name, and every
			// write to it would reach the other name. Never counted;
			// its bytes come again into a new file of haul's.
			p.Status, p.VerifiedBy, p.Done = Broken, nil, nil
			p.Error = NotPlain(final(p), safefs.Problem(fi))
			p.ClearProof()
			if o.Keep {
				p.Status = Partial
				p.SetAttempts(0)
			}
			changes = append(changes, Change{p.Name, p.Status, p.Error})
			unsafe = append(unsafe, p)
		case p.Unchanged(fi):
		default:
			reprove = append(reprove, p)
		}
	}
	dirty = dirty || len(changes) > 0 || len(reprove) > 0 && o.Write
	if o.Write && len(unsafe) > 0 {
		// Only the name in DEST goes (never what it links to), so that
		// nothing later reads or writes the other file through it.
		for _, p := range unsafe {
			if err := os.Remove(final(p)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, false, fmt.Errorf("remove %s: %w", final(p), err)
			}
		}
		if err := atomicfile.SyncDir(dest); err != nil {
			return nil, false, err
		}
	}
	why := make([]string, len(reprove))
	ForEach(ctx, len(reprove), maxRecheckers, func(i int) { why[i] = reprove1(ctx, reprove[i], final(reprove[i]), o) })
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	for i, p := range reprove {
		if why[i] == "" {
			continue
		}
		p.Status, p.Error, p.VerifiedBy = Broken, why[i], nil
		p.ClearProof()
		if o.Keep {
			p.Status = Partial
			p.SetAttempts(0)
		}
		changes = append(changes, Change{p.Name, p.Status, p.Error})
		if !o.Write {
			continue
		}
		if err := os.Rename(final(p), final(p)+".partial"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, false, fmt.Errorf("rename %s: %w", final(p), err)
		}
		if err := atomicfile.SyncDir(dest); err != nil {
			return nil, false, err
		}
	}
	return changes, dirty, nil
}

// NotPlain is the verdict on a part file that is not DEST's own plain
// file (why is safefs.Problem's: "has 2 hard links", …).
func NotPlain(path, why string) string {
	return fmt.Sprintf("%s %s, so it does not count as verified; haul repair (or haul run) removes that name and fetches the part again into a new file, leaving the file under the other name alone", path, why)
}

// reprove1 proves a part whose file changed since it was proven; it
// returns why the part no longer counts, "" when it still does (its new
// stamp recorded when o.Write).
func reprove1(ctx context.Context, p *Part, path string, o RecheckOptions) string {
	fi, err := os.Lstat(path)
	switch {
	case err != nil:
		return err.Error()
	case !fi.Mode().IsRegular():
		return fmt.Sprintf("%s is no longer a regular file", path)
	case fi.Size() != p.Size:
		return fmt.Sprintf("changed on disk after it was verified: %d bytes, expected %d", fi.Size(), p.Size)
	}
	var crc string
	switch {
	case p.CRC32C == "" && o.Prove != nil:
		// Proven before digests were recorded: prove it again in full.
		var by []string
		if by, crc, err = o.Prove(ctx, p, path); err != nil {
			return err.Error()
		}
		p.VerifiedBy = by
	default:
		if crc, err = FileCRC32C(ctx, path); err != nil {
			return err.Error()
		}
		if p.CRC32C != "" && crc != p.CRC32C {
			return fmt.Sprintf("changed on disk after it was verified (CRC-32C %s, verified as %s)", crc, p.CRC32C)
		}
	}
	if o.Write {
		p.SetProof(StampOf(fi), crc)
	}
	return ""
}

// ForEach runs f(0) … f(n-1) on up to workers goroutines (one per core
// at most): the bounded pool that reads part files. It stops handing out
// work when ctx ends, and returns when every f it started has returned.
func ForEach(ctx context.Context, n, workers int, f func(i int)) {
	q := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), workers, n) {
		wg.Go(func() {
			for i := range q {
				f(i)
			}
		})
	}
feed:
	for i := range n {
		select {
		case q <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(q)
	wg.Wait()
}

// MarkChanged records in DEST's state that part name no longer holds
// the bytes it was proven with (a restore found its digest differs): it
// is broken, and its file goes back to NAME.partial with its pieces, so
// that a fetch or repair moves again only those that differ.
func MarkChanged(dest, name, why string) error {
	st, err := Load(dest)
	if err != nil {
		return err
	}
	p := st.Find(name)
	if p == nil {
		return fmt.Errorf("%s: no part %s in the state", dest, name)
	}
	p.Status, p.Error, p.VerifiedBy = Broken, why, nil
	p.ClearProof()
	final := filepath.Join(dest, name)
	if err := os.Rename(final, final+".partial"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rename %s: %w", final, err)
	}
	if err := atomicfile.SyncDir(dest); err != nil {
		return err
	}
	return Save(dest, st)
}
