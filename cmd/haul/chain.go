package main

import (
	"github.com/spf13/pflag"
)

// chainOpts are the flags of an incremental chain (GNU tar
// --listed-incremental backups: a level 0, then increments):
//
//	haul restore DEST0 DEST1 … DESTn --into DIR --incremental
//	haul run SOURCE… DESTn --into DIR --incremental --base DEST0 --base DEST1 …
//
// The sets are applied in that order into one tree, moved into place when
// the last is applied; every set must be fetched and proven first.
type chainOpts struct {
	incremental bool
	bases       []string // the DESTs before the session's own, in order
}

func (c *chainOpts) register(fs *pflag.FlagSet, cmd string) {
	fs.BoolVar(&c.incremental, "incremental", false, "apply the name lists of GNU tar incremental archives (remove what a later level dropped); several DESTs are a chain, level 0 first")
	if cmd == "run" {
		text := "DEST of an earlier set of the incremental chain, already fetched (repeatable, level 0 first)"
		fs.Var(pathList{&c.bases}, "base", text)
	}
}

// check says whether the chain given can run: several sets only with
// --incremental, and one DEST for --assemble.
func (c *chainOpts) check(assemble string) error {
	if len(c.bases) > 0 && !c.incremental {
		return usagef("several DESTs make an incremental chain: add --incremental (level 0 first)")
	}
	if len(c.bases) > 0 && assemble != "" {
		return usagef("--assemble joins the parts of one DEST")
	}
	return nil
}
