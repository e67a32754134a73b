package chunk

import (
	"encoding/json"
	"time"

	"github.com/haul-dev/haul/integrity"
)

// partJSON is a Part as state.json and state.log hold it: the fields of
// every version of the file, whatever Part keeps out of line in memory.
type partJSON struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	// Version is the source's version token (source.Object.Version) the
	// bytes on disk belong to.
	Version    string                `json:"version"`
	ETag       string                `json:"etag,omitempty"`
	ModTime    time.Time             `json:"mtime,omitempty"`
	URL        string                `json:"url,omitempty"`
	Encoding   string                `json:"encoding,omitempty"`
	Refs       []integrity.Reference `json:"refs,omitempty"`
	Done       Bitmap                `json:"done"`
	Hashes     Digests               `json:"hashes,omitzero"`
	Partial    []Progress            `json:"partial,omitempty"`
	PieceHash  string                `json:"piece_hash,omitempty"`
	Status     string                `json:"status"`
	VerifiedBy []string              `json:"verified_by,omitempty"`
	Error      string                `json:"error,omitempty"`
	Attempts   int                   `json:"attempts,omitempty"`
	Dev        uint64                `json:"dev,omitempty"`
	Ino        uint64                `json:"ino,omitempty"`
	MtimeNS    int64                 `json:"mtime_ns,omitempty"`
	DiskSize   int64                 `json:"disk_size,omitempty"`
	CRC32C     string                `json:"crc32c,omitempty"`
	SetCRC     string                `json:"set_crc,omitempty"`
	Found      bool                  `json:"found,omitempty"`
}

// MarshalJSON writes the part as state.json always had it.
func (p *Part) MarshalJSON() ([]byte, error) {
	return json.Marshal(&partJSON{Name: p.Name, Size: p.Size, Version: p.Version(), ETag: p.ETag, ModTime: p.ModTime(),
		URL: p.URL(), Encoding: p.Encoding(), Refs: p.Refs(), Done: p.Done, Hashes: p.Hashes, Partial: p.Partial(),
		PieceHash: p.PieceHash, Status: p.Status, VerifiedBy: p.VerifiedBy, Error: p.Error, Attempts: p.Attempts(),
		Dev: p.Dev, Ino: p.Ino, MtimeNS: p.MtimeNS, DiskSize: p.DiskSize, CRC32C: p.CRC32C, SetCRC: p.SetCRC(), Found: p.Found()})
}

// UnmarshalJSON reads what MarshalJSON writes (and every earlier
// state.json: the fields are the same).
func (p *Part) UnmarshalJSON(data []byte) error {
	var w partJSON
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*p = Part{Name: w.Name, Size: w.Size, ETag: w.ETag, Done: w.Done, Hashes: w.Hashes,
		PieceHash: w.PieceHash, Status: w.Status, VerifiedBy: w.VerifiedBy, Error: w.Error,
		Dev: w.Dev, Ino: w.Ino, MtimeNS: w.MtimeNS, DiskSize: w.DiskSize, CRC32C: w.CRC32C}
	p.SetModTime(w.ModTime)
	p.SetVersion(w.Version)
	p.SetRefs(w.Refs)
	p.SetAddress(w.URL, w.Encoding)
	p.SetAttempts(w.Attempts)
	p.SetSetCRC(w.SetCRC)
	p.SetFound(w.Found)
	for _, pr := range w.Partial {
		p.SetProgress(pr)
	}
	return nil
}
