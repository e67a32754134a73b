package restore

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/integrity"
	"github.com/haul-dev/haul/internal/safefs"
)

// Part is one file of a set, in archive order.
type Part struct {
	Name string // the part's name, used in messages ("site.tar.gz.3")
	Path string // where it is on disk
	Size int64  // its size; 0 means take it from the file
	// CRC32C is the CRC-32C (hex) the part had when it was proven
	// (chunk.Part.CRC32C); "" skips the check. The Join computes it over
	// the bytes it hands out and fails the read that completes a part
	// whose bytes differ, so a part changed after its proof never
	// restores (DigestError).
	CRC32C string
	// Dev and Ino are the file the part was proven in (chunk.Part's,
	// refreshed by the re-check before a restore); 0 skips the check.
	// Every open of the part must find that file, with Size bytes, or the
	// restore stops (*PartFileError): a file swapped in after the check is
	// never read.
	Dev, Ino uint64
}

// PartFileError is a part whose file is not the one its state proved: a
// link, not a regular file, more than one hard link (Unsafe: someone put
// it there, exit 1), or another file than the one verified (exit 3). The
// restore stops before anything is put in place.
type PartFileError struct {
	Part   string
	Path   string
	Why    string
	Unsafe bool
}

func (e *PartFileError) Error() string {
	dest := filepath.Dir(e.Path)
	if e.Unsafe {
		return fmt.Sprintf("part %s: %s %s; haul reads no part through a link or a file it did not make, so nothing was restored: remove it (check who put it there), then run haul repair %s", e.Part, e.Path, e.Why, dest)
	}
	return fmt.Sprintf("part %s: %s %s; nothing was restored: run haul verify %s (and haul repair %s if it says so)", e.Part, e.Path, e.Why, dest, dest)
}

// Unwrap makes an unsafe part file safefs.ErrUnsafe (exit 1) and a
// replaced one a part not ready (exit 3).
func (e *PartFileError) Unwrap() error {
	if e.Unsafe {
		return safefs.ErrUnsafe
	}
	return ErrNotReady
}

// openPart opens p's file for reading through no link (safefs.OpenPlain)
// and checks, on the open file, that it is the file p was proven in when
// that is known, and that it has p's size when checkSize. Every read of a
// part's bytes goes through it.
func openPart(p Part, checkSize bool) (*os.File, os.FileInfo, error) {
	f, fi, err := safefs.OpenPlain(p.Path)
	var ue *safefs.UnsafeError
	switch {
	case errors.As(err, &ue):
		return nil, nil, &PartFileError{Part: p.Name, Path: p.Path, Why: ue.Why, Unsafe: true}
	case err != nil:
		return nil, nil, fmt.Errorf("restore: %w", err)
	}
	why := ""
	if s := chunk.StampOf(fi); p.Ino != 0 && (s.Dev != p.Dev || s.Ino != p.Ino) {
		why = fmt.Sprintf("is another file than the one verified (inode %d, verified %d): it was replaced after the check", s.Ino, p.Ino)
	} else if checkSize && fi.Size() != p.Size {
		why = fmt.Sprintf("is %d bytes, verified with %d: it changed after the check", fi.Size(), p.Size)
	}
	if why != "" {
		_ = f.Close()
		return nil, nil, &PartFileError{Part: p.Name, Path: p.Path, Why: why}
	}
	return f, fi, nil
}

// Join is the parts of a set read as one stream, without a joined copy on
// disk. It is an io.Reader and an io.ReaderAt over the concatenation, and
// maps an offset in the concatenation back to (part, offset in the part)
// for messages. Read and ReadAt may be used together; ReadAt is safe for
// concurrent use, Read is not.
type Join struct {
	parts  []Part
	starts []int64 // starts[i] is the offset of part i; starts[len(parts)] is the total

	mu    sync.Mutex
	files []*os.File // open parts, at most maxOpen of them
	used  []int64    // when each was last used, for closing the oldest
	tick  int64
	open  int

	pos int64 // offset of the next byte Read returns

	// The digest of each part over its bytes read in order so far:
	// sums[i] covers [0, next[i]); want[i] < 0 when there is none to
	// check.
	sums []uint32
	next []int64
	want []int64
}

// DigestError says a part's bytes are not those it was proven with: it
// changed on disk after it was verified (bit rot, another program). The
// restore stops before anything is put in place.
type DigestError struct {
	Part      string
	Want, Got string
	Dest      string // the workdir, for the message; "" says DEST
}

func (e *DigestError) Error() string {
	dest := e.Dest
	if dest == "" {
		dest = "DEST"
	}
	return fmt.Sprintf("part %s changed on disk after it was verified (CRC-32C %s, verified as %s); nothing was restored: run haul repair %s", e.Part, e.Got, e.Want, dest)
}

