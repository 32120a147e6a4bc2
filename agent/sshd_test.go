//go:build linux

package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
)

// testServer is a ServeSSH running on loopback with per-test keys.
type testServer struct {
	addr    string
	hostKey ssh.PublicKey
	signer  ssh.Signer // authorized client key
	user    string
	logs    *syncBuffer
	stop    context.CancelFunc // stops ServeSSH early
}

func newKey(t *testing.T) ([]byte, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), signer
}

func currentUser(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatalf("current user: %v", err)
	}
	return u.Username
}

// startServer starts ServeSSH with extra authorized keys; tweak may adjust
// the config. The server is stopped, and must return, at cleanup.
func startServer(t *testing.T, tweak func(*SSHDConfig), extraKeys ...ssh.PublicKey) *testServer {
	t.Helper()
	dir := t.TempDir()
	hostPEM, hostSigner := newKey(t)
	_, clientSigner := newKey(t)
	var ak bytes.Buffer
	ak.WriteString("# authorized keys for the test\n\n")
	for _, k := range append([]ssh.PublicKey{clientSigner.PublicKey()}, extraKeys...) {
		ak.Write(ssh.MarshalAuthorizedKey(k))
	}
	hostFile, akFile := filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(hostFile, hostPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(akFile, ak.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cfg := SSHDConfig{
		Listener:           ln,
		HostKeyFile:        hostFile,
		AuthorizedKeysFile: akFile,
		Logf:               func(f string, a ...any) { fmt.Fprintf(logs, f+"\n", a...) },
	}
	if tweak != nil {
		tweak(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- ServeSSH(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("ServeSSH: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("ServeSSH did not return within 5s of cancellation")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &testServer{addr: ln.Addr().String(), hostKey: hostSigner.PublicKey(), signer: clientSigner, user: currentUser(t), logs: logs, stop: cancel}
}

func (ts *testServer) dial(t *testing.T, auth ...ssh.AuthMethod) (*ssh.Client, error) {
	t.Helper()
	if auth == nil {
		auth = []ssh.AuthMethod{ssh.PublicKeys(ts.signer)}
	}
	return ssh.Dial("tcp", ts.addr, &ssh.ClientConfig{
		User:            ts.user,
		Auth:            auth,
		HostKeyCallback: ssh.FixedHostKey(ts.hostKey),
		Timeout:         5 * time.Second,
	})
}

func (ts *testServer) client(t *testing.T) *ssh.Client {
	t.Helper()
	c, err := ts.dial(t)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// result is how a session ended.
type result struct {
	Stdout, Stderr string
	Status         int    // -1 when none
	Signal         string // exit-signal name
}

func wait(sess *ssh.Session) (r result, err error) {
	r.Status = -1
	err = sess.Wait()
	var exit *ssh.ExitError
	switch {
	case err == nil:
		r.Status = 0
	case errors.As(err, &exit):
		if exit.Signal() != "" {
			r.Signal = exit.Signal()
		} else {
			r.Status = exit.ExitStatus()
		}
	default:
		return r, err
	}
	return r, nil
}

// withLoginShell points passwdFile at a copy of /etc/passwd in which user's
// shell is shell (a bash login shell can take seconds to read profiles).
func withLoginShell(t *testing.T, user, shell string) {
	t.Helper()
	data, err := os.ReadFile(passwdFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		if f := strings.Split(l, ":"); len(f) == 7 && f[0] == user {
			f[6] = shell
			lines[i] = strings.Join(f, ":")
		}
	}
	p := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	old := passwdFile
	passwdFile = p
	t.Cleanup(func() { passwdFile = old })
}

func TestSessions(t *testing.T) {
	withLoginShell(t, currentUser(t), "/bin/sh")
	ts := startServer(t, nil)
	c := ts.client(t)
	acct, err := lookupAccount(ts.user)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		exec  string // "" means a shell request
		env   map[string]string
		stdin string
		want  result
	}{
		"stdout and stderr apart, exit code": {
			exec: "echo hi; echo err >&2; exit 3",
			want: result{Stdout: "hi\n", Stderr: "err\n", Status: 3},
		},
		"login environment": {
			exec: `printf '%s|%s|%s|%s|%s' "$HOME" "$USER" "$LOGNAME" "$SHELL" "$PATH"`,
			want: result{Stdout: strings.Join([]string{acct.home, ts.user, ts.user, "/bin/sh", loginPath}, "|")},
		},
		"env requests, any name": {
			exec: `printf '%s|%s' "$SKYWARD_TEST" "$LC_WHATEVER"`,
			env:  map[string]string{"SKYWARD_TEST": "a b", "LC_WHATEVER": "x=y"},
			want: result{Stdout: "a b|x=y"},
		},
		"stdin until EOF": {
			exec:  "cat; echo done",
			stdin: "line1\nline2\n",
			want:  result{Stdout: "line1\nline2\ndone\n"},
		},
		"killed by a signal": {
			exec: "kill -TERM $$",
			want: result{Status: -1, Signal: "TERM"},
		},
		"shell without pty": {
			stdin: "echo from-shell; exit 4\n",
			want:  result{Stdout: "from-shell\n", Status: 4},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sess, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			for k, v := range tc.env {
				if err := sess.Setenv(k, v); err != nil {
					t.Fatalf("setenv %s: %v", k, err)
				}
			}
			var stdout, stderr bytes.Buffer
			sess.Stdout, sess.Stderr = &stdout, &stderr
			sess.Stdin = strings.NewReader(tc.stdin)
			if tc.exec == "" {
				err = sess.Shell()
			} else {
				err = sess.Start(tc.exec)
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := wait(sess)
			if err != nil {
				t.Fatal(err)
			}
			got.Stdout, got.Stderr = stdout.String(), stderr.String()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("session (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSignalReachesProcessGroup(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.client(t)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// USR1 kills the sleep (its default action) and runs sh's trap: both
	// members of the group got it.
	if err := sess.Start(`trap 'echo got-usr1; exit 9' USR1; echo ready; while :; do sleep 0.05; done`); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("read %q, %v; want ready", buf, err)
	}
	if err := sess.Signal(ssh.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(out)
	got, err := wait(sess)
	if err != nil {
		t.Fatal(err)
	}
	got.Stdout = string(rest)
	if diff := cmp.Diff(result{Stdout: "got-usr1\n", Status: 9}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestAuth(t *testing.T) {
	_, second := newKey(t)
	_, stranger := newKey(t)
	ts := startServer(t, nil, second.PublicKey())
	tests := map[string]struct {
		user   string
		auth   []ssh.AuthMethod
		wantOK bool
	}{
		"first authorized key":  {auth: []ssh.AuthMethod{ssh.PublicKeys(ts.signer)}, wantOK: true},
		"second authorized key": {auth: []ssh.AuthMethod{ssh.PublicKeys(second)}, wantOK: true},
		"unknown key":           {auth: []ssh.AuthMethod{ssh.PublicKeys(stranger)}},
		"password":              {auth: []ssh.AuthMethod{ssh.Password("hunter2")}},
		"keyboard-interactive": {auth: []ssh.AuthMethod{ssh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) {
			return []string{"hunter2"}, nil
		})}},
		"unknown user": {user: "no-such-user-skyward", auth: []ssh.AuthMethod{ssh.PublicKeys(ts.signer)}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := &ssh.ClientConfig{User: ts.user, Auth: tc.auth, HostKeyCallback: ssh.FixedHostKey(ts.hostKey)}
			if tc.user != "" {
				cfg.User = tc.user
			}
			c, err := ssh.Dial("tcp", ts.addr, cfg)
			if tc.wantOK {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				c.Close()
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("dial succeeded; want authentication refused")
			}
			if !strings.Contains(err.Error(), "unable to authenticate") {
				t.Errorf("err = %v; want unable to authenticate", err)
			}
		})
	}
	logs := ts.logs.String()
	for _, want := range []string{"refused", ssh.FingerprintSHA256(stranger.PublicKey()), "no-such-user-skyward"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "hunter2") {
		t.Errorf("log contains a password:\n%s", logs)
	}
}

func TestGlobalRequests(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.client(t)
	tests := map[string]struct {
		req  string
		want bool
	}{
		"keepalive":     {"keepalive@openssh.com", true},
		"tcpip-forward": {"tcpip-forward", false},
		"unknown":       {"nonsense@example.com", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ok, _, err := c.SendRequest(tc.req, true, ssh.Marshal(struct {
				Addr string
				Port uint32
			}{"127.0.0.1", 0}))
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.want {
				t.Errorf("reply = %v; want %v", ok, tc.want)
			}
		})
	}
	if ln, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
		t.Error("remote forward accepted; want refused")
	}
}

func TestDirectTCPIP(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.client(t)
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			conn, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = io.Copy(conn, conn)
			}()
		}
	}()
	port := echo.Addr().(*net.TCPAddr).Port

	t.Run("loopback", func(t *testing.T) {
		for _, host := range []string{"127.0.0.1", "localhost"} {
			conn, err := c.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
			if err != nil {
				t.Fatalf("%s: %v", host, err)
			}
			if _, err := conn.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4)
			if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
				t.Errorf("%s: echo = %q, %v", host, buf, err)
			}
			conn.Close()
		}
	})
	t.Run("refused", func(t *testing.T) {
		// 10.255.255.1 drops packets: had the server dialled it, the
		// refusal would take seconds, and the reason would differ.
		for _, dest := range []string{"10.255.255.1:80", "example.com:80", "0.0.0.0:" + strconv.Itoa(port), "[::ffff:10.0.0.1]:80"} {
			start := time.Now()
			conn, err := c.Dial("tcp", dest)
			if err == nil {
				conn.Close()
				t.Errorf("%s: forward accepted; want refused", dest)
				continue
			}
			var oce *ssh.OpenChannelError
			if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited || !strings.Contains(oce.Message, "only loopback") {
				t.Errorf("%s: err = %v; want administratively prohibited, only loopback", dest, err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("%s: refusal took %s; the server must not dial", dest, d)
			}
		}
	})
}

func TestLoopbackTargets(t *testing.T) {
	tests := map[string]struct {
		host string
		port uint32
		want []string
		ok   bool
	}{
		"ipv4 loopback":     {"127.0.0.1", 80, []string{"127.0.0.1:80"}, true},
		"other 127/8":       {"127.1.2.3", 80, []string{"127.1.2.3:80"}, true},
		"ipv6 loopback":     {"::1", 80, []string{"[::1]:80"}, true},
		"bracketed ipv6":    {"[::1]", 80, []string{"[::1]:80"}, true},
		"mapped loopback":   {"::ffff:127.0.0.1", 80, []string{"127.0.0.1:80"}, true},
		"localhost":         {"LocalHost", 8080, []string{"127.0.0.1:8080", "[::1]:8080"}, true},
		"private address":   {"10.255.255.1", 80, nil, false},
		"unspecified":       {"0.0.0.0", 80, nil, false},
		"host name":         {"localhost.example.com", 80, nil, false},
		"mapped private":    {"::ffff:10.0.0.1", 80, nil, false},
		"zone":              {"::1%lo", 80, nil, false},
		"port zero":         {"127.0.0.1", 0, nil, false},
		"port out of range": {"127.0.0.1", 70000, nil, false},
		"empty host":        {"", 80, nil, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := loopbackTargets(tc.host, tc.port)
			if ok != tc.ok || !cmp.Equal(got, tc.want) {
				t.Errorf("loopbackTargets(%q, %d) = %v, %v; want %v, %v", tc.host, tc.port, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestPTY(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.client(t)

	t.Run("exec", func(t *testing.T) {
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		if err := sess.RequestPty("xterm-256color", 30, 100, ssh.TerminalModes{ssh.ECHO: 0}); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		sess.Stdout = &out
		if err := sess.Run(`tty; echo "$TERM"; stty size; exit 5`); err == nil {
			t.Fatal("exit 0; want 5")
		} else if ee := (*ssh.ExitError)(nil); !errors.As(err, &ee) || ee.ExitStatus() != 5 {
			t.Fatalf("err = %v; want exit status 5", err)
		}
		if !regexp.MustCompile(`^/dev/pts/\d+\r\nxterm-256color\r\n30 100\r\n$`).MatchString(out.String()) {
			t.Errorf("output %q; want a /dev/pts path, the TERM and the size", out.String())
		}
	})
	t.Run("window-change", func(t *testing.T) {
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		// ECHO off, or the shell's input would be in the output.
		if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{ssh.ECHO: 0}); err != nil {
			t.Fatal(err)
		}
		stdin, _ := sess.StdinPipe()
		var out bytes.Buffer
		sess.Stdout = &out
		if err := sess.Start("read x; sleep 0.1; stty size"); err != nil {
			t.Fatal(err)
		}
		if err := sess.WindowChange(40, 120); err != nil {
			t.Fatal(err)
		}
		io.WriteString(stdin, "go\n")
		if err := sess.Wait(); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(out.String()); got != "40 120" {
			t.Errorf("stty size = %q; want 40 120", got)
		}
	})
}

// TestChannelCloseKillsGroup checks that nothing outlives its session,
// whether the client closes the channel, drops the connection, or the
// server shuts down.
func TestChannelCloseKillsGroup(t *testing.T) {
	tests := map[string]func(*testServer, *ssh.Client, *ssh.Session){
		"channel closed":    func(_ *testServer, _ *ssh.Client, s *ssh.Session) { s.Close() },
		"client disconnect": func(_ *testServer, c *ssh.Client, _ *ssh.Session) { c.Close() },
		"server shutdown":   func(ts *testServer, _ *ssh.Client, _ *ssh.Session) { ts.stop() },
	}
	for name, end := range tests {
		t.Run(name, func(t *testing.T) {
			ts := startServer(t, nil)
			c := ts.client(t)
			sess, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			pidFile := filepath.Join(t.TempDir(), "pid")
			if err := sess.Start(fmt.Sprintf("sleep 30 & echo $! > %s; wait", pidFile)); err != nil {
				t.Fatal(err)
			}
			pid := waitPidFile(t, pidFile)
			end(ts, c, sess)
			waitGone(t, pid)
		})
	}
}

func waitPidFile(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && bytes.HasSuffix(b, []byte("\n")) {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no pid in %s", path)
	return 0
}

// procState returns the state letter of pid from /proc ("" if gone) and
// its parent.
func procState(pid int) (state string, ppid int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 2 {
		return "", 0
	}
	ppid, _ = strconv.Atoi(fields[1])
	return fields[0], ppid
}

// waitGone waits until pid no longer runs (a zombie has stopped running).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if st, _ := procState(pid); st == "" || st == "Z" || st == "X" {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Errorf("process %d still runs", pid)
}

// zombieChildren lists zombies whose parent is this process.
func zombieChildren() []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	me := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ppid := procState(pid); st == "Z" && ppid == me {
			out = append(out, pid)
		}
	}
	return out
}

// TestReaper runs many sessions whose commands leave orphans behind while
// the server reaps every child, as PID 1 does: each exit status must still
// reach its session, and no zombie may be left.
func TestReaper(t *testing.T) {
	ts := startServer(t, func(cfg *SSHDConfig) { cfg.ReapChildren = true })
	c := ts.client(t)
	orphansBefore := children.orphanCount()

	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code := i%100 + 1
			sess, err := c.NewSession()
			if err != nil {
				errs <- err
				return
			}
			defer sess.Close()
			var out, errOut bytes.Buffer
			sess.Stdout, sess.Stderr = &out, &errOut
			// The subshell's sleep is orphaned; the inner sh exits with
			// code; the outer one waits for it.
			got, err := func() (result, error) {
				if err := sess.Start(fmt.Sprintf("sh -c '(sleep 0.1 &) ; exit %d'; exit $?", code)); err != nil {
					return result{}, err
				}
				return wait(sess)
			}()
			switch {
			case err != nil:
				errs <- fmt.Errorf("session %d: %v (output %q %q)", i, err, out.String(), errOut.String())
			case got.Status != code || got.Signal != "":
				errs <- fmt.Errorf("session %d: status %d signal %q; want %d (output %q %q)", i, got.Status, got.Signal, code, out.String(), errOut.String())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	deadline := time.Now().Add(3 * time.Second)
	for {
		z := zombieChildren()
		if len(z) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("zombie children left: %v", z)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := children.orphanCount() - orphansBefore; got == 0 {
		t.Errorf("reaper collected no orphans; want the orphaned sleeps")
	}
}

// TestReaperStart exercises the reaper directly: statuses of processes that
// exit at once, while orphans are reaped concurrently, in both modes.
func TestReaperStart(t *testing.T) {
	for _, reapAll := range []bool{false, true} {
		t.Run(fmt.Sprintf("reapAll=%v", reapAll), func(t *testing.T) {
			if reapAll {
				release, err := children.enableReapAll()
				if err != nil {
					t.Fatal(err)
				}
				defer release()
			}
			const n = 50
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					script := fmt.Sprintf("exit %d", i%7)
					if i%2 == 0 {
						script = fmt.Sprintf("(true &); exit %d", i%7)
					}
					attr := &syscall.ProcAttr{Files: []uintptr{0, 1, 2}, Sys: &syscall.SysProcAttr{Setpgid: true}}
					p, err := children.start("/bin/sh", []string{"sh", "-c", script}, attr, true)
					if err != nil {
						t.Error(err)
						return
					}
					select {
					case <-p.done:
					case <-time.After(5 * time.Second):
						t.Errorf("process %d: no exit status after 5s", i)
						return
					}
					if p.err != nil || !p.status.Exited() || p.status.ExitStatus() != i%7 {
						t.Errorf("process %d: status %v err %v; want exit %d", i, p.status, p.err, i%7)
					}
				}()
			}
			wg.Wait()
		})
	}
}

func TestRunSSHDUsage(t *testing.T) {
	tests := map[string]struct {
		args []string
		want int
	}{
		"unknown flag":     {[]string{"-nope"}, 2},
		"extra argument":   {[]string{"extra"}, 2},
		"missing host key": {[]string{"-listen=127.0.0.1:0", "-host-key=/nonexistent/key", "-authorized-keys=/nonexistent/ak"}, 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			if got := RunSSHD(tc.args, &stderr); got != tc.want {
				t.Errorf("RunSSHD(%q) = %d; want %d; stderr:\n%s", tc.args, got, tc.want, stderr.String())
			}
		})
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunSSHDHelper is the child process of TestRunSSHD.
func TestRunSSHDHelper(t *testing.T) {
	if os.Getenv("SKYWARD_RUNSSHD_HELPER") != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(RunSSHD(args, os.Stderr))
}

// TestRunSSHD runs `skyward agent sshd` in a child process: it serves with
// the given flags and exits 0 on SIGTERM.
func TestRunSSHD(t *testing.T) {
	dir := t.TempDir()
	hostPEM, hostSigner := newKey(t)
	_, clientSigner := newKey(t)
	hostFile, akFile := filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(hostFile, hostPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(akFile, ssh.MarshalAuthorizedKey(clientSigner.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestRunSSHDHelper$", "--",
		"-listen="+addr, "-host-key="+hostFile, "--authorized-keys", akFile)
	cmd.Env = append(os.Environ(), "SKYWARD_RUNSSHD_HELPER=1")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	cfg := &ssh.ClientConfig{User: currentUser(t), Auth: []ssh.AuthMethod{ssh.PublicKeys(clientSigner)}, HostKeyCallback: ssh.FixedHostKey(hostSigner.PublicKey())}
	var c *ssh.Client
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err = ssh.Dial("tcp", addr, cfg); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd never answered: %v\nstderr:\n%s", err, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	out, err := func() ([]byte, error) {
		sess, err := c.NewSession()
		if err != nil {
			return nil, err
		}
		defer sess.Close()
		return sess.Output("echo served")
	}()
	c.Close()
	if err != nil || string(out) != "served\n" {
		t.Errorf("output %q, %v; want served", out, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("sshd exit after SIGTERM: %v; want 0\nstderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "listening on "+addr) {
		t.Errorf("stderr lacks the listen address:\n%s", stderr.String())
	}
}
