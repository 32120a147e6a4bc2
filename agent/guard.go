package agent

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

// guardPoll is how often RunGuard looks for the end of its SSH session.
var guardPoll = 100 * time.Millisecond

// RunGuard is `skyward agent guard -- COMMAND [ARG...]`. It gives an SSH
// server that leaves a session's processes running when the session ends
// (OpenSSH without a terminal) what skyward's own server does: COMMAND runs
// in a process group of its own with the guard's standard streams, and
// that whole group is killed with SIGKILL when the session is gone — the
// reader of the guard's standard output closed it, the guard's parent (the
// session's shell or sudo) died, or the guard got SIGHUP, SIGINT or
// SIGTERM — and when COMMAND's leader exits. The guard exits with
// COMMAND's exit code (128+N when a signal N ended it).
func RunGuard(args []string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: skyward agent guard -- COMMAND [ARG...]")
		return 2
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "skyward agent guard: %v\n", err)
		return 127
	}
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
	parent := os.Getppid()
	p, err := children.start(path, args, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{os.Stdin.Fd(), os.Stdout.Fd(), os.Stderr.Fd()},
		Sys:   phaseSysProcAttr(),
	}, true)
	if err != nil {
		fmt.Fprintf(stderr, "skyward agent guard: start %s: %v\n", args[0], err)
		return 126
	}
	t := time.NewTicker(guardPoll)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return guardExit(p)
		case <-sigc:
			_ = children.signalGroup(p, syscall.SIGKILL)
		case <-t.C:
			if os.Getppid() != parent || readerGone(os.Stdout) {
				_ = children.signalGroup(p, syscall.SIGKILL)
			}
		}
	}
}

func guardExit(p *proc) int {
	if p.err != nil {
		return 1
	}
	ws := p.status
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
