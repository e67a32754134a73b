// Package bench measures haul against the tools an operator would
// otherwise reach for (aria2c, rclone, curl, GNU tar) on the same data and
// the same simulated link, in one run, and checks every result byte for
// byte. It is the engine of the haulbench command
// (internal/bench/cmd/haulbench); BENCHMARKS.md records its output.
//
// A scenario runs like this:
//
//  1. Generate a realistic set once (a Bitrix-style multi-volume backup of
//     a generated site for the network scenarios, a split GNU tar.gz with
//     large files for the memory, CPU and restore ones) with SHA256SUMS and
//     a haul piece manifest beside the parts.
//  2. For every round and every tool, start a fresh fault-injecting HTTP
//     server (internal/faultserver) on 127.0.0.1 with the scenario's link:
//     per-connection cap, total cap, resets, bit flips. A fresh server per
//     run gives each tool the same faults and its own byte counter.
//  3. Run the tool as a child process into an empty directory, time it,
//     read its rusage (max RSS, user and system CPU) from wait4, read the
//     bytes the server sent, and compare every part with the source.
//  4. Rounds interleave the tools (haul, aria2c, rclone, curl, haul, …) so
//     a noisy neighbour hurts them alike; tables show medians and the
//     targets are judged on ratios within the same run.
//
// Nothing here runs in the normal test suite except a smoke test of a few
// seconds; the harness is started by hand (see BENCHMARKS.md).
package bench
