// Mirrors: the engine's few hooks into fetch/multi, which holds the
// routing and healing across the primary SOURCE and its mirrors.

package fetch

import (
	"context"
	"fmt"
	"slices"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/multi"
	"github.com/haul-dev/haul/fetch/source"
	"github.com/haul-dev/haul/internal/units"
)

// withMirrors puts the opened primary and opts.Mirrors together (package
// multi); the primary alone when there is no mirror.
func (o *Options) withMirrors(ctx context.Context, op *source.Opened) source.Source {
	if len(o.Mirrors) == 0 {
		return op.Source
	}
	f := o.Filter
	if op.Prefix != "" {
		f.Prefix = op.Prefix
	}
	say := func(kind string) func(part, msg string) {
		return func(part, msg string) { o.Progress.Event(Event{Kind: kind, Part: part, Message: msg}) }
	}
	src := multi.Open(ctx, op.Source, o.Mirrors, multi.Options{
		Open: o.Open, Filter: f, Conns: o.Connections, Timeout: o.Timeout,
		Warn: say(chunk.EventWarning), Event: say(chunk.EventRetry),
	})
	w, ok := o.Progress.(SourceWatcher)
	if a, isAcc := src.(source.Accounter); ok && isAcc {
		w.WatchSources(a)
	}
	return src
}

// workers is how many transfers the engine runs: -j, or -j per copy.
func (e *engine) workers() int {
	if p, ok := e.src.(source.Pooler); ok {
		return p.Connections()
	}
	return e.opts.Connections
}

// copies is how many copies of a part the source has: a part gets
// --retries tries per copy.
func (e *engine) copies(part string) int { return max(1, source.HealerOf(e.src).Copies(part)) }

// blame tells a source with copies that bytes [off, off+n) of part p
// failed proof, so that they are read from another copy next (one whose
// hash matches p's references, where a copy can say).
func (e *engine) blame(p *chunk.Part, off, n int64, err error) {
	source.HealerOf(e.src).Blame(p.Name, off, n, err.Error(), p.Refs())
}

// blamePieces blames the runs of consecutive pieces in bad (sorted).
func (e *engine) blamePieces(p *chunk.Part, bad []int, err error) {
	for k := 0; k < len(bad); {
		j := k
		for j+1 < len(bad) && bad[j+1] == bad[j]+1 {
			j++
		}
		off, _ := chunk.PieceRange(p.Size, e.st.PieceSize, bad[k])
		last, n := chunk.PieceRange(p.Size, e.st.PieceSize, bad[j])
		e.blame(p, off, last+n-off, err)
		k = j + 1
	}
}

// healed names the copies that supplied bytes of part that failed proof
// before, now that it is proven (source.Healer).
func (e *engine) healed(part string) (from, note string) { return source.HealerOf(e.src).Healed(part) }

// explain adds to a broken part's error what each copy gave.
func (e *engine) explain(part, msg string) string {
	if x := source.HealerOf(e.src).Explain(part); x != "" {
		return msg + "; " + x
	}
	return msg
}

// accounts are the bytes of parts each source delivered in this call:
// those of the sources closed before (a relist opens them again) and of
// the current one. They sum to Summary.Pulled.
func (e *engine) accounts() []source.Account {
	out := slices.Clone(e.acc)
	if e.src == nil {
		return out
	}
	if a, ok := e.src.(source.Accounter); ok {
		return source.AddAccounts(out, a.Accounts()...)
	}
	return source.AddAccounts(out, source.Account{Source: e.src.String(), Bytes: e.pulled.Load() - e.accBase})
}

// closeSource closes the source, keeping its accounts.
func (e *engine) closeSource() {
	if e.src == nil {
		return
	}
	e.acc = e.accounts()
	e.accBase = e.pulled.Load()
	e.src.Close()
	e.src = nil
}

// endSources closes the source and reports what each source delivered.
func (e *engine) endSources() {
	e.closeSource()
	for _, a := range e.acc {
		if a.Bytes > 0 || len(e.acc) > 1 {
			e.opts.Progress.Event(Event{Kind: chunk.EventSourceBytes, From: a.Source, Bytes: a.Bytes,
				Message: fmt.Sprintf("%s delivered %s", a.Source, units.FormatBytes(a.Bytes))})
		}
	}
}
