package agent

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Join timing of workers; variables so that tests can shorten them.
var (
	// A worker retries a refused or failed join every joinRetryMin for
	// joinRetryFlat (a head being brought up with it starts within
	// moments), then with a backoff up to joinRetryMax, until the head
	// accepts.
	joinRetryMin  = 20 * time.Millisecond
	joinRetryMax  = 100 * time.Millisecond
	joinRetryFlat = 2 * time.Second
	// joinHold is how long the head holds a join from a node it does
	// not know yet, waiting for the controller's announcement of it.
	joinHold      = 2 * time.Second
	joinHeartbeat = 2 * time.Second // once accepted
)

// RunServe is `skyward agent serve [-config PATH] [-pid-file PATH]
// [-detach [-log PATH]]`: the node's agent daemon. It writes its pid to the
// pid file once it listens, serves until SIGTERM or SIGINT, removes the pid
// file and returns 0; it returns 1 when it cannot start and 2 on bad usage.
// It logs to stderr. With -detach it starts itself again in a new session,
// logging to -log, and returns at once.
func RunServe(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("skyward agent serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", Root+"/agent.json", "the agent's configuration")
	pidFile := fs.String("pid-file", Root+"/agent.pid", "where to write the pid")
	detach := fs.Bool("detach", false, "run in the background, in a session of its own, logging to -log")
	logFile := fs.String("log", Root+"/agent.log", "the log file, with -detach")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *detach {
		if err := detachServe(*cfgPath, *pidFile, *logFile); err != nil {
			fmt.Fprintf(stderr, "skyward agent serve: %v\n", err)
			return 1
		}
		return 0
	}
	logger := log.New(stderr, "skyward-agent: ", log.LstdFlags|log.Lmicroseconds)
	cfg, err := readConfig(*cfgPath)
	if err != nil {
		logger.Printf("%v", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d, err := NewDaemon(cfg, logger.Printf)
	if err != nil {
		logger.Printf("%v", err)
		return 1
	}
	d.membersFile = filepath.Join(filepath.Dir(*cfgPath), "members.json")
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := writeFile(*pidFile, pid, 0o644); err != nil {
		d.Close()
		logger.Printf("%v", err)
		return 1
	}
	defer func() {
		// A newer agent may own the file by now.
		if b, err := os.ReadFile(*pidFile); err == nil && bytes.Equal(b, pid) {
			os.Remove(*pidFile)
		}
	}()
	if err := d.Run(ctx); err != nil {
		logger.Printf("%v", err)
		return 1
	}
	logger.Printf("stopped")
	return 0
}

func readConfig(path string) (Config, error) {
	var cfg Config
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return cfg, fmt.Errorf("read config %s: %w", path, err)
	}
	return cfg, nil
}

// Serve runs an agent with cfg until ctx is done: NewDaemon, then Run.
func Serve(ctx context.Context, cfg Config, logf func(format string, args ...any)) error {
	d, err := NewDaemon(cfg, logf)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

// Daemon is one node's agent: the control API (status and task executions)
// on the loopback address of Config.ControlAddr, on the head (node 0) the
// cluster API on 0.0.0.0:ClusterPort, and on a worker the join loop that
// gets it (and keeps it) into the head's members. Its methods are safe for
// concurrent use.
type Daemon struct {
	cfg     Config
	logf    func(format string, args ...any)
	started time.Time
	control net.Listener
	cluster net.Listener // head only

	// root is skyward's directory on the node, Root; tests set another
	// before Run.
	root string

	// membersFile, when set, is where the head keeps expected across
	// restarts.
	membersFile string

	mu      sync.Mutex
	joined  bool
	members map[int]Member // head only
	// expected holds, on the head, the private address of every worker
	// the controller announced (PUT /v1/members/{node}): the only joins
	// the head accepts.
	expected map[int]string
	// announced, when not nil, is closed (and dropped) when an
	// announcement arrives: joins that wait for theirs wait on it.
	announced chan struct{}
	refused   map[string]bool
	ran       bool
	execs     map[string]bool // ids of the running executions
	closing   bool            // Run is stopping: no execution starts
	// execWG counts the running executions; see beginExec.
	execWG sync.WaitGroup

	// storeWanted is closed once a command asked for the collections
	// store (head: POST /v1/store/start), through storeOnce.
	storeWanted chan struct{}
	storeOnce   sync.Once
}

// NewDaemon checks cfg and opens the daemon's listeners; Run serves them.
// A control address that is not a loopback IP address is refused. logf,
// which may be nil, gets one line per event; it never gets the token.
func NewDaemon(cfg Config, logf func(format string, args ...any)) (*Daemon, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if cfg.ControlAddr == "" {
		cfg.ControlAddr = ControlAddr
	}
	host, _, err := net.SplitHostPort(cfg.ControlAddr)
	if err != nil {
		return nil, fmt.Errorf("control address %q: %w", cfg.ControlAddr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("control address %q is not a loopback IP address", cfg.ControlAddr)
	}
	switch {
	case cfg.Token == "":
		return nil, errors.New("config: no cluster token")
	case cfg.Node < 0 || cfg.NumNodes > 0 && cfg.Node >= cfg.NumNodes:
		return nil, fmt.Errorf("config: node %d out of range for %d nodes", cfg.Node, cfg.NumNodes)
	case cfg.ClusterPort < 0 || cfg.ClusterPort > 65535 || cfg.Node != 0 && cfg.ClusterPort == 0:
		return nil, fmt.Errorf("config: bad cluster port %d", cfg.ClusterPort)
	case cfg.Node != 0 && cfg.HeadAddr == "":
		return nil, errors.New("config: no head address")
	}
	d := &Daemon{cfg: cfg, logf: logf, started: time.Now(), root: Root, refused: map[string]bool{}, execs: map[string]bool{},
		announced:   make(chan struct{}),
		storeWanted: make(chan struct{})}
	if d.control, err = net.Listen("tcp", cfg.ControlAddr); err != nil {
		return nil, fmt.Errorf("control API: %w", err)
	}
	if cfg.Node == 0 {
		d.joined = true
		d.members = map[int]Member{0: {Node: 0, Addr: cfg.HeadAddr, LastSeen: d.started}}
		d.expected = map[int]string{}
		if d.cluster, err = net.Listen("tcp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(cfg.ClusterPort))); err != nil {
			d.control.Close()
			return nil, fmt.Errorf("cluster API: %w", err)
		}
	}
	return d, nil
}

// ControlAddr is the address the control API listens on.
func (d *Daemon) ControlAddr() net.Addr { return d.control.Addr() }

// ClusterAddr is the address the cluster API listens on; nil on a worker.
func (d *Daemon) ClusterAddr() net.Addr {
	if d.cluster == nil {
		return nil
	}
	return d.cluster.Addr()
}

// Close closes the listeners of a daemon that is not run.
func (d *Daemon) Close() {
	d.control.Close()
	if d.cluster != nil {
		d.cluster.Close()
	}
}

// Run serves until ctx is done, then kills the running executions, closes
// the listeners, waits for its goroutines and returns nil; it returns an
// error when a listener fails.
// It may be called once.
func (d *Daemon) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.ran {
		d.mu.Unlock()
		return errors.New("agent: Run called twice")
	}
	d.ran = true
	d.mu.Unlock()

	if err := d.loadExpected(); err != nil {
		d.logf("%v", err)
	}
	control := http.NewServeMux()
	control.HandleFunc("GET /v1/status", d.serveStatus)
	control.HandleFunc("POST /v1/exec", d.serveExec)
	if d.cluster != nil {
		control.HandleFunc("PUT /v1/members/{node}", d.serveExpect)
		control.HandleFunc("PUT /v1/pool", d.servePool)
	}
	controlSrv := newHTTPServer(control)
	// An execution runs until its request's context ends, and Shutdown
	// waits for handlers without cancelling them: Run cancels the control
	// API's requests itself.
	requests, cancelRequests := context.WithCancelCause(context.Background())
	defer cancelRequests(nil)
	controlSrv.BaseContext = func(net.Listener) context.Context { return requests }
	servers := map[*http.Server]net.Listener{controlSrv: d.control}
	if d.cluster != nil {
		cluster := http.NewServeMux()
		cluster.HandleFunc("POST /v1/join", d.serveJoin)
		cluster.HandleFunc("GET /v1/store", d.serveStore)
		cluster.HandleFunc("POST /v1/store/start", d.serveStore)
		servers[newHTTPServer(cluster)] = d.cluster
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(servers))
	for srv, ln := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	role := "head"
	if d.cfg.Node != 0 {
		role = "worker of " + net.JoinHostPort(d.cfg.HeadAddr, strconv.Itoa(d.cfg.ClusterPort))
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.joinLoop(ctx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.runStore(ctx)
	}()
	if ttl, _ := time.ParseDuration(d.cfg.TTL); ttl > 0 {
		end := bootTime().Add(ttl)
		t := time.AfterFunc(time.Until(end), func() {
			d.logf("ttl of %s ended at %s; shutting the node down", ttl, end.Format(time.RFC3339))
			if err := powerOff(); err != nil {
				d.logf("shut down: %v", err)
			}
		})
		defer t.Stop()
	}
	d.logf("pool %s node %d/%d (%s), version %s: control API on %s", d.cfg.Pool, d.cfg.Node, d.cfg.NumNodes, role, Version, d.control.Addr())
	if d.cluster != nil {
		d.logf("cluster API on %s", d.cluster.Addr())
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	// Executions first: their process groups must be gone when Run
	// returns, and Shutdown would give up on their handlers after 2s.
	d.stopExecutions(cancelRequests)
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer scancel()
	for srv := range servers {
		_ = srv.Shutdown(sctx)
	}
	wg.Wait()
	return err
}

func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
}

// status is the daemon's current Status.
func (d *Daemon) status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := Status{Pool: d.cfg.Pool, Node: d.cfg.Node, NumNodes: d.cfg.NumNodes, IsHead: d.cfg.Node == 0,
		Version: Version, PID: os.Getpid(), StartedAt: d.started, Joined: d.joined}
	if d.members != nil {
		self := d.members[0]
		self.LastSeen = time.Now() // the head is alive: it answers
		d.members[0] = self
		for _, m := range d.members {
			st.Members = append(st.Members, m)
		}
		sort.Slice(st.Members, func(i, j int) bool { return st.Members[i].Node < st.Members[j].Node })
	}
	return st
}

func (d *Daemon) serveStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, d.status())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// joinRequest is the body of POST /v1/join.
type joinRequest struct {
	Node int    `json:"node"`
	Addr string `json:"addr"`
}

// checkToken reports whether r carries the pool's token. When it does not,
// it answers 401 and logs the first refusal of what (a join, an execution)
// from each host.
func (d *Daemon) checkToken(w http.ResponseWriter, r *http.Request, what string) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if ok && subtle.ConstantTimeCompare([]byte(token), []byte(d.cfg.Token)) == 1 {
		return true
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	key := what + " from " + host
	d.mu.Lock()
	first := !d.refused[key] && len(d.refused) < 1000
	if first {
		d.refused[key] = true
	}
	d.mu.Unlock()
	if first { // a refused worker retries up to once a second
		d.logf("refused %s: missing or wrong token", key)
	}
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong token"})
	return false
}

// serveJoin admits a worker on the head: only a node the controller
// announced, from the address the controller gave for it. A member is
// admitted once: later joins of the same node from that address are
// heartbeats. The address in the request is not trusted; the connection's
// own is used.
func (d *Daemon) serveJoin(w http.ResponseWriter, r *http.Request) {
	if !d.checkToken(w, r, "a join") {
		return
	}
	var req joinRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad join request: " + err.Error()})
		return
	}
	if req.Node <= 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("node %d out of range", req.Node)})
		return
	}
	from, _, _ := net.SplitHostPort(r.RemoteAddr)
	d.mu.Lock()
	want, known := d.expected[req.Node]
	// A worker's agent often starts before the controller has announced
	// it: the join waits a moment for the announcement rather than being
	// refused and retried later.
	if !known {
		hold := time.NewTimer(joinHold)
		defer hold.Stop()
		for waiting := true; !known && waiting; {
			if d.announced == nil {
				d.announced = make(chan struct{})
			}
			announced := d.announced
			d.mu.Unlock()
			select {
			case <-announced:
			case <-hold.C:
				waiting = false
			case <-r.Context().Done():
				waiting = false
			}
			d.mu.Lock()
			want, known = d.expected[req.Node]
		}
	}
	var refusal string
	switch {
	case !known:
		refusal = fmt.Sprintf("node %d is not a node of pool %s", req.Node, d.cfg.Pool)
	case !sameIP(want, from):
		refusal = fmt.Sprintf("node %d of pool %s has the address %s, not %s", req.Node, d.cfg.Pool, want, from)
	}
	if refusal != "" {
		key := fmt.Sprintf("join of node %d from %s", req.Node, from)
		first := !d.refused[key] && len(d.refused) < 1000
		if first {
			d.refused[key] = true
		}
		d.mu.Unlock()
		if first {
			d.logf("refused a %s: %s", key, refusal)
		}
		writeJSON(w, http.StatusForbidden, map[string]string{"error": refusal})
		return
	}
	_, member := d.members[req.Node]
	d.members[req.Node] = Member{Node: req.Node, Addr: want, LastSeen: time.Now()}
	d.mu.Unlock()
	if !member {
		d.logf("node %d joined from %s", req.Node, from)
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func sameIP(a, b string) bool {
	ia, ib := net.ParseIP(a), net.ParseIP(b)
	return ia != nil && ia.Equal(ib)
}

// expectRequest is the body of PUT /v1/members/{node}.
type expectRequest struct {
	Addr string `json:"addr"`
	// NumNodes, when set, is the pool's size now: the head takes it as
	// its num_nodes and forgets members and announcements of indexes at
	// or beyond it (nodes removed when the pool shrank).
	NumNodes int `json:"num_nodes,omitempty"`
}

// poolRequest is the body of PUT /v1/pool.
type poolRequest struct {
	NumNodes int `json:"num_nodes"`
}

// servePool is the controller telling the head the pool's size after it
// changed (nodes added or removed).
func (d *Daemon) servePool(w http.ResponseWriter, r *http.Request) {
	if !d.checkToken(w, r, "a pool update") {
		return
	}
	var req poolRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || req.NumNodes < 1 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want {\"num_nodes\": N} with N >= 1"})
		return
	}
	d.mu.Lock()
	err := d.resizeLocked(req.NumNodes)
	d.mu.Unlock()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// resizeLocked sets the pool's size; on the head it forgets the members
