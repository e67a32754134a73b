package integrity

import "slices"

// Strongest drops the references weaker than a SHA-256 of the whole part
// (MD5 of an ETag, CRCs, SHA-1) when one proves the part in the same pass
// — a whole-part SHA-256 reference, or a manifest already proven by its
// SHA-256 pieces (manifestProven): computing them would only list them in
// verified_by, at the cost of another digest over every byte. A weaker
// reference that is the only one is kept. `haul verify` checks them all.
func Strongest(refs []Reference, manifestProven bool) []Reference {
	if !manifestProven && !NeedsWholeSHA256(refs) {
		return refs
	}
	return slices.DeleteFunc(slices.Clone(refs), func(r Reference) bool {
		return r.Algo != SHA256 && r.Algo != SHA512
	})
}