// Unwrap makes a DigestError an integrity failure (exit 3).
func (e *DigestError) Unwrap() error { return integrity.ErrMismatch }

// joinError marks an I/O error reading a part, so the decoders never
// mistake it for damage in the archive.
type joinError struct{ err error }

func (e *joinError) Error() string { return e.err.Error() }
func (e *joinError) Unwrap() error { return e.err }

// NewJoin checks that every part is there with the size the set says
// (a missing part gives a *PartsError, a size mismatch an
// *integrity.FormatError) and returns a Join over them.
func NewJoin(parts []Part) (*Join, error) {
	j := &Join{parts: append([]Part(nil), parts...), starts: make([]int64, len(parts)+1),
		files: make([]*os.File, len(parts)), used: make([]int64, len(parts)),
		sums: make([]uint32, len(parts)), next: make([]int64, len(parts)), want: make([]int64, len(parts))}
	for i, p := range parts {
		j.want[i] = -1
		if v, err := strconv.ParseUint(p.CRC32C, 16, 32); err == nil {
			j.want[i] = int64(v)
		}
	}
	var missing []string
	for i := range j.parts {
		p := &j.parts[i]
		f, fi, err := openPart(*p, false)
		if errors.Is(err, os.ErrNotExist) {
			missing = append(missing, p.Name)
			continue
		}
		if err != nil {
			return nil, err
		}
		_ = f.Close() // read-only; opened again, and checked again, when read
		if p.Size == 0 {
			p.Size = fi.Size()
		}
		if fi.Size() != p.Size {
			return nil, &integrity.FormatError{Format: "part", Part: p.Name, Offset: min(fi.Size(), p.Size),
				Err: fmt.Errorf("file is %d bytes, the set says %d (changed since it was fetched? run haul verify)", fi.Size(), p.Size)}
		}
		j.starts[i+1] = j.starts[i] + p.Size
	}
	if len(missing) > 0 {
		st := make([]string, len(missing))
		for i := range st {
			st[i] = chunk.Missing
		}
		return nil, &PartsError{Parts: missing, Status: st}
	}
	return j, nil
}

// Parts returns the parts with their sizes filled in.
func (j *Join) Parts() []Part { return j.parts }

// Size is the total size of the parts.
func (j *Join) Size() int64 { return j.starts[len(j.parts)] }

// Start returns the offset of part i in the concatenation.
func (j *Join) Start(i int) int64 { return j.starts[i] }

// Locate maps an offset in the concatenation to the part holding it and the
// offset inside that part. An offset on a boundary between two parts
// belongs to the end of the earlier one, because errors are found after
// the bytes that caused them were read; 0 is the start of the first part.
func (j *Join) Locate(off int64) (part string, partOff int64) {
	if len(j.parts) == 0 {
		return "", off
	}
	i := j.index(off)
	return j.parts[i].Name, off - j.starts[i]
}

// between returns the names of the parts holding bytes in [from, to).
func (j *Join) between(from, to int64) []string {
	var names []string
	for i, p := range j.parts {
		if j.starts[i] < to && j.starts[i+1] > from && p.Size > 0 {
			names = append(names, p.Name)
		}
	}
	return names
}

// index returns the part that ends at or after off, end-inclusive.
func (j *Join) index(off int64) int {
	if off <= 0 {
		return 0
	}
	// The first part whose end is >= off.
	i := sort.Search(len(j.parts), func(i int) bool { return j.starts[i+1] >= off })
	return min(i, len(j.parts)-1)
}

// maxOpen bounds the part files a Join keeps open: a set can have
// thousands of parts, more than a process may open.
const maxOpen = 16

// file returns part i opened; j.mu must be held.
func (j *Join) file(i int) (*os.File, error) {
	j.tick++
	j.used[i] = j.tick
	if j.files[i] != nil {
		return j.files[i], nil
	}
	if j.open >= maxOpen {
		oldest := -1
		for k, f := range j.files {
			if f != nil && (oldest < 0 || j.used[k] < j.used[oldest]) {
				oldest = k
			}
		}
		_ = j.files[oldest].Close()
		j.files[oldest] = nil
		j.open--
	}
	f, _, err := openPart(j.parts[i], true)
	if err != nil {
		return nil, &joinError{err} // the decoders pass it on as it is
	}
	j.files[i] = f
	j.open++
	return f, nil
}

