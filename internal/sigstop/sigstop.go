// Package sigstop turns the signals that ask haul to stop (SIGINT,
// SIGTERM, SIGHUP) into a clean stop: the first cancels the run's
// context, whose cause says which signal it was (a context.Canceled, so
// every layer stops as it does for --until: state saved, exit 75); a
// second one during the clean stop exits at once with 75, leaving the
// state as the last save wrote it (every save is atomic, so it is
// usable).
//
// The handler is installed when the package is initialised, before
// main and before the heavier packages' init functions run, so a signal
// in the first milliseconds of a run is not the default "terminate"
// (it is kept for Context). Only cmd/haul imports this package.
package sigstop

// Few imports, on purpose: the package is initialised as soon as they
// are, and its init is the moment from which a signal stops haul cleanly.
import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// ExitCode is the exit of a second signal: incomplete but resumable.
const ExitCode = 75

// stopSignals are the signals that mean "stop cleanly": Ctrl-C, kill or
// systemd, and a closed terminal or dropped SSH session.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// early receives the stop signals from process start on; its buffer
// keeps the ones that come before Context is called.
var early chan os.Signal

func init() {
	// A test binary that links cmd/haul is not haul: leave its Ctrl-C be.
	if a := os.Args[0]; len(a) > 5 && a[len(a)-5:] == ".test" {
		return
	}
	early = make(chan os.Signal, 4)
	signal.Notify(early, stopSignals...)
}

// Stop is the cause of a run's context cancelled by a signal. It is a
// context.Canceled (errors.Is), so it stops a run cleanly with exit 75.
type Stop struct{ Signal os.Signal }

func (e Stop) Error() string {
	switch e.Signal {
	case os.Interrupt:
		return "stopped by SIGINT (Ctrl-C)"
	case syscall.SIGHUP:
		return "stopped by SIGHUP (the terminal or SSH session closed)"
	}
	return "stopped by " + name(e.Signal)
}

// Is makes errors.Is(Stop{…}, context.Canceled) true.
func (e Stop) Is(target error) bool { return target == context.Canceled }

// Context returns a context cancelled, with a Stop cause, at the first
// stop signal (one that came before the call counts). A second signal
// writes one line to stderr and exits the process with ExitCode at once.
// stop releases the signals.
func Context(parent context.Context, stderr io.Writer) (ctx context.Context, stop func()) {
	ch := early
	if ch == nil {
		ch = make(chan os.Signal, 4)
		signal.Notify(ch, stopSignals...)
	}
	ctx, cancel := context.WithCancelCause(parent)
	done := make(chan struct{})
	go func() {
		var first os.Signal
		select {
		case first = <-ch:
			cancel(Stop{first})
		case <-done:
			return
		}
		select {
		case s := <-ch:
			_, _ = io.WriteString(stderr, "haul: "+name(s)+" again during the clean stop (after "+name(first)+"): exiting now; the state saved last is kept, run again to resume\n")
			os.Exit(ExitCode)
		case <-done:
		}
	}()
	return ctx, func() {
		close(done)
		signal.Stop(ch)
		cancel(nil)
	}
}

// name is a signal's usual name.
func name(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return s.String()
}
