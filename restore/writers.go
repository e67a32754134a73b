package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"os"
	"runtime"
	"strings"
	"sync"
)

// Files are written by a small pool of writers fed in archive order by the
// one goroutine that reads the tar stream (the dispatcher). A file whose
// header says it holds at most poolMaxFile bytes is read whole into a
// buffer and handed to a writer, which creates it in its directory's open
// handle, writes it and sets its owner, mode and mtime on the open file.
// Larger files, and files whose size is not known ahead (sparse, zip), are
// written by the dispatcher itself, streaming, as before. Directories,
// links and everything else stay with the dispatcher, in archive order.
//
// The result is the one a sequential extraction gives. Before the
// dispatcher touches a name (the entry's own, or a directory above it)
// that a writer has not finished yet, it waits for the writers; before a
// hard link (whose target must be complete) and before an incremental
// directory list (which removes and renames names), it waits too. When
// writers fail, the error of the earliest entry in the archive is the one
// reported, as sequentially. Buffered data is bounded by poolBudget.
const (
	poolMaxFile = 1 << 20
	poolBudget  = 32 << 20
	poolQueue   = 16      // batches waiting for a writer
	batchFiles  = 64      // a batch ends at this many files
	batchBytes  = 1 << 20 // or at this many bytes
	minClass    = 12      // the smallest buffer is 4 KiB
)

// fileJob is one file for a writer.
type fileJob struct {
	seq  int64
	e    entry
	perm fs.FileMode
	dir  *dirFD
	base string
	data []byte
	buf  []byte // what data was cut from, returned to the pool
}

// writerPool runs the writers of one archive.
type writerPool struct {
	ctx       context.Context
	sameOwner bool
	jobs      chan []*fileJob
	workers   sync.WaitGroup
	inflight  sync.WaitGroup // jobs handed out and not finished
	// The dispatcher's: its count of jobs, and the batch it fills. Jobs
	// go to the writers in batches: a hand-over wakes a writer, which
	// costs more than writing a small file.
	seq        int64
	batch      []*fileJob
	batchBytes int64

	mu      sync.Mutex
	room    *sync.Cond // signalled when buffered bytes are released
	used    int64      // bytes of buffers handed out
	spare   int64      // bytes of buffers kept for reuse
	free    [bits.UintSize][][]byte
	pending map[string]int // names of files not finished, and how many jobs hold each
	err     error          // the failure of the earliest job
	errSeq  int64
}

func newWriterPool(ctx context.Context, sameOwner bool) *writerPool {
	p := &writerPool{ctx: ctx, sameOwner: sameOwner, jobs: make(chan []*fileJob, poolQueue), pending: map[string]int{}}
	p.room = sync.NewCond(&p.mu)
	n := min(max(runtime.GOMAXPROCS(0), 2), 4)
	p.workers.Add(n)
	for range n {
		go p.work()
	}
	return p
}

func (p *writerPool) work() {
	defer p.workers.Done()
	errs := make([]error, 0, batchFiles)
	for batch := range p.jobs {
		errs = errs[:0]
		for _, j := range batch {
			err := p.ctx.Err()
			if err == nil {
				err = writeWhole(j, p.sameOwner)
			}
			errs = append(errs, err)
		}
		p.done(batch, errs)
	}
}

// done returns the buffers of finished jobs, clears their names and
// keeps the error of the earliest failed one.
func (p *writerPool) done(batch []*fileJob, errs []error) {
	p.mu.Lock()
	for i, j := range batch {
		j.dir.release()
		p.giveBack(j.buf)
		if p.pending[j.e.name]--; p.pending[j.e.name] <= 0 {
			delete(p.pending, j.e.name)
		}
		if err := errs[i]; err != nil && (p.err == nil || j.seq < p.errSeq) {
			p.err, p.errSeq = err, j.seq
		}
	}
	p.mu.Unlock()
	p.inflight.Add(-len(batch))
}

// giveBack returns a buffer, keeping it for reuse while the budget
// allows. p.mu is held.
func (p *writerPool) giveBack(b []byte) {
	if b == nil {
		return
	}
	p.used -= int64(cap(b))
	if p.used+p.spare+int64(cap(b)) <= poolBudget {
		c := bits.Len(uint(cap(b) - 1))
		p.free[c] = append(p.free[c], b)
		p.spare += int64(cap(b))
	}
	p.room.Broadcast()
}

// failed returns the error of the earliest failed job so far.
func (p *writerPool) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// take returns a buffer of n bytes once the budget allows it.
func (p *writerPool) take(n int64) ([]byte, error) {
	c := max(bits.Len(uint(n-1)), minClass)
	size := int64(1) << c
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used+size > poolBudget && len(p.batch) > 0 {
		// The batch holds buffers: let the writers have it first.
		p.mu.Unlock()
		p.send()
		p.mu.Lock()
	}
	for p.used > 0 && p.used+size > poolBudget && p.err == nil && p.ctx.Err() == nil {
		p.room.Wait()
	}
	if p.err != nil {
		return nil, p.err
	}
	if err := p.ctx.Err(); err != nil {
		return nil, err
	}
	p.used += size
	if k := len(p.free[c]); k > 0 {
		b := p.free[c][k-1]
		p.free[c] = p.free[c][:k-1]
		p.spare -= size
		return b, nil
	}
	if p.used+p.spare > poolBudget {
		// Make room by dropping spares of other sizes.
		for i := range p.free {
			for _, b := range p.free[i] {
				p.spare -= int64(cap(b))
			}
			p.free[i] = nil
		}
	}
	return make([]byte, size), nil
}

