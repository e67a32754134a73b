package chunk

import (
	"encoding/base64"
	"encoding/json"
)

// Bitmap is a set of piece indexes. It marshals to base64 so state.json
// stays small for sets of many thousand pieces.
type Bitmap []byte

// Has reports whether piece i is in the set.
func (b Bitmap) Has(i int) bool {
	return i >= 0 && i/8 < len(b) && b[i/8]&(1<<(i%8)) != 0
}

// Set adds piece i.
func (b *Bitmap) Set(i int) {
	for i/8 >= len(*b) {
		*b = append(*b, 0)
	}
	(*b)[i/8] |= 1 << (i % 8)
}

// Clear removes piece i.
func (b *Bitmap) Clear(i int) {
	if i/8 < len(*b) {
		(*b)[i/8] &^= 1 << (i % 8)
	}
}

// Count returns how many of the first n pieces are set.
func (b Bitmap) Count(n int) int {
	c := 0
	for i := 0; i < n; i++ {
		if b.Has(i) {
			c++
		}
	}
	return c
}

// MarshalJSON encodes the bitmap as a base64 string.
func (b Bitmap) MarshalJSON() ([]byte, error) {
	return json.Marshal(base64.StdEncoding.EncodeToString(b))
}

// UnmarshalJSON decodes a base64 string.
func (b *Bitmap) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	v, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}
