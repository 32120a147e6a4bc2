package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/skyward-sh/skyward/agent"
	"github.com/skyward-sh/skyward/cluster"
)

// node is an agent SSH server on loopback with per-test keys, and the
// endpoint that reaches it.
type node struct {
	ep      cluster.Endpoint
	hostKey string // authorized_keys line of its host key
}

// keyPair generates a key with GenerateKey and parses it back.
func keyPair(t *testing.T) (ssh.Signer, string, []byte) {
	t.Helper()
	privPEM, authorized, err := cluster.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatalf("parse generated key: %v", err)
	}
	return signer, authorized, privPEM
}

// startNode starts agent.ServeSSH. With listen != "" it listens there after
// delay; else it listens on 127.0.0.1:0 at once.
func startNode(t *testing.T, listen string, delay time.Duration) node {
	t.Helper()
	dir := t.TempDir()
	_, hostAuthorized, hostPEM := keyPair(t)
	clientSigner, clientAuthorized, _ := keyPair(t)
	hostFile, akFile := filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(hostFile, hostPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(akFile, []byte(clientAuthorized+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := agent.SSHDConfig{HostKeyFile: hostFile, AuthorizedKeysFile: akFile, Listen: listen}
	if listen == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Listener = ln
		listen = ln.Addr().String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			errc <- nil
			return
		}
		errc <- agent.ServeSSH(ctx, cfg)
	}()
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
	})
	host, portStr, _ := net.SplitHostPort(listen)
	port, _ := strconv.Atoi(portStr)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return node{
		ep: cluster.Endpoint{
			Address: "pool.dev.node[1]",
			Host:    host,
			Port:    port,
			User:    u.Username,
			HostKey: hostAuthorized,
			Signer:  clientSigner,
		},
		hostKey: hostAuthorized,
	}
}

func dial(t *testing.T, ep cluster.Endpoint) *cluster.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := cluster.Dial(ctx, ep)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestGenerateKey(t *testing.T) {
	signer, authorized, privPEM := keyPair(t)
	if !bytes.HasPrefix(privPEM, []byte("-----BEGIN OPENSSH PRIVATE KEY-----")) {
		t.Errorf("private key is not OpenSSH PEM:\n%s", privPEM)
	}
	if !strings.HasPrefix(authorized, "ssh-ed25519 AAAA") || strings.HasSuffix(authorized, "\n") {
		t.Errorf("authorized key = %q; want one ssh-ed25519 line without newline", authorized)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorized))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pub.Marshal(), signer.PublicKey().Marshal()) {
		t.Error("authorized key does not match the private key")
	}
}

