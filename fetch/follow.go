package fetch

import "github.com/haul-dev/haul/fetch/destdir"

// follow reports the durable start of r to its follower, which proves
// big parts while they come (destdir.Followers). A part whose manifest
// pieces prove it as they land needs none, nor does a repair, which
// moves few pieces. Callers hold e.mu.
func (e *engine) follow(r *partRun) {
	if !e.repair && r.pieceRefs == nil {
		r.follow = e.follows.Report(r.follow, e.dir(), r.p, e.st.PieceSize, e.partNames)
	}
}

// partNames lists the set's part names once, not once a part. Callers
// hold e.mu.
func (e *engine) partNames() []string {
	if len(e.names) != len(e.st.Parts) {
		e.names = destdir.PartNames(e.st)
	}
	return e.names
}
