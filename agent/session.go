package agent

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// loginPath is the PATH every session starts with.
const loginPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// session is one "session" channel: at most one command, shell or
// subsystem, with its pty if one was requested.
type session struct {
	srv  *server
	conn *ssh.ServerConn
	ch   ssh.Channel
	acct *account

	env  [][2]string // from "env" requests, in order
	term string      // from pty-req
	ptmx *os.File    // pty master, pollable; nil without a pty
	tty  *os.File    // pty slave; closed once the child has it

	started  bool
	proc     *proc
	outputs  []*os.File     // what the child writes to: stdout, stderr or ptmx
	exited   atomic.Bool    // the child has exited
	copiers  sync.WaitGroup // output copiers
	finished chan struct{}  // closed once exit status was sent
}

// serve handles the channel's requests until the client closes the channel
// or the connection drops, then kills whatever still runs.
func (s *session) serve(reqs <-chan *ssh.Request) {
	s.finished = make(chan struct{})
	for req := range reqs {
		ok, after := s.handle(req)
		if req.WantReply {
			_ = req.Reply(ok, nil)
		}
		// Only once the request is answered may the exit status follow.
		if after != nil {
			go after()
		}
	}
	if s.proc != nil {
		if err := children.signalGroup(s.proc, syscall.SIGKILL); err != nil {
			s.srv.logf("%s: kill process group %d: %v", s.conn.RemoteAddr(), s.proc.pid, err)
		}
	}
	if s.started {
		<-s.finished
	}
	s.ch.Close()
	if s.ptmx != nil {
		s.ptmx.Close()
	}
	if s.tty != nil {
		s.tty.Close()
	}
}

// handle answers one channel request. after, if non-nil, runs once the
// reply is sent.
func (s *session) handle(req *ssh.Request) (ok bool, after func()) {
	switch req.Type {
	case "env":
		var p struct{ Name, Value string }
		if s.started || ssh.Unmarshal(req.Payload, &p) != nil || p.Name == "" || strings.ContainsAny(p.Name, "=\x00") || strings.Contains(p.Value, "\x00") {
			return false, nil
		}
		s.env = append(s.env, [2]string{p.Name, p.Value})
		return true, nil

	case "pty-req":
		var p struct {
			Term          string
			Cols, Rows    uint32
			Width, Height uint32
			Modes         string
		}
		if s.started || s.ptmx != nil || ssh.Unmarshal(req.Payload, &p) != nil {
			return false, nil
		}
		if err := s.openPTY(p.Term, p.Cols, p.Rows, p.Modes); err != nil {
			s.srv.logf("%s: pty: %v", s.conn.RemoteAddr(), err)
			return false, nil
		}
		return true, nil

	case "window-change":
		var p struct{ Cols, Rows, Width, Height uint32 }
		if s.ptmx == nil || ssh.Unmarshal(req.Payload, &p) != nil {
			return false, nil
		}
		return setWinsize(s.ptmx, p.Cols, p.Rows) == nil, nil

	case "exec":
		var p struct{ Command string }
		if s.started || ssh.Unmarshal(req.Payload, &p) != nil {
			return false, nil
		}
		return s.startCommand("/bin/sh", []string{"sh", "-c", p.Command}, "/bin/sh")

	case "shell":
		if s.started {
			return false, nil
		}
		sh := s.acct.loginShell()
		return s.startCommand(sh, []string{"-" + path.Base(sh)}, sh)

	case "subsystem":
		var p struct{ Name string }
		if s.started || ssh.Unmarshal(req.Payload, &p) != nil || p.Name != "sftp" {
			return false, nil
		}
		return s.startSFTP()

	case "signal":
		var p struct{ Signal string }
		if s.proc == nil || ssh.Unmarshal(req.Payload, &p) != nil {
			return false, nil
		}
		sig := unix.SignalNum("SIG" + p.Signal)
		if sig == 0 {
			return false, nil
		}
		return children.signalGroup(s.proc, sig) == nil, nil
	}
	return false, nil
}

// openPTY allocates the pty that the command will get as its controlling
// terminal.
func (s *session) openPTY(term string, cols, rows uint32, modes string) error {
	ptmx, tty, err := openPTY()
	if err != nil {
		return err
	}
	if err := applyModes(tty, modes); err != nil {
		ptmx.Close()
		tty.Close()
		return fmt.Errorf("terminal modes: %w", err)
	}
	if s.acct.cred != nil {
		_ = tty.Chown(int(s.acct.uid), int(s.acct.gid))
	}
	if cols > 0 && rows > 0 {
		_ = setWinsize(ptmx, cols, rows)
	}
	s.ptmx, s.tty, s.term = ptmx, tty, term
	return nil
}

