package destdir

import (
	"slices"
	"testing"
)

// TestRefetchPieces: after a failed proof, the pieces to fetch again are
// those holding the bad pieces the proof located, whatever size those are
// counted in, and all of them when it located none.
func TestRefetchPieces(t *testing.T) {
	const size, piece = 1000, 100 // 10 pieces
	all := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	for _, tc := range []struct {
		name    string
		bad     []int
		badSize int64
		want    []int
	}{
		{"same size", []int{2, 7}, 100, []int{2, 7}},
		{"none located", nil, 0, all},
		{"larger manifest pieces", []int{1}, 250, []int{2, 3, 4}},
		{"smaller manifest pieces", []int{4, 5, 19}, 50, []int{2, 9}},
		{"last short manifest piece", []int{3}, 300, []int{9}},
		{"beyond the part only", []int{10}, 100, all},
		{"unknown size", []int{1}, 0, all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RefetchPieces(size, piece, 10, tc.bad, tc.badSize); !slices.Equal(got, tc.want) {
				t.Fatalf("RefetchPieces(%v of %d) = %v, want %v", tc.bad, tc.badSize, got, tc.want)
			}
		})
	}
}