func TestRun(t *testing.T) {
	n := startNode(t, "", 0)
	c := dial(t, n.ep)
	home, _ := os.UserHomeDir()
	tests := map[string]struct {
		cmd        string
		stdin      io.Reader
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		"stdout, stderr and exit code": {
			cmd:        "echo hi; echo err >&2; exit 3",
			wantCode:   3,
			wantStdout: "hi\n",
			wantStderr: "err\n",
		},
		"stdin piped": {
			cmd:        "cat",
			stdin:      strings.NewReader("piped\ninput\n"),
			wantStdout: "piped\ninput\n",
		},
		"no stdin is empty input": {
			cmd:        "cat; echo end",
			wantStdout: "end\n",
		},
		"login environment": {
			cmd:        `printf '%s|%s|%s' "$USER" "$SHELL" "$PATH"`,
			wantStdout: n.ep.User + "|/bin/sh|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		},
		"runs in the home directory": {
			cmd:        "pwd",
			wantStdout: home + "\n",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code, err := c.Run(context.Background(), tc.cmd, tc.stdin, &stdout, &stderr)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			got := []any{code, stdout.String(), stderr.String()}
			want := []any{tc.wantCode, tc.wantStdout, tc.wantStderr}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("code, stdout, stderr (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunSameWriter(t *testing.T) {
	n := startNode(t, "", 0)
	c := dial(t, n.ep)
	var out bytes.Buffer // written from two streams: run with -race
	code, err := c.Run(context.Background(), "for i in 1 2 3; do echo out$i; echo err$i >&2; done", nil, &out, &out)
	if err != nil || code != 0 {
		t.Fatalf("Run = %d, %v", code, err)
	}
	for _, s := range []string{"out1", "out3", "err1", "err3"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output %q lacks %q", out.String(), s)
		}
	}
}

func TestRunEnv(t *testing.T) {
	n := startNode(t, "", 0)
	c := dial(t, n.ep)
	// Run has no env of its own; env requests reach the command through
	// the raw connection, and Shell forwards TERM.
	sess, err := c.Conn().NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.Setenv("SKYWARD_POOL", "dev"); err != nil {
		t.Fatalf("env request refused: %v", err)
	}
	out, err := sess.Output(`echo "$SKYWARD_POOL"`)
	if err != nil || string(out) != "dev\n" {
		t.Errorf("output %q, %v; want dev", out, err)
	}
	var stdout bytes.Buffer
	code, err := c.Shell(context.Background(), `echo "$TERM"`, nil, &stdout, io.Discard, cluster.TermInfo{Term: "xterm-kitty"})
	if err != nil || code != 0 || stdout.String() != "xterm-kitty\n" {
		t.Errorf("Shell = %d, %v, output %q; want TERM xterm-kitty", code, err, stdout.String())
	}
}

func TestRunSignal(t *testing.T) {
	n := startNode(t, "", 0)
	c := dial(t, n.ep)
	code, err := c.Run(context.Background(), "kill -KILL $$", nil, nil, nil)
	if code != -1 || err == nil || !strings.Contains(err.Error(), "killed by signal KILL") || !strings.HasPrefix(err.Error(), "pool.dev.node[1]: ") {
		t.Errorf("Run = %d, %v; want -1 and an error naming the node and KILL", code, err)
	}
}

func TestOutput(t *testing.T) {
	n := startNode(t, "", 0)
	c := dial(t, n.ep)
	out, err := c.Output(context.Background(), "echo ok")
	if err != nil || string(out) != "ok\n" {
		t.Errorf("Output = %q, %v; want ok", out, err)
	}

	script := "echo partial; for i in $(seq 1 15); do echo line$i >&2; done; exit 100"
	out, err = c.Output(context.Background(), script)
	var exit *cluster.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("err = %v; want *ExitError", err)
	}
	want := &cluster.ExitError{
		Address: "pool.dev.node[1]",
		Command: script,
		Code:    100,
		Stderr:  "line6\nline7\nline8\nline9\nline10\nline11\nline12\nline13\nline14\nline15",
	}
	if diff := cmp.Diff(want, exit); diff != "" {
		t.Errorf("ExitError (-want +got):\n%s", diff)
	}
	if string(out) != "partial\n" {
		t.Errorf("stdout = %q; want partial", out)
	}
	for _, s := range []string{"pool.dev.node[1]: run ", "exited 100", "line15"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
}

func TestDialHostKey(t *testing.T) {
	n := startNode(t, "", 0)
	_, otherKey, _ := keyPair(t)
	wrongSigner, _, _ := keyPair(t)

	t.Run("mismatch", func(t *testing.T) {
		ep := n.ep
		ep.HostKey = otherKey
		_, err := cluster.Dial(context.Background(), ep)
		if !errors.Is(err, cluster.ErrHostKeyMismatch) {
			t.Fatalf("err = %v; want ErrHostKeyMismatch", err)
		}
		pinned, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(otherKey))
		presented, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(n.hostKey))
		for _, s := range []string{"pool.dev.node[1]", "host key changed", ssh.FingerprintSHA256(pinned), ssh.FingerprintSHA256(presented)} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q lacks %q", err, s)
			}
		}
	})
	t.Run("none pinned", func(t *testing.T) {
		ep := n.ep
		ep.HostKey = ""
		if _, err := cluster.Dial(context.Background(), ep); !errors.Is(err, cluster.ErrHostKeyUnknown) {
			t.Fatalf("Dial err = %v; want ErrHostKeyUnknown", err)
		}
		c, presented, err := cluster.DialRecord(context.Background(), ep)
		if err != nil {
			t.Fatalf("DialRecord: %v", err)
		}
		c.Close()
		if presented != n.hostKey {
			t.Errorf("DialRecord recorded %q; want %q", presented, n.hostKey)
		}
		ep.HostKey = presented
		dial(t, ep)
	})
	t.Run("wrong client key", func(t *testing.T) {
		ep := n.ep
		ep.Signer = wrongSigner
		_, err := cluster.Dial(context.Background(), ep)
		if !errors.Is(err, cluster.ErrAuthFailed) || !strings.HasPrefix(err.Error(), "pool.dev.node[1]: ") {
			t.Fatalf("err = %v; want ErrAuthFailed naming the node", err)
		}
	})
}

