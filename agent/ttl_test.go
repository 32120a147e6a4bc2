//go:build linux

package agent

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshdFiles writes a host key and an authorized_keys file for one client
// key.
func sshdFiles(t *testing.T) (hostFile, akFile string, host ssh.PublicKey, client ssh.Signer) {
	t.Helper()
	dir := t.TempDir()
	hostPEM, hostSigner := newKey(t)
	_, client = newKey(t)
	hostFile, akFile = filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(hostFile, hostPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(akFile, ssh.MarshalAuthorizedKey(client.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	return hostFile, akFile, hostSigner.PublicKey(), client
}

// TestServeSSHTTL checks that the server stops by itself once its ttl has
// passed, killing what its sessions run, and returns nil. (Not being PID 1,
// it leaves the other processes alone.)
func TestServeSSHTTL(t *testing.T) {
	withLoginShell(t, currentUser(t), "/bin/sh")
	hostFile, akFile, hostKey, client := sshdFiles(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Long enough for the session below to start on a loaded machine: at
	// 500 ms the server was seen to stop before it had.
	const ttl = 2 * time.Second
	var logs syncBuffer
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		errc <- ServeSSH(context.Background(), SSHDConfig{
			Listener:           ln,
			HostKeyFile:        hostFile,
			AuthorizedKeysFile: akFile,
			Logf:               func(f string, a ...any) { fmt.Fprintf(&logs, f+"\n", a...) },
			TTL:                ttl,
		})
	}()
	c, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{
		User: currentUser(t), Auth: []ssh.AuthMethod{ssh.PublicKeys(client)}, HostKeyCallback: ssh.FixedHostKey(hostKey), Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	if err := sess.Start(fmt.Sprintf("sleep 30 & echo $! > %s; wait", pidFile)); err != nil {
		t.Fatal(err)
	}
	pid := waitPidFile(t, pidFile)
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("ServeSSH: %v; want nil after the ttl", err)
		}
		if d := time.Since(start); d < ttl {
			t.Errorf("ServeSSH returned after %s, before the ttl of %s", d, ttl)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeSSH still serves long after its ttl")
	}
	waitGone(t, pid)
	if !strings.Contains(logs.String(), "ttl of 2s expired") {
		t.Errorf("log lacks the ttl:\n%s", logs.String())
	}
}

// TestRunSSHDTTL checks that `skyward agent sshd -ttl` exits 0 once the ttl
// has passed.
func TestRunSSHDTTL(t *testing.T) {
	hostFile, akFile, _, _ := sshdFiles(t)
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- RunSSHD([]string{"-listen=127.0.0.1:0", "-host-key=" + hostFile, "-authorized-keys=" + akFile, "-ttl=200ms"}, &stderr)
	}()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d; want 0\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunSSHD still runs long after its ttl")
	}
	if !strings.Contains(stderr.String(), "ttl of 200ms expired") {
		t.Errorf("log lacks the ttl:\n%s", stderr.String())
	}
	var bad bytes.Buffer
	if code := RunSSHD([]string{"-ttl=soon"}, &bad); code != 2 {
		t.Errorf("bad -ttl: exit %d; want 2", code)
	}
}
