package cluster_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skyward-sh/skyward/cluster"
)

func TestExpandProxyCommand(t *testing.T) {
	tests := map[string]struct {
		cmd  string
		port int
		want string
	}{
		"all tokens":     {"ssh -W %h:%p %r@bastion", 2222, "ssh -W 10.0.0.4:2222 ubuntu@bastion"},
		"default port":   {"nc %h %p", 0, "nc 10.0.0.4 22"},
		"percent":        {"echo 100%% %h", 22, "echo 100% 10.0.0.4"},
		"provider token": {"tunnel %i %h", 22, "tunnel %i 10.0.0.4"},
		"trailing %":     {"x %", 22, "x %"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := cluster.ExpandProxyCommand(tc.cmd, "10.0.0.4", tc.port, "ubuntu"); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// bash relays stdin and stdout to a TCP address, as nc would: the test
// needs nothing but bash.
const relay = `bash -c 'exec 3<>/dev/tcp/%h/%p; cat <&3 & cat >&3'`

func TestDialProxyCommand(t *testing.T) {
	n := startNode(t, "", 0)
	ep := n.ep
	mark := filepath.Join(t.TempDir(), "pid")
	// The host in the endpoint is only what the command is given: the
	// command proves it ran by leaving its pid.
	ep.ProxyCommand = "echo $$ > " + mark + "; " + relay
	c := dial(t, ep)
	var out bytes.Buffer
	code, err := c.Run(context.Background(), "echo through the proxy", nil, &out, &out)
	if err != nil || code != 0 {
		t.Fatalf("run over the proxy: exit %d, %v (%s)", code, err, out.String())
	}
	if got := strings.TrimSpace(out.String()); got != "through the proxy" {
		t.Errorf("output %q", got)
	}
	b, err := os.ReadFile(mark)
	if err != nil {
		t.Fatalf("the proxy command did not run: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	// Close ends the command: Dial's caller owns no process.
	deadline := time.Now().Add(2 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the proxy command (pid %d) still runs after Close", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDialProxyCommandFails(t *testing.T) {
	n := startNode(t, "", 0)
	ep := n.ep
	ep.ProxyCommand = "echo no route to %h >&2; exit 7"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := cluster.Dial(ctx, ep)
	if err == nil {
		t.Fatal("dial through a failing proxy command succeeded")
	}
	for _, s := range []string{"pool.dev.node[1]", "exit status 7", "no route to " + ep.Host} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
}
