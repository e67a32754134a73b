package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is haul's release; a release build may set it with
// -ldflags "-X main.version=…".
var version = "0.1.0"

// buildInfo is what `haul version` prints: the release, the commit it was
// built from (from the VCS stamp Go puts in every binary built in a
// checkout), the Go version and the platform.
type buildInfo struct {
	Version, Commit, Time, Go, Platform string
	Modified                            bool
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Commit: "unknown", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.time":
				b.Time = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	return b
}

// short is the one-line form for log start lines: "haul 0.1.0 (1a2b3c4d)".
func (b buildInfo) short() string {
	c := b.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	if b.Modified {
		c += "+dirty"
	}
	return fmt.Sprintf("haul %s (%s)", b.Version, c)
}

// String is `haul version`.
func (b buildInfo) String() string {
	commit := b.Commit
	if b.Modified {
		commit += " (modified)"
	}
	if b.Time != "" {
		commit += ", " + b.Time
	}
	return fmt.Sprintf("haul %s\ncommit: %s\ngo: %s\nplatform: %s\n", b.Version, commit, b.Go, b.Platform)
}
