package multi

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/fetch/source/open"
	"github.com/haul-dev/haul/integrity"
	"github.com/haul-dev/haul/internal/redact"
)

// Mirror is one --mirror URL, or the URLs of a --mirror-list file.
type Mirror struct {
	// URL is a SOURCE (any kind); an http(s) URL ending in "/" is a base
	// URL that serves each part at base + name.
	URL string
	// URLs are one URL per part (--mirror-list); URL is then "".
	URLs []string
	// Conns is the most connections to it; -1 means Options.Conns, 0 that
	// it only heals (serves bytes that failed proof from another copy).
	Conns int
}

// jSuffix is the "#j=N" a --mirror URL may end with.
var jSuffix = regexp.MustCompile(`#j=([0-9]+)$`)

// ParseMirror reads a --mirror value: a URL, optionally ending in #j=N.
func ParseMirror(s string) (Mirror, error) {
	m := Mirror{URL: s, Conns: -1}
	if sub := jSuffix.FindStringSubmatch(s); sub != nil {
		n, err := strconv.Atoi(sub[1])
		if err != nil || n > 256 {
			return m, fmt.Errorf("mirror %s: #j=%s: want 0 to 256 connections", redact.URL(s), sub[1])
		}
		m.URL, m.Conns = strings.TrimSuffix(s, sub[0]), n
	}
	if m.URL == "" {
		return m, fmt.Errorf("empty --mirror: %w", source.ErrBadSource)
	}
	return m, nil
}

// Options configures Open.
type Options struct {
	Open source.OpenOptions
	// Filter selects the set in the primary's listing (with the prefix the
	// SOURCE named); only parts are checked and routed.
	Filter source.Filter
	// Conns is the connections per copy (-j).
	Conns int
	// Timeout is the stall timeout (--timeout); a read waits for a busy
	// copy at most a third of it.
	Timeout time.Duration
	// Warn reports a mirror left out, in whole or for one part (part "").
	Warn func(part, msg string)
	// Event reports which copy heals bytes that failed proof.
	Event func(part, msg string)
}

// Source is the primary and its mirrors as one source.
type Source struct {
	o       Options
	members []*member // members[0] is the primary
	// ctx lives until Close: the hash commands that vet copies run in it.
	ctx  context.Context
	stop context.CancelFunc

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when a connection frees
	queue   []*waiter     // the reads waiting for a connection, oldest first
	parts   map[string]*partState
	set     map[string]source.Object // the parts of the set, by name (List)
	warned  map[string]bool
}

var (
	_ source.Source       = (*Source)(nil)
	_ source.Healer       = (*Source)(nil)
	_ source.Pooler       = (*Source)(nil)
	_ source.Accounter    = (*Source)(nil)
	_ source.Checksummer  = (*Source)(nil)
	_ source.Expecter     = (*Source)(nil)
	_ source.NoSplitter   = (*Source)(nil)
	_ source.RemoteHasher = hashing{}
)

// Open puts the opened primary and the mirrors together. A mirror that
// cannot be opened is reported through o.Warn and left out. The result is
// a source.RemoteHasher when a copy can hash pieces where it lives.
func Open(ctx context.Context, primary source.Source, mirrors []Mirror, o Options) source.Source {
	if o.Conns <= 0 {
		o.Conns = 8
	}
	if o.Warn == nil {
		o.Warn = func(string, string) {}
	}
	if o.Event == nil {
		o.Event = func(string, string) {}
	}
	s := &Source{o: o, changed: make(chan struct{}), parts: map[string]*partState{}, warned: map[string]bool{}}
	s.ctx, s.stop = context.WithCancel(ctx)
	s.members = append(s.members, &member{src: primary, name: primary.String(), conns: o.Conns, primary: true, hashSem: make(chan struct{}, hashesAtOnce)})
	for _, m := range mirrors {
		mm := &member{conns: m.Conns, urls: m.URLs, hashSem: make(chan struct{}, hashesAtOnce)}
		if mm.conns < 0 {
			mm.conns = o.Conns
		}
		oo := o.Open
		oo.SSH.Connections = max(mm.conns, 1)
		oo.ProbeParts = false
		mm.oo = oo
		switch {
		case len(m.URLs) > 0:
			mm.name = redact.URL(m.URLs[0]) + fmt.Sprintf(" (+%d URLs)", len(m.URLs)-1)
		case isBaseURL(m.URL):
			mm.base, mm.name = m.URL, redact.URL(m.URL)
		default:
			mm.name = redact.URL(m.URL)
			op, err := open.Open(ctx, m.URL, oo)
			if err != nil {
				o.Warn("", fmt.Sprintf("mirror %s cannot be opened (%v); going on without it", mm.name, err))
				continue
			}
			mm.src, mm.prefix = op.Source, op.Prefix
		}
		s.members = append(s.members, mm)
	}
	for _, m := range s.members {
		if _, ok := m.src.(source.RemoteHasher); ok {
			return hashing{s}
		}
	}
	return s
}

// hashesAtOnce is the most hash commands (vet.go) run on one copy at once.
const hashesAtOnce = 2

