//go:build linux

package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/skyward-sh/skyward/cluster"
)

// procRunning reports whether pid exists and is not a zombie.
func procRunning(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

func TestCancelKillsProcessGroup(t *testing.T) {
	n := startNode(t, "", 0)
	tests := map[string]func(c *cluster.Client, cancel context.CancelFunc){
		"context cancelled": func(_ *cluster.Client, cancel context.CancelFunc) { cancel() },
		"client closed":     func(c *cluster.Client, _ context.CancelFunc) { c.Close() },
	}
	for name, end := range tests {
		t.Run(name, func(t *testing.T) {
			c := dial(t, n.ep)
			pidFile := filepath.Join(t.TempDir(), "pid")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type ran struct {
				code int
				err  error
			}
			done := make(chan ran, 1)
			go func() {
				code, err := c.Run(ctx, fmt.Sprintf("sleep 30 & echo $! > %s; wait", pidFile), nil, nil, nil)
				done <- ran{code, err}
			}()
			var pid int
			for deadline := time.Now().Add(5 * time.Second); pid == 0; {
				if b, err := os.ReadFile(pidFile); err == nil && bytes.HasSuffix(b, []byte("\n")) {
					pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
				} else if time.Now().After(deadline) {
					t.Fatal("the remote command did not start")
				}
				time.Sleep(5 * time.Millisecond)
			}
			end(c, cancel)
			select {
			case r := <-done:
				if r.code != -1 || r.err == nil {
					t.Errorf("Run = %d, %v; want -1 and an error", r.code, r.err)
				}
				if name == "context cancelled" && !errors.Is(r.err, context.Canceled) {
					t.Errorf("Run err = %v; want context.Canceled", r.err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return")
			}
			for deadline := time.Now().Add(3 * time.Second); procRunning(pid); {
				if time.Now().After(deadline) {
					t.Fatalf("remote process %d still runs", pid)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

func TestShellPTY(t *testing.T) {
	n := startNode(t, "", 0)
	c := dial(t, n.ep)
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	fd := int(tty.Fd())
	before, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	info := cluster.TermInfo{IsTerminal: true, Fd: fd, Term: "xterm", Width: 100, Height: 30}
	code, err := c.Shell(context.Background(), "tty; stty size; exit 5", strings.NewReader(""), &out, &out, info)
	if err != nil || code != 5 {
		t.Fatalf("Shell = %d, %v; want 5", code, err)
	}
	if !regexp.MustCompile(`^/dev/pts/\d+\r\n30 100\r\n$`).MatchString(out.String()) {
		t.Errorf("output %q; want a /dev/pts path and the size 30 100", out.String())
	}
	after, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("local terminal not restored (-before +after):\n%s", diff)
	}
}
