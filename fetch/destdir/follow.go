// Proving a part while it is fetched: the pass Prove makes after the
// part's last byte, run instead over each stretch of the file as it
// becomes durable, so that a big part's proof overlaps its transfer.

package destdir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/integrity"
)

// followBuffer is the size of a Follower's reads.
const followBuffer = 1 << 20

// FollowMin is the smallest part worth a Follower: below it the pass
// after the last byte is short, and parts in a set of many are proven
// while the next ones come anyway.
const FollowMin = 32 << 20

// Follower proves a part while it is fetched. It reads NAME.partial back
// in order from its first byte, one stretch at a time, each only once the
// caller has made it durable (Advance), into the one-pass check Prove
// makes (integrity.Checker: every reference, the structural checks, the
// CRC-32C). Every byte is still read from the file after it was written
// and fsynced, and none is read before: a stretch the caller has not
// reported durable, which may still be written, is never hashed.
//
// It serves parts that no manifest piece hashes prove as they land (Prove
// with hashes nil). The caller must not write again a byte it reported
// durable while the Follower lives; when the part fails its proof, Prove
// reads it again to locate the bad pieces.
type Follower struct {
	f    *os.File
	c    *integrity.Checker
	size int64

	mu     sync.Mutex
	target int64         // bytes from the start reported durable
	wake   chan struct{} // 1-buffered: target moved
	cancel context.CancelFunc
	done   chan struct{} // closed when the goroutine ends
	once   sync.Once

	pos atomic.Int64 // bytes read and checked; written by the goroutine
	err error        // the goroutine's, read once done is closed

	next int // Followers.Report: the first piece not yet reported durable
}

// Followers starts the Followers of one run, one per core at most, and
// counts them. Callers serialize its use (the engine's lock).
type Followers struct {
	n      int
	failed map[*chunk.Part]bool // Follow failed: not tried again every commit
}

// Report tells fw, the Follower of part p (nil when it has none), of the
// pieces (pieceSize bytes each) that p.Done holds from the part's start:
// they are durable. With none, it starts one for a part of FollowMin
// bytes or more once its first piece is durable and fewer Followers than
// cores run; a part it cannot follow is proven after its last byte, by
// Prove, as any other. It returns the part's Follower, nil when none.
func (fs *Followers) Report(fw *Follower, d Dir, p *chunk.Part, pieceSize int64, setNames func() []string) *Follower {
	if fw == nil {
		if p.Size < FollowMin || !p.Done.Has(0) || fs.n >= runtime.GOMAXPROCS(0) || fs.failed[p] {
			return nil
		}
		var err error
		if fw, err = Follow(context.Background(), d, p, setNames()); err != nil {
			if fs.failed == nil {
				fs.failed = map[*chunk.Part]bool{}
			}
			fs.failed[p] = true
			return nil
		}
		fs.n++
	}
	n := chunk.Pieces(p.Size, pieceSize)
	for fw.next < n && p.Done.Has(fw.next) {
		fw.next++
	}
	fw.Advance(min(int64(fw.next)*pieceSize, p.Size))
	return fw
}

// Take ends the following of a part (*fw set to nil) and returns its
// Follower with the verdict when the part passed, else nil: the part is
// then proven by Prove (with no Follower; or after a failure, which Prove
// reads again to locate). unlock is called once *fw is taken, before the
// wait for the pass; the caller closes the Follower once the part is
// renamed (Dir.Promote checks its file).
func (fs *Followers) Take(ctx context.Context, fw **Follower, unlock func()) (*Follower, integrity.Result) {
	f := *fw
	if f != nil {
		*fw = nil
		fs.n--
	}
	unlock()
	if f == nil {
		return nil, integrity.Result{}
	}
	if res, ok := f.Result(ctx); ok && res.Err == nil {
		return f, res
	}
	f.Close()
	return nil, integrity.Result{}
}

