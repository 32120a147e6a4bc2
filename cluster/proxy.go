package cluster

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ExpandProxyCommand expands OpenSSH's ProxyCommand tokens in cmd: %h the
// host, %p the port, %r the user and %% a percent sign. Other tokens are
// left as they are (a provider expands its own, such as %i, first).
func ExpandProxyCommand(cmd, host string, port int, user string) string {
	if port == 0 {
		port = 22
	}
	var b strings.Builder
	for i := 0; i < len(cmd); i++ {
		if cmd[i] != '%' || i+1 == len(cmd) {
			b.WriteByte(cmd[i])
			continue
		}
		switch cmd[i+1] {
		case 'h':
			b.WriteString(host)
		case 'p':
			b.WriteString(strconv.Itoa(port))
		case 'r':
			b.WriteString(user)
		case '%':
			b.WriteByte('%')
		default:
			b.WriteString(cmd[i : i+2])
		}
		i++
	}
	return b.String()
}

// dialProxy starts ep's ProxyCommand and returns a connection over its
// stdin and stdout. The command runs in a process group of its own, which
// Close kills.
func dialProxy(ctx context.Context, ep Endpoint) (net.Conn, error) {
	line := ExpandProxyCommand(ep.ProxyCommand, ep.Host, ep.Port, ep.User)
	// Pipes from os.Pipe support deadlines, which the handshake needs.
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	c := &proxyConn{in: inW, out: outR, line: line, done: make(chan struct{})}
	cmd := exec.Command("sh", "-c", line)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, &c.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := ctx.Err(); err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("proxy command %q: %w", line, err)
	}
	// The child holds its own copies.
	inR.Close()
	outW.Close()
	c.cmd = cmd
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// proxyConn is a net.Conn over a proxy command's stdin and stdout.
type proxyConn struct {
	in     *os.File // the command's stdin
	out    *os.File // the command's stdout
	line   string
	cmd    *exec.Cmd
	stderr lockedBuffer

	done      chan struct{} // closed when the command has exited
	waitErr   error
	closeOnce sync.Once
}

func (c *proxyConn) Read(b []byte) (int, error)  { return c.out.Read(b) }
func (c *proxyConn) Write(b []byte) (int, error) { return c.in.Write(b) }

// Close closes the pipes and hangs up the command's process group, as
// OpenSSH does when it exits, killing it if it has not exited a moment
// later.
func (c *proxyConn) Close() error {
	c.closeOnce.Do(func() {
		c.in.Close()
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGHUP)
		select {
		case <-c.done:
		case <-time.After(500 * time.Millisecond):
			_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			<-c.done
		}
		c.out.Close()
	})
	return nil
}

func (c *proxyConn) LocalAddr() net.Addr  { return proxyAddr("proxy command") }
func (c *proxyConn) RemoteAddr() net.Addr { return proxyAddr(c.line) }

func (c *proxyConn) SetDeadline(t time.Time) error {
	if err := c.in.SetDeadline(t); err != nil {
		return err
	}
	return c.out.SetDeadline(t)
}
func (c *proxyConn) SetReadDeadline(t time.Time) error  { return c.out.SetReadDeadline(t) }
func (c *proxyConn) SetWriteDeadline(t time.Time) error { return c.in.SetWriteDeadline(t) }

// explain adds to a failed handshake what the proxy command said and how
// it exited, when it did.
func (c *proxyConn) explain(err error) error {
	select {
	case <-c.done:
	case <-time.After(200 * time.Millisecond):
	}
	msg := strings.TrimSpace(c.stderr.String())
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		msg = msg[i+1:]
	}
	select {
	case <-c.done:
		if c.waitErr != nil {
			if msg != "" {
				return fmt.Errorf("proxy command %q: %v: %s (%w)", c.line, c.waitErr, msg, err)
			}
			return fmt.Errorf("proxy command %q: %v (%w)", c.line, c.waitErr, err)
		}
	default:
	}
	if msg != "" {
		return fmt.Errorf("%w (proxy command said: %s)", err, msg)
	}
	return err
}

type proxyAddr string

func (a proxyAddr) Network() string { return "proxy" }
func (a proxyAddr) String() string  { return string(a) }

// lockedBuffer keeps the last 4 KiB written to it; safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	if l.b.Len() > 4096 {
		rest := l.b.Bytes()[l.b.Len()-4096:]
		l.b = *bytes.NewBuffer(append([]byte(nil), rest...))
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
