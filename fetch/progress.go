package fetch

// Event kinds reported through Progress.Event; the CLI writes them to the
// journal and shows those that matter.
const (
	EventPartVerified   = "part_verified"
	EventPartUnverified = "part_unverified"
	EventPartBroken     = "part_broken"
	EventPartMissing    = "part_missing"
	EventPartChanged    = "part_changed"
	EventPartRepaired   = "part_repaired"
	EventRetry          = "retry"
	EventWarning        = "warning"
)

// PartProgress is one part as the engine starts on it.
type PartProgress struct {
	Name   string
	Size   int64
	Done   int64 // bytes already on disk and verified or committed
	Status string
}

// Event is something that happened to a part.
type Event struct {
	Kind       string
	Part       string
	Message    string
	VerifiedBy []string
	Bytes      int64
}

// Progress receives what the engine does. Calls come from many goroutines;
// implementations must be safe for concurrent use. A nil Progress is fine.
type Progress interface {
	// Plan is called once the set is known.
	Plan(parts []PartProgress)
	// Pulled counts n bytes received over the link for part (retries
	// included), as they arrive.
	Pulled(part string, n int64)
	// Event reports a part-level event.
	Event(e Event)
}

type nopProgress struct{}

func (nopProgress) Plan([]PartProgress)  {}
func (nopProgress) Pulled(string, int64) {}
func (nopProgress) Event(Event)          {}
