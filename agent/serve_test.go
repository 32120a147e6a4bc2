//go:build linux

package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const testToken = "0123456789abcdef0123456789abcdef"

// startDaemon runs a Daemon on loopback until the test ends; logs gathers
// its log lines.
func startDaemon(t *testing.T, cfg Config, logs *syncBuffer) *Daemon {
	t.Helper()
	if cfg.ControlAddr == "" {
		cfg.ControlAddr = "127.0.0.1:0"
	}
	logf := func(f string, a ...any) { fmt.Fprintf(logs, f+"\n", a...) }
	d, err := NewDaemon(cfg, logf)
	if err != nil {
		t.Fatalf("NewDaemon: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return within 5s of cancellation")
		}
	})
	return d
}

func getStatus(t *testing.T, d *Daemon) Status {
	t.Helper()
	resp, err := http.Get("http://" + d.ControlAddr().String() + "/v1/status")
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: %s", resp.Status)
	}
	var st Status
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		t.Fatalf("status: %v", err)
	}
	return st
}

// waitFor polls cond until it holds or 5s have passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func clusterPort(d *Daemon) int { return d.ClusterAddr().(*net.TCPAddr).Port }

// announce tells the head, as the controller does, that node has addr; it
// returns the HTTP status.
func announce(t *testing.T, head *Daemon, token string, node, addr string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, "http://"+head.ControlAddr().String()+"/v1/members/"+node,
		strings.NewReader(fmt.Sprintf(`{"addr":%q}`, addr)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestCluster starts a head and workers in-process: the workers with the
// token join, the one without never does. The head started when the pool
// had two nodes, and node 2 still joins: pools grow without a head restart.
func TestCluster(t *testing.T) {
	var headLog, workerLog, badLog syncBuffer
	head := startDaemon(t, Config{Pool: "dev", Node: 0, NumNodes: 2, HeadAddr: "127.0.0.1", Token: testToken}, &headLog)
	port := clusterPort(head)
	worker := func(node int, token string, logs *syncBuffer) *Daemon {
		return startDaemon(t, Config{Pool: "dev", Node: node, NumNodes: 4, HeadAddr: "127.0.0.1", ClusterPort: port, Token: token}, logs)
	}
	for _, n := range []string{"1", "2", "3"} {
		if code := announce(t, head, testToken, n, "127.0.0.1"); code != http.StatusOK {
			t.Fatalf("announce node %s: %d", n, code)
		}
	}
	w1, w2 := worker(1, testToken, &workerLog), worker(2, testToken, &workerLog)
	bad := worker(3, "not-the-token", &badLog)

	waitFor(t, "three members", func() bool { return len(getStatus(t, head).Members) == 3 })
	waitFor(t, "the refused join", func() bool { return strings.Contains(headLog.String(), "refused a join") })
	for _, w := range []*Daemon{w1, w2} {
		waitFor(t, "joined", func() bool { return getStatus(t, w).Joined })
	}

	st := getStatus(t, head)
	var nodes []string
	for _, m := range st.Members {
		nodes = append(nodes, fmt.Sprintf("%d@%s", m.Node, m.Addr))
		if time.Since(m.LastSeen) > time.Minute {
			t.Errorf("member %d last seen at %s", m.Node, m.LastSeen)
		}
	}
	if diff := cmp.Diff([]string{"0@127.0.0.1", "1@127.0.0.1", "2@127.0.0.1"}, nodes); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	if !st.IsHead || !st.Joined || st.Pool != "dev" || st.NumNodes != 2 || st.Version != Version || st.PID != os.Getpid() || st.StartedAt.IsZero() {
		t.Errorf("head status %+v", st)
	}
	for i, w := range []*Daemon{w1, w2} {
		st := getStatus(t, w)
		if st.IsHead || !st.Joined || st.Node != i+1 || st.Members != nil {
			t.Errorf("worker %d status %+v", i+1, st)
		}
	}
	if st := getStatus(t, bad); st.Joined {
		t.Errorf("worker with a wrong token says it joined")
	}
	// The refusal is logged when the bad worker's join comes back, which
	// may be a moment after the others joined.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(badLog.String(), "401") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(badLog.String(), "401") {
		t.Errorf("worker with a wrong token did not log the refusal:\n%s", badLog.String())
	}
	for name, logs := range map[string]*syncBuffer{"head": &headLog, "worker": &workerLog, "bad worker": &badLog} {
		if strings.Contains(logs.String(), testToken) {
			t.Errorf("%s log holds the token:\n%s", name, logs.String())
		}
	}
}

// TestJoin: the head admits only the nodes the controller announced, from
// the address announced for each, whatever the request claims.
func TestJoin(t *testing.T) {
	var logs syncBuffer
	head := startDaemon(t, Config{Pool: "dev", NumNodes: 3, HeadAddr: "10.0.0.1", Token: testToken}, &logs)
	url := fmt.Sprintf("http://127.0.0.1:%d/v1/join", clusterPort(head))
	for node, addr := range map[string]string{"1": "10.0.0.2", "2": "127.0.0.1", "4": "127.0.0.1"} {
		if code := announce(t, head, testToken, node, addr); code != http.StatusOK {
			t.Fatalf("announce node %s: %d", node, code)
		}
	}
	tests := map[string]struct {
		auth   string
		body   string
		want   int
		member string // node@addr expected among the members, if any
	}{
		"no token":           {body: `{"node":2,"addr":"127.0.0.1"}`, want: http.StatusUnauthorized},
		"wrong token":        {auth: "Bearer nope", body: `{"node":2,"addr":"127.0.0.1"}`, want: http.StatusUnauthorized},
		"token prefix":       {auth: "Bearer " + testToken[:10], body: `{"node":2}`, want: http.StatusUnauthorized},
		"not bearer":         {auth: "Basic " + testToken, body: `{"node":2}`, want: http.StatusUnauthorized},
		"node 0":             {auth: "Bearer " + testToken, body: `{"node":0,"addr":"10.0.0.9"}`, want: http.StatusBadRequest},
		"node -1":            {auth: "Bearer " + testToken, body: `{"node":-1,"addr":"10.0.0.9"}`, want: http.StatusBadRequest},
		"not of the pool":    {auth: "Bearer " + testToken, body: `{"node":7,"addr":"6.6.6.7"}`, want: http.StatusForbidden},
		"from another addr":  {auth: "Bearer " + testToken, body: `{"node":1,"addr":"10.0.0.2"}`, want: http.StatusForbidden},
		"bad body":           {auth: "Bearer " + testToken, body: `{`, want: http.StatusBadRequest},
		"joins":              {auth: "Bearer " + testToken, body: `{"node":2}`, want: http.StatusOK, member: "2@127.0.0.1"},
		"claim is not taken": {auth: "Bearer " + testToken, body: `{"node":4,"addr":"6.6.6.7"}`, want: http.StatusOK, member: "4@127.0.0.1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d; want %d", resp.StatusCode, tc.want)
			}
			if tc.member != "" {
				found := false
				for _, m := range getStatus(t, head).Members {
					found = found || fmt.Sprintf("%d@%s", m.Node, m.Addr) == tc.member
				}
				if !found {
					t.Errorf("%s is not a member", tc.member)
				}
			}
		})
	}
	for _, m := range getStatus(t, head).Members {
		if m.Node == 1 || m.Node == 7 || m.Addr == "6.6.6.7" {
			t.Errorf("refused join became member %+v", m)
		}
	}
	if !strings.Contains(logs.String(), "refused a join of node 7 from 127.0.0.1: node 7 is not a node of pool dev") {
		t.Errorf("refusal not logged:\n%s", logs.String())
	}

	// Announcing another address for a member drops it until the node at
	// that address joins; the announcement needs the token.
	if code := announce(t, head, "nope", "2", "10.0.0.5"); code != http.StatusUnauthorized {
		t.Errorf("announce without the token: %d", code)
	}
	if code := announce(t, head, testToken, "2", "10.0.0.5"); code != http.StatusOK {
		t.Errorf("announce: %d", code)
	}
	for _, m := range getStatus(t, head).Members {
		if m.Node == 2 {
			t.Errorf("replaced node still a member: %+v", m)
		}
	}
	for _, bad := range []string{"0", "x", "-1"} {
		if code := announce(t, head, testToken, bad, "10.0.0.5"); code != http.StatusBadRequest {
			t.Errorf("announce node %q: %d", bad, code)
		}
	}
	if code := announce(t, head, testToken, "3", "not an address"); code != http.StatusBadRequest {
		t.Errorf("announce a bad address: %d", code)
	}
	// Only the cluster API listens there; only the status on the control API.
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/join: %s", resp.Status)
	}
	resp, err = http.Post("http://"+head.ControlAddr().String()+"/v1/join", "application/json", strings.NewReader(`{"node":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("join on the control API: %s", resp.Status)
	}
}

func TestNewDaemonRefuses(t *testing.T) {
	ok := Config{Pool: "dev", Node: 1, NumNodes: 2, HeadAddr: "127.0.0.1", ClusterPort: 7070, ControlAddr: "127.0.0.1:0", Token: testToken}
	tests := map[string]struct {
		tweak func(*Config)
		want  string
	}{
		"all interfaces":    {func(c *Config) { c.ControlAddr = "0.0.0.0:0" }, "not a loopback"},
		"empty host":        {func(c *Config) { c.ControlAddr = ":0" }, "not a loopback"},
		"private address":   {func(c *Config) { c.ControlAddr = "10.1.2.3:7071" }, "not a loopback"},
		"IPv6 any":          {func(c *Config) { c.ControlAddr = "[::]:0" }, "not a loopback"},
		"host name":         {func(c *Config) { c.ControlAddr = "localhost:0" }, "not a loopback"},
		"no port":           {func(c *Config) { c.ControlAddr = "127.0.0.1" }, "control address"},
		"no token":          {func(c *Config) { c.Token = "" }, "no cluster token"},
		"no head address":   {func(c *Config) { c.HeadAddr = "" }, "no head address"},
		"no cluster port":   {func(c *Config) { c.ClusterPort = 0 }, "bad cluster port"},
		"node out of range": {func(c *Config) { c.Node = 2 }, "out of range"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := ok
			tc.tweak(&cfg)
			d, err := NewDaemon(cfg, nil)
			if err == nil {
				d.Close()
				t.Fatalf("NewDaemon accepted %+v", cfg)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error %q holds the token", err)
			}
		})
	}
	d, err := NewDaemon(ok, nil)
	if err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	d.Close()
}

// TestRunServe runs the command as the CLI does: pid file, logs, SIGTERM.
func TestRunServe(t *testing.T) {
	dir := t.TempDir()
	cfgPath, pidFile := filepath.Join(dir, "agent.json"), filepath.Join(dir, "agent.pid")
	data, err := json.Marshal(Config{Pool: "dev", Node: 0, NumNodes: 1, HeadAddr: "127.0.0.1", ControlAddr: "127.0.0.1:0", Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- RunServe([]string{"-config", cfgPath, "-pid-file", pidFile}, &stderr) }()
	waitFor(t, "the pid file", func() bool {
		b, err := os.ReadFile(pidFile)
		return err == nil && string(b) == strconv.Itoa(os.Getpid())+"\n"
	})
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after SIGTERM; want 0\n%s", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunServe did not return after SIGTERM")
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
	logs := stderr.String()
	if !strings.Contains(logs, "control API on 127.0.0.1:") || !strings.Contains(logs, "stopped") {
		t.Errorf("log:\n%s", logs)
	}
	if strings.Contains(logs, testToken) {
		t.Errorf("log holds the token:\n%s", logs)
	}
	// Timestamps: "skyward-agent: 2006/01/02 15:04:05.000000 ...".
	if first, _, _ := strings.Cut(logs, "\n"); !bytes.HasPrefix([]byte(first), []byte("skyward-agent: 2")) {
		t.Errorf("log line without a timestamp: %q", first)
	}
}

func TestRunServeFailures(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, cfg any) string {
		p := filepath.Join(dir, name)
		data, _ := json.Marshal(cfg)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pidFile := filepath.Join(dir, "agent.pid")
	tests := map[string]struct {
		args []string
		want int
		log  string
	}{
		"unknown flag":   {[]string{"-nope"}, 2, ""},
		"extra argument": {[]string{"extra"}, 2, "unexpected argument"},
		"no config":      {[]string{"-config", filepath.Join(dir, "missing.json"), "-pid-file", pidFile}, 1, "read config"},
		"bad json":       {[]string{"-config", write("bad.json", "not an object"), "-pid-file", pidFile}, 1, "read config"},
		"public control": {[]string{"-config", write("public.json", Config{ControlAddr: "0.0.0.0:0", Token: testToken}), "-pid-file", pidFile}, 1, "not a loopback"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			if got := RunServe(tc.args, &stderr); got != tc.want || !strings.Contains(stderr.String(), tc.log) {
				t.Errorf("RunServe(%q) = %d, stderr %q; want %d and %q", tc.args, got, stderr.String(), tc.want, tc.log)
			}
			if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
				t.Errorf("pid file written by an agent that did not start")
			}
		})
	}
}

// TestExpectedSurvivesRestart: the head keeps the announced workers in a
// file, so that an agent restarted by an apply still admits them.
func TestExpectedSurvivesRestart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "members.json")
	start := func() (*Daemon, context.CancelFunc, chan error) {
		d, err := NewDaemon(Config{Pool: "dev", HeadAddr: "127.0.0.1", ControlAddr: "127.0.0.1:0", Token: testToken}, nil)
		if err != nil {
			t.Fatal(err)
		}
		d.membersFile = file
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- d.Run(ctx) }()
		return d, cancel, errc
	}
	d, cancel, errc := start()
	waitFor(t, "the control API", func() bool { return announce(t, d, testToken, "2", "127.0.0.1") == http.StatusOK })
	cancel()
	<-errc
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("members file: %v %v", fi, err)
	}

	d, cancel, errc = start()
	defer func() { cancel(); <-errc }()
	join := func(node int) int {
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/v1/join", clusterPort(d)),
			strings.NewReader(fmt.Sprintf(`{"node":%d}`, node)))
		req.Header.Set("Authorization", "Bearer "+testToken)
		var code int
		waitFor(t, "the cluster API", func() bool {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			resp.Body.Close()
			code = resp.StatusCode
			return true
		})
		return code
	}
	if code := join(2); code != http.StatusOK {
		t.Errorf("announced node after a restart: %d", code)
	}
	if code := join(3); code != http.StatusForbidden {
		t.Errorf("unannounced node after a restart: %d", code)
	}
}

// TestJoinWaitsForAnnouncement checks that a join arriving before the
// controller's announcement of its node is held and admitted once the
// announcement comes, and that one never announced is refused after
// joinHold.
func TestJoinWaitsForAnnouncement(t *testing.T) {
	defer func(d time.Duration) { joinHold = d }(joinHold)
	// Far longer than the test: only the announcement may end the hold.
	joinHold = time.Minute
	d := &Daemon{
		cfg:  Config{Pool: "dev", Token: "tok", HeadAddr: "10.0.0.1"},
		logf: func(string, ...any) {}, started: time.Now(),
		members:  map[int]Member{0: {Node: 0, Addr: "10.0.0.1"}},
		expected: map[int]string{},
		refused:  map[string]bool{}, execs: map[string]bool{},
	}
	call := func(h http.HandlerFunc, method, target, node, body string) int {
		req := httptest.NewRequest(method, target, strings.NewReader(body))
		req.RemoteAddr = "10.0.0.2:4242"
		req.Header.Set("Authorization", "Bearer tok")
		req.SetPathValue("node", node)
		rec := httptest.NewRecorder()
		h(rec, req)
		return rec.Code
	}
	joined := make(chan int, 1)
	go func() { joined <- call(d.serveJoin, http.MethodPost, "/v1/join", "", `{"node":1}`) }()
	time.Sleep(50 * time.Millisecond)
	// An announcement of another node does not admit node 1.
	if code := call(d.serveExpect, http.MethodPut, "/v1/members/2", "2", `{"addr":"10.0.0.3"}`); code != http.StatusOK {
		t.Fatalf("announce node 2: %d", code)
	}
	select {
	case code := <-joined:
		t.Fatalf("join of node 1 answered %d before node 1 was announced", code)
	case <-time.After(50 * time.Millisecond):
	}
	if code := call(d.serveExpect, http.MethodPut, "/v1/members/1", "1", `{"addr":"10.0.0.2"}`); code != http.StatusOK {
		t.Fatalf("announce node 1: %d", code)
	}
	if code := <-joined; code != http.StatusOK {
		t.Fatalf("held join: %d, want 200", code)
	}
	if _, ok := d.members[1]; !ok {
		t.Fatalf("node 1 is not a member after its join: %v", d.members)
	}

	joinHold = 50 * time.Millisecond
	start := time.Now()
	if code := call(d.serveJoin, http.MethodPost, "/v1/join", "", `{"node":3}`); code != http.StatusForbidden {
		t.Fatalf("join of a node never announced: %d, want 403", code)
	}
	if waited := time.Since(start); waited < joinHold {
		t.Errorf("a join of a node never announced was refused after %s, before joinHold (%s)", waited, joinHold)
	}
}