func TestWaitDial(t *testing.T) {
	t.Run("server starts later", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // reserved: nothing listens until the node starts
		n := startNode(t, addr, 200*time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		c, err := cluster.WaitDial(ctx, n.ep, 25*time.Millisecond)
		if err != nil {
			t.Fatalf("WaitDial: %v", err)
		}
		defer c.Close()
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("connected after %s, before the server started", d)
		}
		if out, err := c.Output(ctx, "echo up"); err != nil || string(out) != "up\n" {
			t.Errorf("Output = %q, %v", out, err)
		}
	})

	n := startNode(t, "", 0)
	_, otherKey, _ := keyPair(t)
	wrongSigner, _, _ := keyPair(t)
	fastFailures := map[string]struct {
		edit func(*cluster.Endpoint)
		want error
	}{
		"host key mismatch": {func(ep *cluster.Endpoint) { ep.HostKey = otherKey }, cluster.ErrHostKeyMismatch},
		"auth failure":      {func(ep *cluster.Endpoint) { ep.Signer = wrongSigner }, cluster.ErrAuthFailed},
		"no pinned key":     {func(ep *cluster.Endpoint) { ep.HostKey = "" }, cluster.ErrHostKeyUnknown},
	}
	for name, tc := range fastFailures {
		t.Run(name, func(t *testing.T) {
			ep := n.ep
			tc.edit(&ep)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			_, err := cluster.WaitDial(ctx, ep, 25*time.Millisecond)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v; want %v", err, tc.want)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("WaitDial took %s; want an immediate failure", d)
			}
		})
	}

	t.Run("gives up at ctx end", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ep := n.ep
		ep.Port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err = cluster.WaitDial(ctx, ep, 25*time.Millisecond)
		// Normally connection refused; a loaded machine may time out the
		// connect instead. Either way the dial error is wrapped.
		var opErr *net.OpError
		if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &opErr) || opErr.Op != "dial" {
			t.Errorf("err = %v; want deadline exceeded wrapping the dial error", err)
		}
		if err != nil && (!strings.Contains(err.Error(), "gave up after") || !strings.HasPrefix(err.Error(), "pool.dev.node[1]: ")) {
			t.Errorf("err = %q; want the node and how long it waited", err)
		}
	})
}

func TestDirectTCPIP(t *testing.T) {
	n := startNode(t, "", 0)
	c := dial(t, n.ep)
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

	conn, err := c.Conn().Dial("tcp", echo.Addr().String())
	if err != nil {
		t.Fatalf("forward to loopback: %v", err)
	}
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
		t.Errorf("echo = %q, %v", buf, err)
	}
	conn.Close()

	// 10.255.255.1 drops packets: a server that dialled it would hang for
	// seconds and fail with another reason.
	start := time.Now()
	conn, err = c.Conn().Dial("tcp", "10.255.255.1:80")
	if err == nil {
		conn.Close()
		t.Fatal("forward to 10.255.255.1:80 accepted; want refused")
	}
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
		t.Errorf("err = %v; want administratively prohibited", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusal took %s; the server must refuse without dialling", d)
	}
}

func TestUpload(t *testing.T) {
	n := startNode(t, "", 0)
	c := dial(t, n.ep)
	dir := t.TempDir()
	tests := map[string]struct {
		path    string
		content string
		mode    os.FileMode
	}{
		"new file in new directories": {filepath.Join(dir, "opt/skyward/bin/skyward"), "#!/bin/sh\necho agent\n", 0o755},
		"replaces a file":             {filepath.Join(dir, "opt/skyward/bin/skyward"), "second version\n", 0o750},
		"private file":                {filepath.Join(dir, "token"), "secret", 0o600},
		"large file":                  {filepath.Join(dir, "big"), strings.Repeat("0123456789abcdef", 1<<16), 0o644},
	}
	for _, name := range []string{"new file in new directories", "replaces a file", "private file", "large file"} {
		tc := tests[name]
		t.Run(name, func(t *testing.T) {
			if err := c.Upload(context.Background(), strings.NewReader(tc.content), tc.path, tc.mode); err != nil {
				t.Fatalf("Upload: %v", err)
			}
			got, err := os.ReadFile(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.content {
				t.Errorf("content differs: got %d bytes, want %d", len(got), len(tc.content))
			}
			fi, err := os.Stat(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tc.mode {
				t.Errorf("mode = %v; want %v", fi.Mode().Perm(), tc.mode)
			}
			entries, _ := os.ReadDir(filepath.Dir(tc.path))
			for _, e := range entries {
				if strings.Contains(e.Name(), ".tmp-") {
					t.Errorf("temporary file %s left behind", e.Name())
				}
			}
		})
	}
}

// TestLost drops a connection on the way to the node: Lost turns true. A
// connection ended by Close is not lost.
func TestLost(t *testing.T) {
	n := startNode(t, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	proxied := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", net.JoinHostPort(n.ep.Host, strconv.Itoa(n.ep.Port)))
		if err != nil {
			c.Close()
			return
		}
		go io.Copy(up, c)
		go io.Copy(c, up)
		proxied <- c
	}()
	ep := n.ep
	ep.Port = ln.Addr().(*net.TCPAddr).Port
	c := dial(t, ep)
	if c.Lost() {
		t.Fatal("Lost is true on a new connection")
	}
	(<-proxied).Close()
	deadline := time.Now().Add(5 * time.Second)
	for !c.Lost() {
		if time.Now().After(deadline) {
			t.Fatal("Lost is still false 5s after the connection dropped")
		}
		time.Sleep(10 * time.Millisecond)
	}

	closed := dial(t, n.ep)
	closed.Close()
	time.Sleep(50 * time.Millisecond)
	if closed.Lost() {
		t.Error("Lost is true after Close")
	}
}
