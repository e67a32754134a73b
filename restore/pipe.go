package restore

import (
	"context"
	"io"
	"sync"

	"github.com/haul-dev/haul/integrity"
)

const (
	aheadBufs = 4 // decoded chunks in flight between the decoder and the writer
)

// chunkBuf is a slice of the decoded (and decrypted) tar stream.
type chunkBuf struct {
	buf   []byte
	n     int
	inPos int64 // where the decoder stood in the parts after filling it
	err   error // after the bytes, io.EOF or the error that ended the stream
}

// readAhead decodes (and decrypts) in its own goroutine, so that
// decompression runs beside extraction, as `tar -xzf` runs gzip beside tar.
// Read is called from one goroutine; Close stops the decoder.
type readAhead struct {
	ctx    context.Context // the caller's
	cancel context.CancelFunc
	wg     sync.WaitGroup
	full   chan *chunkBuf
	free   chan *chunkBuf

	cur    *chunkBuf
	off    int
	err    error
	inPos  int64 // inPos of the chunk being read
	outPos int64 // decoded bytes handed out
	onIn   func(n int64)
}

// startReadAhead starts decoding dec. prefix holds decoded bytes the
// caller already read (and decrypted); c, when not nil, decrypts every
// byte after them. onIn is told how many bytes of the parts each chunk
// consumed (on the caller's goroutine).
func startReadAhead(ctx context.Context, j *Join, dec decoder, prefix []byte, c *ecbCipher, onIn func(int64)) *readAhead {
	inner, cancel := context.WithCancel(ctx)
	ra := &readAhead{
		ctx:    ctx,
		cancel: cancel,
		full:   make(chan *chunkBuf, aheadBufs),
		free:   make(chan *chunkBuf, aheadBufs),
		onIn:   onIn,
	}
	for range aheadBufs {
		ra.free <- &chunkBuf{buf: make([]byte, bufSize)}
	}
	ra.wg.Add(1)
	go ra.produce(inner, j, dec, prefix, c)
	return ra
}

func (ra *readAhead) produce(ctx context.Context, j *Join, dec decoder, prefix []byte, c *ecbCipher) {
	defer ra.wg.Done()
	defer close(ra.full)
	for {
		var cb *chunkBuf
		select {
		case <-ctx.Done():
			return
		case cb = <-ra.free:
		}
		n := copy(cb.buf, prefix)
		prefix = prefix[n:]
		plain := n
		var err error
		for n < len(cb.buf) && err == nil {
			if ctx.Err() != nil {
				err = ctx.Err()
				break
			}
			var m int
			m, err = dec.Read(cb.buf[n:])
			n += m
		}
		if c != nil {
			enc := cb.buf[plain:n]
			if c.decrypt(enc) != len(enc) && err == io.EOF {
				part, off := j.Locate(dec.inPos())
				err = &integrity.FormatError{Format: "bitrix", Part: part, Offset: off, Err: errEncryptedTail}
			}
		}
		cb.n, cb.inPos, cb.err = n, dec.inPos(), err
		select {
		case <-ctx.Done():
			return
		case ra.full <- cb:
		}
		if err != nil {
			return
		}
	}
}

// Read hands out the decoded stream.
func (ra *readAhead) Read(p []byte) (int, error) {
	for ra.cur == nil || ra.off == ra.cur.n {
		if ra.cur != nil {
			if ra.cur.err != nil {
				ra.err = ra.cur.err
			}
			ra.free <- ra.cur
			ra.cur = nil
		}
		if ra.err != nil {
			return 0, ra.err
		}
		cb, ok := <-ra.full
		if !ok {
			ra.err = ra.ctx.Err()
			if ra.err == nil {
				ra.err = context.Canceled
			}
			return 0, ra.err
		}
		if ra.onIn != nil {
			ra.onIn(cb.inPos - ra.inPos)
		}
		ra.cur, ra.off, ra.inPos = cb, 0, cb.inPos
	}
	n := copy(p, ra.cur.buf[ra.off:ra.cur.n])
	ra.off += n
	ra.outPos += int64(n)
	return n, nil
}

// drain reads to the end of the stream and returns what ended it (nil at a
// clean end). A tar error is checked this way for an underlying decode
// error, which is the real cause and names the damaged part.
func (ra *readAhead) drain() error {
	for {
		if ra.cur != nil {
			ra.off = ra.cur.n
		}
		_, err := ra.Read(nil)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Close stops the decoder goroutine and waits for it.
func (ra *readAhead) Close() {
	ra.cancel()
	for range ra.full { // unblock a pending send
	}
	ra.wg.Wait()
}