// and announcements of nodes at or beyond it. d.mu is held.
func (d *Daemon) resizeLocked(n int) error {
	if n == d.cfg.NumNodes {
		return nil
	}
	d.logf("the pool has %d nodes (was %d)", n, d.cfg.NumNodes)
	d.cfg.NumNodes = n
	for node := range d.members {
		if node >= n {
			delete(d.members, node)
		}
	}
	for node := range d.expected {
		if node >= n {
			delete(d.expected, node)
		}
	}
	return d.saveExpectedLocked()
}

// serveExpect is the controller announcing a worker to the head: node
// {node} of the pool has the private address addr. A member of that index
// with another address (a node since replaced) is dropped.
func (d *Daemon) serveExpect(w http.ResponseWriter, r *http.Request) {
	if !d.checkToken(w, r, "a member announcement") {
		return
	}
	node, err := strconv.Atoi(r.PathValue("node"))
	if err != nil || node <= 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("bad node %q", r.PathValue("node"))})
		return
	}
	var req expectRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || net.ParseIP(req.Addr) == nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("bad member address %q", req.Addr)})
		return
	}
	d.mu.Lock()
	if m, ok := d.members[node]; ok && !sameIP(m.Addr, req.Addr) {
		delete(d.members, node)
	}
	changed := d.expected[node] != req.Addr
	d.expected[node] = req.Addr
	if d.announced != nil {
		close(d.announced) // wakes the joins waiting for an announcement
		d.announced = nil
	}
	err = d.saveExpectedLocked()
	if err == nil && req.NumNodes > node {
		err = d.resizeLocked(req.NumNodes)
	}
	d.mu.Unlock()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	if changed {
		d.logf("expecting node %d from %s", node, req.Addr)
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// loadExpected reads the announced workers back after a restart of the
// head; a missing file means none.
func (d *Daemon) loadExpected() error {
	if d.cluster == nil || d.membersFile == "" {
		return nil
	}
	b, err := os.ReadFile(d.membersFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read members: %w", err)
	}
	var m map[int]string
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("read members %s: %w", d.membersFile, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for node, addr := range m {
		if node > 0 && net.ParseIP(addr) != nil {
			d.expected[node] = addr
		}
	}
	return nil
}

func (d *Daemon) saveExpectedLocked() error {
	if d.membersFile == "" {
		return nil
	}
	b, err := json.Marshal(d.expected)
	if err != nil {
		return err
	}
	if err := writeFile(d.membersFile, b, 0o600); err != nil {
		return fmt.Errorf("save members: %w", err)
	}
	return nil
}

// joinLoop joins the head, retrying until it accepts, then heartbeats,
// until ctx is done.
func (d *Daemon) joinLoop(ctx context.Context) {
	head := net.JoinHostPort(d.cfg.HeadAddr, strconv.Itoa(d.cfg.ClusterPort))
	// No proxy from the environment: the head is on the private network.
	tr := &http.Transport{Proxy: nil, MaxIdleConns: 1, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	lastErr := ""
	retry := joinRetryMin
	var failing time.Time // when the current run of failures began
	for {
		err := d.joinOnce(ctx, client, head)
		wait := joinHeartbeat
		if err != nil {
			if failing.IsZero() {
				failing = time.Now()
			}
			wait = retry
			if time.Since(failing) > joinRetryFlat {
				retry = min(2*retry, joinRetryMax)
			}
			if msg := err.Error(); msg != lastErr && ctx.Err() == nil {
				d.logf("join %s: %v", head, err)
				lastErr = msg
			}
		} else {
			if lastErr != "" || !d.isJoined() {
				d.logf("joined the head at %s", head)
			}
			lastErr, retry, failing = "", joinRetryMin, time.Time{}
			d.mu.Lock()
			d.joined = true
			d.mu.Unlock()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (d *Daemon) isJoined() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.joined
}

// joinOnce posts one join (or heartbeat) to the head.
func (d *Daemon) joinOnce(ctx context.Context, client *http.Client, head string) error {
	// This node's address on the route to the head; a UDP "connection"
	// sends nothing.
	addr := ""
	if c, err := net.Dial("udp", head); err == nil {
		addr, _, _ = net.SplitHostPort(c.LocalAddr().String())
		c.Close()
	}
	body, err := json.Marshal(joinRequest{Node: d.cfg.Node, Addr: addr})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+head+"/v1/join", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.cfg.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("refused: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// detachServe starts the agent again in a new session, so that it outlives
// the SSH session that started it (which kills its own process group when
// it ends), with its output appended to logFile. The child is in its own
// session once this returns.
func detachServe(cfgPath, pidFile, logFile string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	// The child runs in /: relative paths are made absolute here.
	for _, p := range []*string{&cfgPath, &pidFile, &logFile} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	logf, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	attr := &syscall.ProcAttr{
		Dir:   "/",
		Env:   os.Environ(),
		Files: []uintptr{devnull.Fd(), logf.Fd(), logf.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	}
	// Through the reaper, like every child of this package; nobody waits
	// for this one: it outlives this process.
	argv := []string{exe, "agent", "serve", "-config", cfgPath, "-pid-file", pidFile}
	if _, err := children.start(exe, argv, attr, false); err != nil {
		return fmt.Errorf("start %s: %w", exe, err)
	}
	return nil
}
