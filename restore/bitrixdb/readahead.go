package bitrixdb

import "bytes"

// readAhead runs the scanner one statement ahead of the import in a
// goroutine of its own, so that the dump is read and lexed while the
// server runs the statement before (the mariadb client reads and sends
// in turn; lexing took 0.3 s of a 5 s import of the benchmark's 72 MB
// dump). Statements come out in order, each a copy, since the scanner
// reuses its buffer: besides the one running, at most two are held, one
// waiting and one being read.
type readAhead struct {
	ch   chan scanned
	stop chan struct{}
	done chan struct{}
}

type scanned struct {
	s   statement
	err error
}

func startReadAhead(sc *scanner) *readAhead {
	ra := &readAhead{ch: make(chan scanned, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(ra.done)
		for {
			s, err := sc.next()
			s.text = bytes.Clone(s.text)
			select {
			case ra.ch <- scanned{s, err}:
			case <-ra.stop:
				return
			}
			if err != nil { // io.EOF included: the last thing sent
				return
			}
		}
	}()
	return ra
}

// next is the scanner's next: the next statement, or the error (io.EOF
// at the end) after which it must not be called again.
func (ra *readAhead) next() (statement, error) {
	r := <-ra.ch
	return r.s, r.err
}

// close stops the goroutine and waits for it to end, so that the reader
// under the scanner may be closed after it.
func (ra *readAhead) close() {
	close(ra.stop)
	<-ra.done
}