// Stop closes *fw, if any, and forgets it, as a run ends.
func (fs *Followers) Stop(fw **Follower) {
	if *fw != nil {
		(*fw).Close()
		*fw = nil
		fs.n--
	}
}

// Follow starts proving part p, whose file is DEST/NAME.partial and whose
// first piece is durable already (the checks of its format are chosen by
// its first bytes); setNames are the set's part names (PartNames). It
// returns an error when the file cannot be opened as a plain file of
// haul's: the part is then proven after the fact by Prove.
func Follow(ctx context.Context, d Dir, p *chunk.Part, setNames []string) (*Follower, error) {
	f, err := d.OpenPlain(d.PartialPath(p.Name))
	if err != nil {
		return nil, err
	}
	checks, err := checksOf(f, p.Name, setNames) // of the file it reads, as Prove's of the name
	if err != nil {
		f.Close()
		return nil, err
	}
	refs, _ := proofRefs(p, 0, nil)
	ctx, cancel := context.WithCancel(ctx)
	fw := &Follower{
		f:      f,
		c:      integrity.NewChecker(p.Name, p.Size, refs, checks),
		size:   p.Size,
		wake:   make(chan struct{}, 1),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go fw.run(ctx)
	return fw, nil
}

// Advance reports the first upTo bytes of the part durable. It does not
// wait for them to be read.
func (fw *Follower) Advance(upTo int64) {
	fw.mu.Lock()
	moved := upTo > fw.target
	fw.target = max(fw.target, min(upTo, fw.size))
	fw.mu.Unlock()
	if moved {
		select {
		case fw.wake <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

func (fw *Follower) run(ctx context.Context) {
	defer close(fw.done)
	buf := make([]byte, min(followBuffer, max(fw.size, 1)))
	for {
		fw.mu.Lock()
		target := fw.target
		fw.mu.Unlock()
		pos := fw.pos.Load()
		for pos < target {
			if err := ctx.Err(); err != nil {
				fw.err = err
				return
			}
			n, err := fw.f.ReadAt(buf[:min(int64(len(buf)), target-pos)], pos)
			fw.c.Write(buf[:n])
			pos += int64(n)
			fw.pos.Store(pos)
			if err != nil && (!errors.Is(err, io.EOF) || pos < target) {
				fw.err = fmt.Errorf("read back %s at %d: %w", fw.f.Name(), pos, err)
				return
			}
		}
		if pos >= fw.size {
			return
		}
		select {
		case <-fw.wake:
		case <-ctx.Done():
			fw.err = ctx.Err()
			return
		}
	}
}

// Result reports the whole part durable, waits for the pass to read it to
// its end and returns the verdict. ok is false when the pass did not
// reach the end (a read error, ctx ended) or the file is no longer the
// part's size: the caller then proves the part with Prove.
func (fw *Follower) Result(ctx context.Context) (res integrity.Result, ok bool) {
	fw.Advance(fw.size)
	select {
	case <-fw.done:
	case <-ctx.Done():
		return integrity.Result{}, false
	}
	if fw.err != nil || fw.pos.Load() != fw.size {
		return integrity.Result{}, false
	}
	if fi, err := fw.f.Stat(); err != nil || fi.Size() != fw.size {
		return integrity.Result{}, false // grown since: Prove reads it all
	}
	return fw.c.Result(), true
}

// Read is how many bytes from the part's start the pass has checked.
func (fw *Follower) Read() int64 { return fw.pos.Load() }

// File is the file the pass read, open until Close: Dir.Promote checks
// that the part's name still holds it.
func (fw *Follower) File() *os.File { return fw.f }

// Close stops the pass, waits for it and releases the file and the
// check. It is safe to call more than once, after Result, and on nil.
func (fw *Follower) Close() {
	if fw == nil {
		return
	}
	fw.once.Do(func() {
		fw.cancel()
		<-fw.done
		fw.c.Close()
		fw.f.Close() // read-only: a Close error cannot lose data
	})
}
