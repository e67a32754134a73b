package integrity

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// ManifestVersion is the haul manifest format version this package writes
// and the only one it reads. See the package documentation for the format.
const ManifestVersion = 1

// DefaultPieceSize is the piece size of a manifest when none is chosen.
const DefaultPieceSize int64 = 8 << 20

// maxManifestLine bounds one manifest line: about a million piece hashes.
const maxManifestLine = 64 << 20

// ManifestHeader is the first line of a haul manifest.
type ManifestHeader struct {
	Version   int       `json:"haul_manifest"`
	PieceSize int64     `json:"piece_size"`
	Created   time.Time `json:"created"`
}

// ManifestPart is one part line of a haul manifest.
type ManifestPart struct {
	Name   string   `json:"name"`
	Size   int64    `json:"size"`
	SHA256 string   `json:"sha256"`
	Pieces []string `json:"pieces"`
	// PieceSize is the manifest's piece size (from its header).
	PieceSize int64 `json:"-"`
}

// manifestEnd is the last line of a haul manifest.
type manifestEnd struct {
	End   bool `json:"end"`
	Parts int  `json:"parts"`
}

// manifestLine is any line of a manifest, decoded before its kind is known.
type manifestLine struct {
	Version   *int      `json:"haul_manifest"`
	PieceSize int64     `json:"piece_size"`
	Created   time.Time `json:"created"`
	Name      *string   `json:"name"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	Pieces    []string  `json:"pieces"`
	End       bool      `json:"end"`
	Parts     int       `json:"parts"`
}

// References returns what the manifest states about the part: one SHA-256
// reference with its piece hashes, labelled "manifest".
func (p ManifestPart) References() []Reference {
	return []Reference{{
		Algo:      SHA256,
		Sum:       p.SHA256,
		Origin:    OriginManifest,
		PieceSize: p.PieceSize,
		Pieces:    append([]string(nil), p.Pieces...),
	}}
}

// validate checks a part line against the manifest's piece size and
// lowercases its hashes.
func (p *ManifestPart) validate(pieceSize int64) error {
	switch {
	case p.Name == "" || p.Name == "." || p.Name == "..":
		return fmt.Errorf("part name %q is not a file name", p.Name)
	case strings.ContainsAny(p.Name, "/\x00"):
		return fmt.Errorf("part name %q must be a base name", p.Name)
	case p.Size < 0:
		return fmt.Errorf("part %s: negative size %d", p.Name, p.Size)
	case !isHexLen(p.SHA256, 64):
		return fmt.Errorf("part %s: sha256 %q is not 64 hex digits", p.Name, p.SHA256)
	}
	want := int((p.Size + pieceSize - 1) / pieceSize)
	if len(p.Pieces) != want {
		return fmt.Errorf("part %s: %d bytes in pieces of %d make %d pieces, the line lists %d", p.Name, p.Size, pieceSize, want, len(p.Pieces))
	}
	p.SHA256 = strings.ToLower(p.SHA256)
	for i, h := range p.Pieces {
		if !isHexLen(h, 64) {
			return fmt.Errorf("part %s: piece %d hash %q is not 64 hex digits", p.Name, i, h)
		}
		p.Pieces[i] = strings.ToLower(h)
	}
	p.PieceSize = pieceSize
	return nil
}

// BuildManifestPart reads a part to its end once and returns its manifest
// line: size, whole SHA-256 and the SHA-256 of each pieceSize-long piece.
func BuildManifestPart(name string, r io.Reader, pieceSize int64) (ManifestPart, error) {
	if pieceSize <= 0 {
		return ManifestPart{}, fmt.Errorf("manifest %s: %w", name, errPieceSize(pieceSize))
	}
	whole := sha256.New()
	ph := newPieceHasher(pieceSize)
	n, err := io.CopyBuffer(io.MultiWriter(whole, ph), r, make([]byte, readBufferSize))
	if err != nil {
		return ManifestPart{}, fmt.Errorf("manifest %s: %w", name, err)
	}
	p := ManifestPart{Name: name, Size: n, SHA256: hex.EncodeToString(whole.Sum(nil)), Pieces: ph.Sums()}
	if err := p.validate(pieceSize); err != nil {
		return ManifestPart{}, fmt.Errorf("manifest: %w", err)
	}
	return p, nil
}

// ManifestWriter writes a haul manifest line by line, so that a manifest
// of a large set streams out as its parts are hashed.
type ManifestWriter struct {
	w      io.Writer
	h      ManifestHeader
	names  map[string]bool
	n      int
	closed bool
}

// NewManifestWriter writes the header line to w. A zero Version becomes
// ManifestVersion and a zero Created the current time.
func NewManifestWriter(w io.Writer, h ManifestHeader) (*ManifestWriter, error) {
	if h.Version == 0 {
		h.Version = ManifestVersion
	}
	if h.Version != ManifestVersion {
		return nil, fmt.Errorf("manifest: %w %d (this haul writes %d)", ErrManifestVersion, h.Version, ManifestVersion)
	}
	if h.PieceSize <= 0 {
		return nil, fmt.Errorf("manifest: %w", errPieceSize(h.PieceSize))
	}
	if h.Created.IsZero() {
		h.Created = time.Now()
	}
	h.Created = h.Created.UTC().Truncate(time.Second)
	mw := &ManifestWriter{w: w, h: h, names: map[string]bool{}}
	if err := mw.line(h); err != nil {
		return nil, err
	}
	return mw, nil
}

// Add writes one part line. p.PieceSize must be 0 or the header's.
func (mw *ManifestWriter) Add(p ManifestPart) error {
	if mw.closed {
		return errors.New("manifest: add after close")
	}
	if p.PieceSize != 0 && p.PieceSize != mw.h.PieceSize {
		return fmt.Errorf("manifest: part %s hashed in pieces of %d, the manifest's are %d", p.Name, p.PieceSize, mw.h.PieceSize)
	}
	p.Pieces = append([]string{}, p.Pieces...) // never null in the file
	if err := p.validate(mw.h.PieceSize); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if mw.names[p.Name] {
		return fmt.Errorf("manifest: part %s added twice", p.Name)
	}
	mw.names[p.Name] = true
	mw.n++
	return mw.line(p)
}

// Close writes the end line, which tells readers the manifest is whole.
// It does not close the underlying writer.
func (mw *ManifestWriter) Close() error {
	if mw.closed {
		return nil
	}
	mw.closed = true
	return mw.line(manifestEnd{End: true, Parts: mw.n})
}

func (mw *ManifestWriter) line(v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // Encode ends the line with '\n'
		return fmt.Errorf("manifest: %w", err)
	}
	if _, err := mw.w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	return nil
}

// WriteManifest writes a whole manifest: header, parts, end line.
func WriteManifest(w io.Writer, h ManifestHeader, parts []ManifestPart) error {
	mw, err := NewManifestWriter(w, h)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if err := mw.Add(p); err != nil {
			return err
		}
	}
	return mw.Close()
}

// ManifestReader reads a haul manifest line by line. Errors are
// *SumFileError values naming the file and line.
type ManifestReader struct {
	file  string
	br    *bufio.Reader
	line  int
	h     ManifestHeader
	names map[string]bool
	n     int
	ended bool
}

// NewManifestReader reads the header line from r. fileName names the
// manifest in errors (only its base name is used).
func NewManifestReader(fileName string, r io.Reader) (*ManifestReader, error) {
	mr := &ManifestReader{file: originName(fileName), br: bufio.NewReaderSize(r, 64<<10), names: map[string]bool{}}
	l, err := mr.next()
	if err == io.EOF {
		return nil, mr.errorf(0, "empty file, not a haul manifest")
	}
	if err != nil {
		return nil, err
	}
	if l.Version == nil {
		return nil, mr.errorf(mr.line, "no haul_manifest header, not a haul manifest")
	}
	if *l.Version != ManifestVersion {
		return nil, &SumFileError{File: mr.file, Line: mr.line,
			Err: fmt.Errorf("%w %d (this haul reads version %d)", ErrManifestVersion, *l.Version, ManifestVersion)}
	}
	if l.PieceSize <= 0 {
		return nil, mr.errorf(mr.line, "piece_size %d: must be positive", l.PieceSize)
	}
	mr.h = ManifestHeader{Version: *l.Version, PieceSize: l.PieceSize, Created: l.Created}
	return mr, nil
}

// Header returns the manifest's header line.
func (mr *ManifestReader) Header() ManifestHeader { return mr.h }

// Next returns the next part, or io.EOF after the end line. A manifest
// that stops before its end line is an error (ErrManifestTruncated).
func (mr *ManifestReader) Next() (ManifestPart, error) {
	for {
		l, err := mr.next()
		if err == io.EOF {
			if !mr.ended {
				return ManifestPart{}, &SumFileError{File: mr.file, Line: 0, Err: ErrManifestTruncated}
			}
			return ManifestPart{}, io.EOF
		}
		if err != nil {
			return ManifestPart{}, err
		}
		switch {
		case mr.ended:
			return ManifestPart{}, mr.errorf(mr.line, "a line after the end line")
		case l.Version != nil:
			return ManifestPart{}, mr.errorf(mr.line, "a second header line")
		case l.End:
			if l.Parts != mr.n {
				return ManifestPart{}, mr.errorf(mr.line, "the end line counts %d parts, the manifest has %d", l.Parts, mr.n)
			}
			mr.ended = true
		case l.Name != nil:
			p := ManifestPart{Name: *l.Name, Size: l.Size, SHA256: l.SHA256, Pieces: l.Pieces}
			if err := p.validate(mr.h.PieceSize); err != nil {
				return ManifestPart{}, &SumFileError{File: mr.file, Line: mr.line, Err: err}
			}
			if mr.names[p.Name] {
				return ManifestPart{}, mr.errorf(mr.line, "part %s is listed twice", p.Name)
			}
			mr.names[p.Name] = true
			mr.n++
			return p, nil
		default:
			return ManifestPart{}, mr.errorf(mr.line, "neither a part line nor the end line")
		}
	}
}

// next decodes the next non-blank line.
func (mr *ManifestReader) next() (manifestLine, error) {
	for {
		raw, err := mr.readLine()
		if err != nil {
			return manifestLine{}, err
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		var l manifestLine
		if err := json.Unmarshal(raw, &l); err != nil {
			return manifestLine{}, &SumFileError{File: mr.file, Line: mr.line, Err: err}
		}
		return l, nil
	}
}

// readLine returns the next line without its end, counting lines.
func (mr *ManifestReader) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, err := mr.br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxManifestLine {
			return nil, mr.errorf(mr.line+1, "line longer than %d bytes", maxManifestLine)
		}
		switch {
		case err == nil:
			mr.line++
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(line) > 0:
			mr.line++
			return line, nil
		case err == io.EOF:
			return nil, io.EOF
		default:
			return nil, fmt.Errorf("read %s: %w", mr.file, err)
		}
	}
}

func (mr *ManifestReader) errorf(line int, format string, args ...any) error {
	return &SumFileError{File: mr.file, Line: line, Err: fmt.Errorf(format, args...)}
}

// ReadManifest reads a whole manifest.
func ReadManifest(fileName string, r io.Reader) (ManifestHeader, []ManifestPart, error) {
	mr, err := NewManifestReader(fileName, r)
	if err != nil {
		return ManifestHeader{}, nil, err
	}
	var parts []ManifestPart
	for {
		p, err := mr.Next()
		if err == io.EOF {
			return mr.Header(), parts, nil
		}
		if err != nil {
			return ManifestHeader{}, nil, err
		}
		parts = append(parts, p)
	}
}

// ManifestReferences reads a manifest and returns each part's references,
// keyed by part name.
func ManifestReferences(fileName string, r io.Reader) (map[string][]Reference, error) {
	_, parts, err := ReadManifest(fileName, r)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]Reference, len(parts))
	for _, p := range parts {
		out[p.Name] = p.References()
	}
	return out, nil
}
