package integrity

import (
	"fmt"
	"sort"
)

// StreamChecker test-decodes a gzip archive split at arbitrary bytes into
// parts (x.tar.gz.000, .001, … or x.tar.gz, x.tar.gz.1, …), which no
// per-part check can do: the parts' bytes are written in set order, each
// part announced with StartPart, and the first decode error is located in
// the part and at the offset inside it where it was noticed. Like the
// Checker's gzip check it decodes in a goroutine of its own; end it with
// Finish or Close.
type StreamChecker struct {
	parts  []streamPart
	n      int64
	gz     *gzipCheck
	done   bool
	result error
}

type streamPart struct {
	name  string
	start int64 // stream offset of the part's first byte
}

// NewStreamChecker returns a StreamChecker for a gzip stream (one or more
// members, as tar.gz is).
func NewStreamChecker() *StreamChecker {
	return &StreamChecker{gz: newGzipCheck()}
}

// StartPart says that the following bytes belong to the part called name.
func (s *StreamChecker) StartPart(name string) {
	s.parts = append(s.parts, streamPart{name: name, start: s.n})
}

// Write feeds the next bytes of the current part. It fails only after
// Finish or Close, or before the first StartPart.
func (s *StreamChecker) Write(p []byte) (int, error) {
	if s.done {
		return 0, ErrCheckerDone
	}
	if len(s.parts) == 0 {
		return 0, fmt.Errorf("stream check: bytes before the first StartPart")
	}
	s.gz.write(p)
	s.n += int64(len(p))
	return len(p), nil
}

// Finish ends the stream and returns nil when the whole split archive
// decodes, or a *FormatError naming the part and offset of the first
// error. Later calls return the same.
func (s *StreamChecker) Finish() error {
	if s.done {
		return s.result
	}
	s.done = true
	s.gz.finish()
	if ge := s.gz.err; ge != nil {
		part, off := s.locate(ge.off)
		s.result = &FormatError{Format: "gzip", Part: part, Offset: off, Err: ge.describe(func(off int64) string {
			part, off := s.locate(off)
			return fmt.Sprintf("in %s at byte %d", part, off)
		})}
	}
	return s.result
}

// Close abandons the check if Finish has not run, stopping the decoder.
// It always returns nil.
func (s *StreamChecker) Close() error {
	if !s.done {
		s.done = true
		s.gz.abort()
		s.result = fmt.Errorf("stream check: %w", ErrCheckerDone)
	}
	return nil
}

// locate maps a stream offset to the part holding it and the offset in
// that part; the end of the stream maps to the end of the last part.
func (s *StreamChecker) locate(off int64) (string, int64) {
	if len(s.parts) == 0 {
		return "", off
	}
	// The last part that starts at or before off; among parts starting at
	// the same offset (empty ones) the last, which holds the bytes.
	i := sort.Search(len(s.parts), func(i int) bool { return s.parts[i].start > off }) - 1
	if i < 0 {
		i = 0
	}
	return s.parts[i].name, off - s.parts[i].start
}
