package testenv

import "github.com/haul-dev/haul/internal/faultserver"

// The slow, faulty HTTP server lives in internal/faultserver, which does
// not import package testing (haul demo links it). Tests reach it here by
// its old names.
type (
	// FaultServer is faultserver.Server.
	FaultServer = faultserver.Server
	// FaultOption is faultserver.Option.
	FaultOption = faultserver.Option
	// FaultCounts is faultserver.Counts.
	FaultCounts = faultserver.Counts
	// When is faultserver.When.
	When = faultserver.When
	// Flip is faultserver.Flip.
	Flip = faultserver.Flip
)

// The fault options, as in faultserver.
var (
	NewFaultServer    = faultserver.New
	ConnRate          = faultserver.ConnRate
	TotalRate         = faultserver.TotalRate
	Seed              = faultserver.Seed
	FailWith          = faultserver.FailWith
	IgnoreRange       = faultserver.IgnoreRange
	ShiftContentRange = faultserver.ShiftContentRange
	ShiftBody         = faultserver.ShiftBody
	GzipBody          = faultserver.GzipBody
	ShortBody         = faultserver.ShortBody
	ResetAfter        = faultserver.ResetAfter
	StallAfter        = faultserver.StallAfter
	FlipBits          = faultserver.FlipBits
	FlipRandom        = faultserver.FlipRandom
)
