package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Job is one fetch of a set from a server into an empty directory.
type Job struct {
	Set     *Set
	Base    string // server base URL, no trailing slash
	Dest    string // empty directory to fetch into
	Scratch string // a directory for list and config files
}

// URLs returns the parts' URLs in order.
func (j Job) URLs() []string {
	out := make([]string, len(j.Set.Parts))
	for i, n := range j.Set.Parts {
		out[i] = j.Base + "/" + n
	}
	return out
}

// Fetcher is a tool that fetches a set over HTTP.
type Fetcher struct {
	Name string
	// Verifies says the tool proves the result against the set's
	// references before it exits (haul does; the peers do not).
	Verifies bool
	Command  func(j Job) (*exec.Cmd, error)
}

// Haul fetches with haul: every part URL on the command line, SHA256SUMS
// and the piece manifest found beside the first one. conns and chunk of 0
// leave -j and --chunk-size to haul's defaults.
func Haul(bin string, conns int, chunk int64, extra ...string) Fetcher {
	name := "haul"
	args := []string{"fetch", "--progress", "none"}
	if conns > 0 {
		name += fmt.Sprintf(" -j%d", conns)
		args = append(args, "-j", fmt.Sprint(conns))
	}
	if chunk > 0 {
		args = append(args, "--chunk-size", fmt.Sprint(chunk))
	}
	args = append(args, extra...)
	return Fetcher{Name: name, Verifies: true, Command: func(j Job) (*exec.Cmd, error) {
		args := append([]string(nil), args...)
		args = append(args, j.URLs()...)
		args = append(args, j.Dest)
		return exec.Command(bin, args...), nil
	}}
}

// Aria2 fetches with aria2c -x16 -s16, all URLs from an input file. Its
// default minimum split size (20 MiB) would keep parts of a few MiB on one
// connection each, so -k 1M lets it split them as -s16 asks; -j lets it
// take every part at once.
func Aria2(bin string) Fetcher {
	return Fetcher{Name: "aria2c -x16 -s16", Command: func(j Job) (*exec.Cmd, error) {
		list := filepath.Join(j.Scratch, "aria2.urls")
		if err := os.WriteFile(list, []byte(strings.Join(j.URLs(), "\n")+"\n"), 0o644); err != nil {
			return nil, err
		}
		return exec.Command(bin, "-x16", "-s16", "-k1M", "-j", fmt.Sprint(len(j.Set.Parts)),
			"-i", list, "-d", j.Dest,
			"--allow-overwrite=true", "--auto-file-renaming=false", "--file-allocation=none",
			"--quiet=true", "--summary-interval=0", "--no-conf=true"), nil
	}}
}

// Rclone fetches with rclone copy from the http backend. The fault server
// lists no directories, so --files-from names the parts (rclone then looks
// each one up with HEAD instead of listing); --multi-thread-cutoff lets
// parts of a few MiB use the streams.
func Rclone(bin string, streams int) Fetcher {
	return Fetcher{Name: fmt.Sprintf("rclone --multi-thread-streams %d", streams), Command: func(j Job) (*exec.Cmd, error) {
		list := filepath.Join(j.Scratch, "rclone.files")
		if err := os.WriteFile(list, []byte(strings.Join(j.Set.Parts, "\n")+"\n"), 0o644); err != nil {
			return nil, err
		}
		conf := filepath.Join(j.Scratch, "rclone.conf")
		if err := os.WriteFile(conf, nil, 0o600); err != nil {
			return nil, err
		}
		return exec.Command(bin, "copy", ":http:", j.Dest, "--http-url", j.Base+"/",
			"--files-from", list, "--no-traverse",
			"--multi-thread-streams", fmt.Sprint(streams), "--multi-thread-cutoff", "1M",
			"--transfers", fmt.Sprint(len(j.Set.Parts)), "--config", conf, "-q"), nil
	}}
}

// Curl fetches with curl, every part at once (--parallel), resuming after
// a cut (-C -) with retries, as an operator would script it.
func Curl(bin string) Fetcher {
	return Fetcher{Name: "curl --parallel", Command: func(j Job) (*exec.Cmd, error) {
		args := []string{"--parallel", "--parallel-max", fmt.Sprint(len(j.Set.Parts)), "--fail", "--silent", "--show-error",
			"--retry", "10", "--retry-all-errors", "--retry-delay", "1", "-C", "-"}
		for i, u := range j.URLs() {
			args = append(args, "-o", filepath.Join(j.Dest, j.Set.Parts[i]), u)
		}
		return exec.Command(bin, args...), nil
	}}
}