// environ is the command's environment: the login variables, then what the
// client sent (which wins).
func (s *session) environ(shell string) []string {
	vars := map[string]string{
		"HOME":    s.acct.home,
		"USER":    s.acct.name,
		"LOGNAME": s.acct.name,
		"SHELL":   shell,
		"PATH":    loginPath,
	}
	if host, port, err := net.SplitHostPort(s.conn.RemoteAddr().String()); err == nil {
		lhost, lport, _ := net.SplitHostPort(s.conn.LocalAddr().String())
		vars["SSH_CLIENT"] = host + " " + port + " " + lport
		vars["SSH_CONNECTION"] = host + " " + port + " " + lhost + " " + lport
	}
	if s.ptmx != nil {
		vars["SSH_TTY"] = s.tty.Name()
		if s.term != "" {
			vars["TERM"] = s.term
		}
	}
	for _, kv := range s.env {
		vars[kv[0]] = kv[1]
	}
	env := make([]string, 0, len(vars))
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// startCommand starts argv in a new process group (a new session with the
// pty as controlling terminal when there is one) and wires its stdio to the
// channel. after waits for it and reports its exit.
func (s *session) startCommand(path string, argv []string, shell string) (bool, func()) {
	attr := &syscall.ProcAttr{
		Dir: s.acct.workDir(),
		Env: s.environ(shell),
		Sys: &syscall.SysProcAttr{Credential: s.acct.cred},
	}
	var childEnds []*os.File
	var stdin io.WriteCloser
	if s.ptmx != nil {
		attr.Files = []uintptr{s.tty.Fd(), s.tty.Fd(), s.tty.Fd()}
		attr.Sys.Setsid = true // also a new process group, led by the child
		attr.Sys.Setctty = true
		attr.Sys.Ctty = 0
		childEnds = []*os.File{s.tty}
		s.outputs = []*os.File{s.ptmx}
		stdin = nopCloser{s.ptmx} // a pty has no half-close
	} else {
		inR, inW, err1 := os.Pipe()
		outR, outW, err2 := os.Pipe()
		errR, errW, err3 := os.Pipe()
		if err := errors.Join(err1, err2, err3); err != nil {
			closeAll(inR, inW, outR, outW, errR, errW)
			s.srv.logf("%s: pipes: %v", s.conn.RemoteAddr(), err)
			return false, nil
		}
		attr.Files = []uintptr{inR.Fd(), outW.Fd(), errW.Fd()}
		attr.Sys.Setpgid = true
		childEnds = []*os.File{inR, outW, errW}
		s.outputs = []*os.File{outR, errR}
		stdin = inW
	}
	p, err := children.start(path, argv, attr, true)
	closeAll(childEnds...)
	if s.ptmx != nil {
		s.tty = nil
	}
	if err != nil {
		s.srv.logf("%s: start %s: %v", s.conn.RemoteAddr(), path, err)
		closeAll(s.outputs...)
		stdin.Close()
		return false, nil
	}
	s.started, s.proc = true, p

	go func() {
		// Ends at stdin EOF (propagated as EOF to the command), when the
		// command stops reading, or when the channel closes.
		_, _ = io.Copy(stdin, s.ch)
		stdin.Close()
	}()
	dsts := []io.Writer{s.ch, s.ch.Stderr()}
	for i, f := range s.outputs {
		s.copiers.Add(1)
		go func() {
			defer s.copiers.Done()
			s.copyOutput(dsts[i], f)
		}()
	}
	return true, s.finish
}

// copyOutput copies what the command writes to the channel. Once the
// command has exited (and its group was killed), a read that waits longer
// than outputGrace ends the copy: the pipe is then held open by a process
// that left the group, and the exit is not delayed for it.
func (s *session) copyOutput(dst io.Writer, src *os.File) {
	buf := make([]byte, 32<<10)
	for {
		if s.exited.Load() {
			_ = src.SetReadDeadline(time.Now().Add(outputGrace))
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			// EOF on pipes, EIO on a pty master whose slave is closed.
			return
		}
	}
}

// finish waits for the command, lets its output drain, then sends
// exit-status (or exit-signal) and closes the channel.
func (s *session) finish() {
	defer close(s.finished)
	<-s.proc.done
	s.exited.Store(true)
	for _, f := range s.outputs {
		_ = f.SetReadDeadline(time.Now().Add(outputGrace))
	}
	s.copiers.Wait()
	for _, f := range s.outputs {
		if f != s.ptmx { // the pty master is closed by serve
			f.Close()
		}
	}
	_ = s.ch.CloseWrite()
	p := s.proc
	switch {
	case p.err != nil:
		s.srv.logf("%s: %v", s.conn.RemoteAddr(), p.err)
	case p.status.Signaled():
		sig := p.status.Signal()
		name := strings.TrimPrefix(unix.SignalName(sig), "SIG")
		if name == "" {
			name = fmt.Sprintf("%d@skyward", int(sig))
		}
		_, _ = s.ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}{name, p.status.CoreDump(), "", ""}))
	default:
		_, _ = s.ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(p.status.ExitStatus())}))
	}
	s.ch.Close()
}

// startSFTP serves the sftp subsystem in-process, as the agent's own user;
// sessions of other users are refused rather than served with its rights.
func (s *session) startSFTP() (bool, func()) {
	if s.acct.cred != nil {
		s.srv.logf("%s: sftp refused for user %q: it would run as uid %d", s.conn.RemoteAddr(), s.acct.name, os.Geteuid())
		return false, nil
	}
	srv, err := sftp.NewServer(s.ch, sftp.WithServerWorkingDirectory(s.acct.workDir()))
	if err != nil {
		return false, nil
	}
	s.started = true
	return true, func() {
		defer close(s.finished)
		status := uint32(0)
		if err := srv.Serve(); err != nil {
			s.srv.logf("%s: sftp: %v", s.conn.RemoteAddr(), err)
			status = 1
		}
		_ = srv.Close()
		_, _ = s.ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
		s.ch.Close()
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func closeAll(files ...*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}
