// The state log: DEST/.haul/state.log holds what changed since the last
// snapshot (state.json), one framed record per change, so that a commit
// costs one append and one fsync whatever the size of the set.
//
// A frame is a 4-byte little-endian payload length, the CRC-32C of the
// payload (4 bytes, little-endian), and the payload, a JSON Record. The
// first record names the snapshot generation the log applies to; a log
// of another generation is left over from a compaction that a kill cut
// short, and its records are in the snapshot already. Reading stops at
// the first frame that is short or fails its CRC: a torn last append.

package chunk

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Record kinds in state.log.
const (
	recHead     = "head"     // the generation of the snapshot the log extends
	recPiece    = "piece"    // a piece is durable, with its digest
	recProgress = "progress" // how far an unfinished piece durably got
	recPart     = "part"     // a part's whole record (status, refs, pieces)
)

// Record is one change in state.log.
type Record struct {
	Kind     string    `json:"k"`
	Gen      uint64    `json:"gen,omitempty"`
	Part     string    `json:"p,omitempty"`
	Piece    int       `json:"i,omitempty"`
	Sum      []byte    `json:"s,omitempty"`
	Progress *Progress `json:"pr,omitempty"`
	State    *Part     `json:"st,omitempty"`
}

// PieceRecord says that piece i of part is durable with digest sum.
func PieceRecord(part string, i int, sum []byte) Record {
	return Record{Kind: recPiece, Part: part, Piece: i, Sum: sum}
}

// ProgressRecord says how far an unfinished piece of part durably got.
func ProgressRecord(part string, pr Progress) Record {
	return Record{Kind: recProgress, Part: part, Progress: &pr}
}

// PartRecord holds the whole of p as it is now. The caller passes a copy
// that nothing else changes until the record is appended.
func PartRecord(p *Part) Record { return Record{Kind: recPart, Part: p.Name, State: p} }

// maxRecord bounds one record: a part record of a part with a million
// SHA-256 pieces fits, a torn length field reads as the end of the log.
const maxRecord = 64 << 20

var errTorn = errors.New("torn record")

// appendFrame appends the frame of rec to buf.
func appendFrame(buf []byte, rec *Record) ([]byte, error) {
	payload, err := json.Marshal(rec)
	if err != nil {
		return buf, err
	}
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(payload)))
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(payload, castagnoli))
	return append(buf, payload...), nil
}

// readFrame reads one record; io.EOF at a clean end, errTorn at a frame
// that is short or fails its CRC.
func readFrame(r *bufio.Reader, payload *[]byte) (Record, int64, error) {
	var head [8]byte
	n, err := io.ReadFull(r, head[:])
	if n == 0 && errors.Is(err, io.EOF) {
		return Record{}, 0, io.EOF
	}
	if err != nil {
		return Record{}, 0, errTorn
	}
	ln := binary.LittleEndian.Uint32(head[:4])
	if ln > maxRecord {
		return Record{}, 0, errTorn
	}
	if cap(*payload) < int(ln) {
		*payload = make([]byte, ln)
	}
	p := (*payload)[:ln]
	if _, err := io.ReadFull(r, p); err != nil {
		return Record{}, 0, errTorn
	}
	if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(head[4:]) {
		return Record{}, 0, errTorn
	}
	var rec Record
	if err := json.Unmarshal(p, &rec); err != nil {
		return Record{}, 0, errTorn
	}
	return rec, int64(8 + ln), nil
}

// replay applies the records of a log to st when the log belongs to st's
// generation. It returns the length of the log's good prefix (0 for a log
// of another generation), where appends continue.
func replay(r io.Reader, st *State) (good int64, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var payload []byte
	head, n, err := readFrame(br, &payload)
	if err != nil || head.Kind != recHead || head.Gen != st.Gen {
		return 0, nil
	}
	good = n
	byName := make(map[string]*Part, len(st.Parts))
	for _, p := range st.Parts {
		byName[p.Name] = p
	}
	for {
		rec, n, err := readFrame(br, &payload)
		if err != nil {
			return good, nil // the end, or a torn last append
		}
		if err := st.apply(&rec, byName); err != nil {
			return good, err
		}
		good += n
	}
}

// apply makes one change of the log.
func (s *State) apply(rec *Record, byName map[string]*Part) error {
	if rec.Kind == recPart {
		if rec.State == nil || rec.State.Name != rec.Part {
			return fmt.Errorf("state log: part record for %q without the part", rec.Part)
		}
		if old := byName[rec.Part]; old != nil {
			*old = *rec.State
		} else {
			s.Parts = append(s.Parts, rec.State)
			byName[rec.Part] = rec.State
		}
		return nil
	}
	p := byName[rec.Part]
	if p == nil {
		return fmt.Errorf("state log: %s record for unknown part %q", rec.Kind, rec.Part)
	}
	switch rec.Kind {
	case recPiece:
		p.SetPiece(rec.Piece, Pieces(p.Size, s.PieceSize), rec.Sum)
		if p.Status == Pending {
			p.Status = Partial
		}
	case recProgress:
		if rec.Progress == nil {
			return fmt.Errorf("state log: progress record of %q without progress", rec.Part)
		}
		if !p.Done.Has(rec.Progress.Piece) {
			p.SetProgress(*rec.Progress)
		}
	default:
		return fmt.Errorf("state log: unknown record kind %q", rec.Kind)
	}
	return nil
}