// submit adds a job to the batch, in archive order, and hands the batch
// to the writers when it is full.
func (p *writerPool) submit(j *fileJob) error {
	p.seq++
	j.seq = p.seq
	p.mu.Lock()
	p.pending[j.e.name]++
	p.mu.Unlock()
	p.inflight.Add(1)
	p.batch = append(p.batch, j)
	p.batchBytes += int64(len(j.data))
	if len(p.batch) >= batchFiles || p.batchBytes >= batchBytes {
		return p.send()
	}
	return nil
}

// send hands the batch to the writers.
func (p *writerPool) send() error {
	if len(p.batch) == 0 {
		return nil
	}
	b := p.batch
	p.batch, p.batchBytes = make([]*fileJob, 0, batchFiles), 0
	select {
	case p.jobs <- b:
		return nil
	case <-p.ctx.Done():
		errs := make([]error, len(b))
		for i := range errs {
			errs[i] = p.ctx.Err()
		}
		p.done(b, errs)
		return p.ctx.Err()
	}
}

// busy reports whether a file not yet finished is at name or at one of
// the directories above it.
func (p *writerPool) busy(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) == 0 {
		return false
	}
	for n := name; ; {
		if p.pending[n] > 0 {
			return true
		}
		i := strings.LastIndexByte(n, '/')
		if i < 0 {
			return false
		}
		n = n[:i]
	}
}

// wait waits for every job handed out and returns the earliest failure.
func (p *writerPool) wait() error {
	_ = p.send() // a cancel is the writers' error too
	p.inflight.Wait()
	return p.failed()
}

// stop waits for the jobs and ends the writers.
func (p *writerPool) stop() error {
	_ = p.send()
	close(p.jobs)
	p.workers.Wait()
	return p.failed()
}

// settle makes the tree what a sequential extraction would have made it
// before entry e: the writers are waited for when e depends on a file they
// may still be writing. It returns a writer's failure, which comes first.
func (x *extractor) settle(e *entry) error {
	if x.pool == nil {
		return nil
	}
	if e.kind == kindHardlink || e.list != nil || x.pool.busy(e.name) {
		return x.pool.wait()
	}
	return x.pool.failed()
}

// flush waits for the writers and stops them, and lets go of the
// directory handles files were created in. It returns the earliest
// failure of a writer, which comes before any error the dispatcher met
// after it.
func (x *extractor) flush() error {
	var err error
	if x.pool != nil {
		err = x.pool.stop()
		x.pool = nil
	}
	if x.curFD != nil {
		x.curFD.release()
		x.curFD, x.curFDRoot = nil, nil
	}
	return err
}

// dirFor returns the shared handle files of d are created in, opened
// once for as long as d is the current directory.
func (x *extractor) dirFor(d *os.Root, e *entry) (*dirFD, error) {
	if x.curFD != nil && x.curFDRoot == d {
		return x.curFD, nil
	}
	h, err := openDirFD(d)
	if err != nil {
		return nil, fmt.Errorf("restore: %s: %w", e.raw, err)
	}
	if x.curFD != nil {
		x.curFD.release()
	}
	x.curFD, x.curFDRoot = h, d
	return h, nil
}

// writeFile creates a file: small ones are read here and written by the
// pool, others are written here while they are read.
func (x *extractor) writeFile(e *entry, r io.Reader) error {
	if err := x.reserve(e); err != nil {
		return err
	}
	dn, base := split(e.name)
	d, err := x.dir(dn, e)
	if err != nil {
		return err
	}
	h, err := x.dirFor(d, e)
	if err != nil {
		return err
	}
	perm := x.perm(e.mode)
	if e.whole && e.size <= poolMaxFile {
		if x.pool == nil {
			x.pool = newWriterPool(x.ctx, x.sameOwner)
		}
		j := &fileJob{e: *e, perm: perm, dir: h, base: base}
		if e.size > 0 {
			if j.buf, err = x.pool.take(e.size); err != nil {
				return err
			}
			j.data = j.buf[:e.size]
			if _, err := io.ReadFull(r, j.data); err != nil {
				x.pool.mu.Lock()
				x.pool.giveBack(j.buf)
				x.pool.mu.Unlock()
				var de *dataError
				if !errors.As(err, &de) {
					err = &dataError{err}
				}
				return err
			}
		}
		h.hold()
		return x.pool.submit(j)
	}
	o, err := createFile(h, base, e, perm)
	if err != nil {
		return err
	}
	if r != nil {
		if _, err := io.CopyBuffer(o, r, x.buf); err != nil {
			o.abort()
			var de *dataError
			if errors.As(err, &de) {
				return err
			}
			return fmt.Errorf("restore: %s: %w", e.raw, err)
		}
	}
	return o.finish(e, perm, x.sameOwner)
}

// writeWhole is a writer's work: one file from its buffered data.
func writeWhole(j *fileJob, owner bool) error {
	o, err := createFile(j.dir, j.base, &j.e, j.perm)
	if err != nil {
		return err
	}
	if len(j.data) > 0 {
		if _, err := o.Write(j.data); err != nil {
			o.abort()
			return fmt.Errorf("restore: %s: %w", j.e.raw, err)
		}
	}
	return o.finish(&j.e, j.perm, owner)
}

// replaceDirErr refuses a file or link in place of a directory.
func replaceDirErr(e *entry) error {
	what := map[byte]string{kindFile: "file", kindSymlink: "symlink", kindHardlink: "hard link"}[e.kind]
	return &UnsafeError{Name: e.raw, Reason: fmt.Sprintf("a %s would replace the directory %s", what, e.name)}
}
