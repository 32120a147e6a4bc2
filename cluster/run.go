package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// cancelGrace is how long a cancelled call waits for the node to confirm
// the session is closed, so that no output is written after it returns.
const cancelGrace = 2 * time.Second

// stderrTailLines is how many lines of stderr an ExitError carries.
const stderrTailLines = 10

// ExitError reports a remote command that ran and exited with a non-zero
// code (from Output).
type ExitError struct {
	Address string // the node, e.g. "pool.dev.node[1]"
	Command string
	Code    int
	// Stderr holds the last lines of the command's standard error.
	Stderr string
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s: run %q: exited %d", e.Address, shortCommand(e.Command), e.Code)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// Run runs cmd on the node through the remote user's /bin/sh -c, in a
// session of its own, copying stdin to it (nil: empty input) and its
// standard output and error to stdout and stderr (nil: discarded), kept
// apart. It returns the command's exit code with a nil error whatever the
// code. It returns -1 and an error when the command could not run, was
// killed by a signal (the error names it), or the connection failed. When
// ctx is done the remote process group is sent KILL, the session is closed
// and ctx's error is returned. stdout and stderr are not written after Run
// returns, unless the node stopped answering; the goroutine copying stdin
// may outlive the call until its next Read returns. stdout and stderr may
// be the same writer.
func (c *Client) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	return c.run(ctx, cmd, true, stdin, stdout, stderr)
}

// run is Run, with cmd under the endpoint's guard (guarded) or as it is.
func (c *Client) run(ctx context.Context, cmd string, guarded bool, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	op := fmt.Sprintf("run %q", shortCommand(cmd))
	if err := ctx.Err(); err != nil {
		return -1, fmt.Errorf("%s: %s: %w", c.ep.name(), op, err)
	}
	sess, err := c.session(op, stdin, stdout, stderr)
	if err != nil {
		return -1, err
	}
	defer sess.Close()
	if guarded {
		cmd = c.guard(cmd)
	}
	if err := sess.Start(cmd); err != nil {
		return -1, fmt.Errorf("%s: %s: start: %w", c.ep.name(), op, err)
	}
	return c.wait(ctx, sess, op)
}

// Output runs cmd like Run and returns its standard output. A non-zero exit
// is an *ExitError carrying the code and the last lines of stderr; stdout is
// returned with it.
func (c *Client) Output(ctx context.Context, cmd string) ([]byte, error) {
	return c.OutputIn(ctx, cmd, nil)
}

// OutputIn is Output with stdin as the command's standard input.
func (c *Client) OutputIn(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	var out bytes.Buffer
	var errTail tailBuffer
	code, err := c.Run(ctx, cmd, stdin, &out, &errTail)
	if err != nil {
		return out.Bytes(), err
	}
	if code != 0 {
		return out.Bytes(), &ExitError{Address: c.ep.name(), Command: cmd, Code: code, Stderr: errTail.lastLines(stderrTailLines)}
	}
	return out.Bytes(), nil
}

// TermInfo describes the local terminal for Shell.
type TermInfo struct {
	// IsTerminal: stdin is a terminal; Shell then asks for a pty and puts
	// the terminal (Fd) in raw mode while the session lasts.
	IsTerminal bool
	Fd         int
	// Term is the terminal type ($TERM), also sent as the TERM variable.
	Term string
	// Width and Height are the initial size; 0 means ask Fd.
	Width, Height int
}