func isBaseURL(u string) bool {
	l := strings.ToLower(u)
	return (strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")) && strings.HasSuffix(u, "/")
}

// String names the primary, as a run names its SOURCE.
func (s *Source) String() string { return s.members[0].name }

// Close closes every copy and ends the hash commands still running.
func (s *Source) Close() error {
	s.stop()
	var first error
	for _, m := range s.members {
		if m.src != nil {
			if err := m.src.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// List returns the primary's listing, and checks each mirror's copy of
// every part of the set against it.
func (s *Source) List(ctx context.Context) ([]source.Object, error) {
	objs, err := s.members[0].src.List(ctx)
	if err != nil {
		return nil, err
	}
	set := source.SelectSet(objs, s.o.Filter)
	byName := make(map[string]source.Object, len(set.Parts))
	for _, p := range set.Parts {
		byName[p.Name] = p
	}
	for _, m := range s.members[1:] {
		have, err := m.list(ctx, set.Parts)
		if err != nil {
			s.warnOnce(m.name, "", fmt.Sprintf("mirror %s cannot be listed (%v); going on without it", m.name, err))
			have = nil
		}
		use := map[string]source.Object{}
		var lacks []string
		for _, p := range set.Parts {
			mo, ok := have[p.Name]
			if !ok {
				lacks = append(lacks, p.Name)
				continue
			}
			if why := disagree(p, mo); why != "" {
				s.warnOnce(m.name+"\x00"+p.Name, p.Name, fmt.Sprintf("mirror %s disagrees on part %s (%s); not using it for that part", m.name, p.Name, why))
				continue
			}
			use[p.Name] = mo
		}
		if err == nil && len(lacks) > 0 {
			s.warnOnce(m.name+"\x00lacks", "", fmt.Sprintf("mirror %s lacks %d of the %d parts (%s); they come from the other copies", m.name, len(lacks), len(set.Parts), strings.Join(firstFew(lacks), ", ")))
		}
		s.mu.Lock()
		m.objs = use
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.set = byName
	s.mu.Unlock()
	return objs, nil
}

func firstFew(names []string) []string {
	if len(names) > 3 {
		return append(slices.Clone(names[:3]), "…")
	}
	return names
}

func (s *Source) warnOnce(key, part, msg string) {
	s.mu.Lock()
	seen := s.warned[key]
	s.warned[key] = true
	s.mu.Unlock()
	if !seen {
		s.o.Warn(part, msg)
	}
}

// disagree says why a mirror's copy of part p is not the primary's, ""
// when nothing they state differs: the size, an MD5 ETag, a whole-part
// digest both state.
func disagree(p, mo source.Object) string {
	if mo.Size != p.Size {
		return fmt.Sprintf("%d bytes there, %d at the primary", mo.Size, p.Size)
	}
	if md5ETag(p.ETag) && md5ETag(mo.ETag) && !strings.EqualFold(p.ETag, mo.ETag) {
		return fmt.Sprintf("ETag %s there, %s at the primary", mo.ETag, p.ETag)
	}
	for _, a := range p.Refs {
		for _, b := range mo.Refs {
			if a.Algo == b.Algo && a.PieceSize == 0 && b.PieceSize == 0 && len(a.PartSizes) == 0 && len(b.PartSizes) == 0 && !strings.EqualFold(a.Sum, b.Sum) {
				return fmt.Sprintf("%s %s there, %s at the primary", a.Algo, b.Sum, a.Sum)
			}
		}
	}
	return ""
}

// md5ETag is an ETag that is the MD5 of the object (a single-part S3
// upload, many HTTP servers): 32 hex digits.
func md5ETag(e string) bool {
	if len(e) != 32 {
		return false
	}
	for _, c := range e {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// References are the primary's own (Checksummer); a mirror proves nothing.
func (s *Source) References(ctx context.Context, obj source.Object) ([]integrity.Reference, error) {
	if cs, ok := s.members[0].src.(source.Checksummer); ok {
		return cs.References(ctx, obj)
	}
	return nil, nil
}

// Expected are the primary's (Expecter).
func (s *Source) Expected() []string {
	if ex, ok := s.members[0].src.(source.Expecter); ok {
		return ex.Expected()
	}
	return nil
}

// NoSplit is false: whether a read may be split depends on the copy it
// goes to, which each read says (read.NoSplit).
func (s *Source) NoSplit() bool { return false }

// Connections is every copy's connections.
func (s *Source) Connections() int {
	n := 0
	for _, m := range s.members {
		n += m.conns
	}
	return max(n, 1)
}

// Accounts are the bytes of parts each copy delivered, primary first.
func (s *Source) Accounts() []source.Account {
	out := make([]source.Account, len(s.members))
	for i, m := range s.members {
		out[i] = source.Account{Source: m.name, Bytes: m.bytes.Load()}
	}
	return out
}

// hashing is a Source one of whose copies hashes pieces where they live.
type hashing struct{ *Source }

// HashPieces asks the first copy that can hash pieces and holds the part.
func (h hashing) HashPieces(ctx context.Context, obj source.Object, pieceSize int64, pieces []int) (map[int][]byte, error) {
	var last error = fmt.Errorf("no copy of %s can hash pieces", obj.Name)
	for _, m := range h.members {
		rh, ok := m.src.(source.RemoteHasher)
		if !ok {
			continue
		}
		mo, ok := h.objectAt(m, obj)
		if !ok {
			continue
		}
		out, err := rh.HashPieces(ctx, mo, pieceSize, pieces)
		if err == nil {
			return out, nil
		}
		last = fmt.Errorf("%s: %w", m.name, err)
	}
	return nil, last
}
