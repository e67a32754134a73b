package source

import "io"

// ExactReader returns body limited to exactly n bytes: an early EOF is
// io.ErrUnexpectedEOF, and nothing past n is read. Closing it closes body.
func ExactReader(body io.ReadCloser, n int64) io.ReadCloser {
	return &exactReader{r: body, c: body, left: n}
}

// exactReader yields exactly left bytes: an early EOF is
// io.ErrUnexpectedEOF, and anything past left is not read.
type exactReader struct {
	r    io.Reader
	c    io.Closer
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if e.left == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

func (e *exactReader) Close() error { return e.c.Close() }