// Shell runs cmd, or the user's login shell when cmd is "", for `skyward
// ssh`. With t.IsTerminal it requests a pty of t's type and size, puts the
// local terminal in raw mode (restored before returning) and forwards
// SIGWINCH as window-change; the pty merges the remote stderr into stdout.
// Exit code and errors are as for Run.
func (c *Client) Shell(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer, t TermInfo) (int, error) {
	op := "shell"
	if cmd != "" {
		op = fmt.Sprintf("run %q", shortCommand(cmd))
	}
	sess, err := c.session(op, stdin, stdout, stderr)
	if err != nil {
		return -1, err
	}
	defer sess.Close()
	if t.Term != "" {
		// A server that refuses env requests still runs the command.
		_ = sess.Setenv("TERM", t.Term)
	}
	if t.IsTerminal {
		w, h := t.Width, t.Height
		if w <= 0 || h <= 0 {
			if w, h, err = term.GetSize(t.Fd); err != nil {
				w, h = 80, 24
			}
		}
		termType := t.Term
		if termType == "" {
			termType = "xterm"
		}
		modes := ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}
		if err := sess.RequestPty(termType, h, w, modes); err != nil {
			return -1, fmt.Errorf("%s: %s: request pty: %w", c.ep.name(), op, err)
		}
		state, err := term.MakeRaw(t.Fd)
		if err != nil {
			return -1, fmt.Errorf("%s: %s: raw terminal mode: %w", c.ep.name(), op, err)
		}
		defer func() { _ = term.Restore(t.Fd, state) }()

		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-winch:
					if w, h, err := term.GetSize(t.Fd); err == nil {
						_ = sess.WindowChange(h, w)
					}
				}
			}
		}()
	}
	switch {
	case cmd == "":
		err = sess.Shell()
	case t.IsTerminal:
		// The pty's hang-up ends what runs on it.
		err = sess.Start(cmd)
	default:
		err = sess.Start(c.guard(cmd))
	}
	if err != nil {
		return -1, fmt.Errorf("%s: %s: start: %w", c.ep.name(), op, err)
	}
	return c.wait(ctx, sess, op)
}

// session opens a session with its stdio wired.
func (c *Client) session(op string, stdin io.Reader, stdout, stderr io.Writer) (*ssh.Session, error) {
	sess, err := c.conn.NewSession()
	if err != nil {
		return nil, fmt.Errorf("%s: %s: open session: %w", c.ep.name(), op, err)
	}
	if stdout != nil && sameWriter(stdout, stderr) {
		// The session copies the two streams in two goroutines.
		w := &lockedWriter{w: stdout}
		stdout, stderr = w, w
	}
	sess.Stdout, sess.Stderr = stdout, stderr
	if stdin != nil {
		// Copied here rather than by the session: Session.Wait would wait
		// for a copy blocked reading stdin (a terminal) after the command
		// ended.
		w, err := sess.StdinPipe()
		if err != nil {
			sess.Close()
			return nil, fmt.Errorf("%s: %s: stdin: %w", c.ep.name(), op, err)
		}
		go func() {
			_, _ = io.Copy(w, stdin)
			_ = w.Close()
		}()
	}
	return sess, nil
}

// wait waits for the started session and maps its end to an exit code.
func (c *Client) wait(ctx context.Context, sess *ssh.Session, op string) (int, error) {
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGKILL)
		_ = sess.Close()
		select {
		case <-done:
		case <-time.After(cancelGrace):
		}
		return -1, fmt.Errorf("%s: %s: %w", c.ep.name(), op, context.Cause(ctx))
	}
	if err == nil {
		return 0, nil
	}
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		if exit.Signal() != "" {
			return -1, fmt.Errorf("%s: %s: killed by signal %s", c.ep.name(), op, exit.Signal())
		}
		return exit.ExitStatus(), nil
	}
	var missing *ssh.ExitMissingError
	if errors.As(err, &missing) {
		return -1, fmt.Errorf("%s: %s: ended without an exit status (connection lost?)", c.ep.name(), op)
	}
	return -1, fmt.Errorf("%s: %s: %w", c.ep.name(), op, err)
}

func sameWriter(a, b io.Writer) bool {
	ta := reflect.TypeOf(a)
	return ta == reflect.TypeOf(b) && ta.Comparable() && a == b
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// shortCommand is cmd's first line, cut to fit in a message.
func shortCommand(cmd string) string {
	const max = 60
	line, _, multi := strings.Cut(strings.TrimSpace(cmd), "\n")
	if r := []rune(line); len(r) > max {
		return string(r[:max]) + "..."
	} else if multi {
		return line + " ..."
	}
	return line
}

// tailBuffer keeps the last bytes written to it.
type tailBuffer struct {
	buf []byte
}

const tailBufferSize = 16 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > tailBufferSize {
		p = p[len(p)-tailBufferSize:]
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - tailBufferSize; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return n, nil
}

// lastLines returns up to n last non-empty lines.
func (t *tailBuffer) lastLines(n int) string {
	lines := strings.Split(strings.TrimRight(string(t.buf), "\n"), "\n")
	var out []string
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		if l := strings.TrimRight(lines[i], "\r"); strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return strings.Join(out, "\n")
}