// ReadAt reads len(p) bytes at offset off of the concatenation.
func (j *Join) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &joinError{errors.New("restore: negative offset")}
	}
	total := 0
	for len(p) > 0 {
		if off >= j.Size() {
			return total, io.EOF
		}
		i := sort.Search(len(j.parts), func(i int) bool { return j.starts[i+1] > off })
		in := off - j.starts[i]
		want := min(int64(len(p)), j.parts[i].Size-in)
		n, err := j.readPart(i, p[:want], in)
		total += n
		off += int64(n)
		p = p[n:]
		if err == io.EOF && int64(n) < want {
			// The file shrank after NewJoin looked at it.
			return total, &integrity.FormatError{Format: "part", Part: j.parts[i].Name, Offset: in + int64(n), Err: io.ErrUnexpectedEOF}
		}
		if err != nil && err != io.EOF {
			return total, &joinError{fmt.Errorf("restore: read %s: %w", j.parts[i].Name, err)}
		}
	}
	return total, nil
}

// readPart reads from part i under the lock, so no other call closes the
// file meanwhile.
func (j *Join) readPart(i int, p []byte, off int64) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	f, err := j.file(i)
	if err != nil {
		return 0, err
	}
	n, err := f.ReadAt(p, off)
	if derr := j.digest(i, p[:n], off); derr != nil {
		// The bytes are withheld: a decoder must not act on them (and
		// report their damage as the archive's) before it sees the error.
		return 0, derr
	}
	return n, err
}

// digest feeds the bytes of part i just read at off to its digest when
// they continue what was read in order, and checks the digest once the
// part's last byte is in. j.mu must be held.
func (j *Join) digest(i int, p []byte, off int64) error {
	if j.want[i] < 0 || off > j.next[i] || off+int64(len(p)) <= j.next[i] {
		return nil
	}
	j.sums[i] = crc32.Update(j.sums[i], castagnoli, p[j.next[i]-off:])
	j.next[i] = off + int64(len(p))
	if j.next[i] < j.parts[i].Size || j.sums[i] == uint32(j.want[i]) {
		return nil
	}
	return &joinError{&DigestError{Part: j.parts[i].Name, Want: j.parts[i].CRC32C, Got: fmt.Sprintf("%08x", j.sums[i])}}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CheckDigests completes the digest of every part not read to its end in
// order (a zip's entries are read where the directory says, a decoder
// may stop early) and returns a *DigestError for the first that differs.
// A restore calls it before it puts anything in place. After a failed
// restore, with started, it checks only the parts the restore began to
// read, so that damage found there is reported as the change on disk it
// is rather than as an archive error.
func (j *Join) CheckDigests(started bool) error {
	buf := make([]byte, 1<<20)
	for i, p := range j.parts {
		if started && j.next[i] == 0 {
			continue
		}
		for j.want[i] >= 0 && j.next[i] < p.Size {
			n := min(int64(len(buf)), p.Size-j.next[i])
			if _, err := j.ReadAt(buf[:n], j.starts[i]+j.next[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// Read reads the next bytes of the concatenation.
func (j *Join) Read(p []byte) (int, error) {
	if j.pos >= j.Size() {
		return 0, io.EOF
	}
	// Stay inside one part per call, so a short file is noticed here.
	i := sort.Search(len(j.parts), func(i int) bool { return j.starts[i+1] > j.pos })
	p = p[:min(int64(len(p)), j.starts[i+1]-j.pos)]
	n, err := j.ReadAt(p, j.pos)
	j.pos += int64(n)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// Pos is the offset of the next byte Read returns.
func (j *Join) Pos() int64 { return j.pos }

// Close closes the part files.
func (j *Join) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	var first error
	for i, f := range j.files {
		if f != nil {
			if err := f.Close(); err != nil && first == nil {
				first = err
			}
			j.files[i] = nil
		}
	}
	j.open = 0
	return first
}

// section reads [off, end) of a Join and knows how far it got.
type section struct {
	j        *Join
	off, end int64
}

func (s *section) Read(p []byte) (int, error) {
	if s.off >= s.end {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), s.end-s.off)]
	n, err := s.j.ReadAt(p, s.off)
	s.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// EndsEarlyError says a set of parts ends before its last entry does: an
// entry's header claims more bytes than the set holds, the sign of its
// last part(s) missing (a set cut short that has no LN field or end
// marker to tell).
type EndsEarlyError struct {
	Entry  string // the entry that runs past the end
	Claims int64  // the bytes its header claims
	Left   int64  // the bytes the set still holds
	Last   string // the set's last part
	Parts  int    // how many parts the set has
}

func (e *EndsEarlyError) Error() string {
	what := fmt.Sprintf("the set ends early: entry %q claims %d bytes, only %d are left after it", e.Entry, e.Claims, e.Left)
	return what + fmt.Sprintf("; the set is missing its last part(s), after %s: fetch the whole set (every part after %s), then restore again", e.Last, e.Last)
}

// Unwrap makes an EndsEarlyError parts not ready (exit 3).
func (e *EndsEarlyError) Unwrap() error { return ErrNotReady }
