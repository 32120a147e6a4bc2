package executor_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/user"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/skyward-sh/skyward/agent"
	"github.com/skyward-sh/skyward/providers"
)

// entry is one provider call in a fakeProvider's log: its beginning or its
// end.
type entry struct {
	Phase   string // "begin" or "end"
	Op      string // "create", "update", "delete"
	Address string
	ID      string // the object's ID, when known
}

// fakeProvider is a providers.Provider whose nodes are in-process SSH
// servers (fakeNode) on loopback. It is safe for concurrent use. The
// fields before mu are set before Apply and not changed while it runs.
type fakeProvider struct {
	t    *testing.T
	user string

	// delay holds how long a call takes, by "op address"; "op node"
	// applies to every node without an entry of its own.
	delay map[string]time.Duration
	// fail holds the error a call returns, by "op address".
	fail map[string]error
	// badPort names the nodes whose reported SSH port is a closed one.
	badPort map[string]bool
	// gone names the nodes that Read no longer finds, though they still
	// hold their SSH port (with badPort: a node that dies at its start).
	gone map[string]bool
	// badBootstrap names the nodes whose bootstrap fails.
	badBootstrap map[string]bool
	// dropBootstrap holds, by address, how many times a node's bootstrap
	// drops every SSH connection to the node instead of running.
	dropBootstrap map[string]int
	// onBegin, if set, is called as each call begins (op, address).
	onBegin func(op, addr string)
	// noSharedNetwork makes the provider say its nodes share no private
	// network, though they report private addresses (a RunPod cluster),
	// and give each node a public address as well.
	noSharedNetwork bool
	// pools records the PoolSize of each Create, by address.
	poolSizes map[string]int

	mu         sync.Mutex
	log        []entry
	running    int
	maxRunning int
	seq        int
	nodes      map[string]*fakeNode // live nodes by ID
	all        map[string]*fakeNode // every node ever created, by ID
	resources  map[string]providers.Resource
}

var _ providers.Provider = (*fakeProvider)(nil)

func newFakeProvider(t *testing.T) *fakeProvider {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	p := &fakeProvider{
		t: t, user: u.Username,
		delay: map[string]time.Duration{}, fail: map[string]error{},
		badPort: map[string]bool{}, gone: map[string]bool{}, badBootstrap: map[string]bool{}, dropBootstrap: map[string]int{},
		nodes: map[string]*fakeNode{}, all: map[string]*fakeNode{},
		resources: map[string]providers.Resource{},
	}
	t.Cleanup(func() {
		p.mu.Lock()
		nodes := p.all
		p.mu.Unlock()
		for _, n := range nodes {
			n.close()
		}
	})
	return p
}

// begin logs the start of a call, waits its delay and returns its
// injected failure.
func (p *fakeProvider) begin(ctx context.Context, op, addr, id string, node bool) error {
	p.mu.Lock()
	p.log = append(p.log, entry{"begin", op, addr, id})
	p.running++
	p.maxRunning = max(p.maxRunning, p.running)
	d, ok := p.delay[op+" "+addr]
	if !ok && node {
		d = p.delay[op+" node"]
	}
	err := p.fail[op+" "+addr]
	hook := p.onBegin
	p.mu.Unlock()
	if hook != nil {
		hook(op, addr)
	}
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func (p *fakeProvider) end(op, addr, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, entry{"end", op, addr, id})
	p.running--
}

func (p *fakeProvider) Type() string { return "container" }
func (p *fakeProvider) Capabilities() providers.Capabilities {
	return providers.Capabilities{HostKey: providers.HostKeyInstalled, PrivateNetwork: !p.noSharedNetwork, KillsSessions: true}
}
func (p *fakeProvider) Check(ctx context.Context) error { return nil }

func (p *fakeProvider) Create(ctx context.Context, r providers.Resource) (obj providers.Object, err error) {
	isNode := r.Kind == providers.KindNode
	defer func() { p.end("create", r.Address, obj.ID) }()
	if err := p.begin(ctx, "create", r.Address, "", isNode); err != nil {
		return providers.Object{}, err
	}
	p.mu.Lock()
	p.seq++
	seq := p.seq
	p.resources[r.Address] = r
	if p.poolSizes == nil {
		p.poolSizes = map[string]int{}
	}
	p.poolSizes[r.Address] = r.PoolSize
	badPort, badBoot, drops := p.badPort[r.Address], p.badBootstrap[r.Address], p.dropBootstrap[r.Address]
	p.mu.Unlock()

	obj = providers.Object{Kind: r.Kind, Address: r.Address, Lineage: r.Lineage, Running: true}
	if !isNode {
		obj.ID = fmt.Sprintf("net-%d", seq)
		obj.Private = map[string]string{"network": "net-" + r.Pool}
		return obj, nil
	}
	if r.Node == nil {
		return providers.Object{}, errors.New("fake: node without a NodeSpec")
	}
	n, err := startFakeNode(r.Node, badBoot, drops)
	if err != nil {
		return providers.Object{}, fmt.Errorf("fake: start node: %w", err)
	}
	port := n.ln.Addr().(*net.TCPAddr).Port
	if badPort {
		port = closedPort(p.t)
	}
	obj.ID = fmt.Sprintf("node-%d", seq)
	n.obj = providers.Object{Kind: providers.KindNode, Address: r.Address, ID: obj.ID, Lineage: r.Lineage, Running: true,
		SSH: providers.SSHEndpoint{Host: "127.0.0.1", Port: port, User: p.user}, PrivateIP: fmt.Sprintf("10.0.0.%d", seq),
		Private: map[string]string{}}
	if p.noSharedNetwork {
		n.obj.PublicIP = fmt.Sprintf("203.0.113.%d", seq)
	}
	obj = n.object()
	p.mu.Lock()
	p.nodes[obj.ID] = n
	p.all[obj.ID] = n
	p.mu.Unlock()
	return obj, nil
}

// Read returns a live node; pools, and nodes deleted or stopped with
// stop, are not found.
func (p *fakeProvider) Read(ctx context.Context, o providers.Object) (providers.Object, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := p.nodes[o.ID]; n != nil && !p.gone[n.obj.Address] {
		return n.object(), nil
	}
	return providers.Object{}, fmt.Errorf("fake: read %s: %w", o.ID, providers.ErrNotFound)
}

func (p *fakeProvider) Update(ctx context.Context, o providers.Object, r providers.Resource) (obj providers.Object, err error) {
	defer p.end("update", r.Address, o.ID)
	if err := p.begin(ctx, "update", r.Address, o.ID, true); err != nil {
		return providers.Object{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.nodes[o.ID]
	if n == nil {
		return providers.Object{}, fmt.Errorf("fake: update %s: %w", o.ID, providers.ErrNotFound)
	}
	n.obj.Private["memory_limit"] = strconv.FormatFloat(r.Node.MemoryGB, 'g', -1, 64)
	return n.object(), nil
}

func (p *fakeProvider) Delete(ctx context.Context, o providers.Object) error {
	defer p.end("delete", o.Address, o.ID)
	if err := p.begin(ctx, "delete", o.Address, o.ID, o.Kind == providers.KindNode); err != nil {
		return err
	}
	p.mu.Lock()
	n := p.nodes[o.ID]
	delete(p.nodes, o.ID)
	p.mu.Unlock()
	if n != nil {
		n.close()
	}
	return nil
}

func (p *fakeProvider) List(ctx context.Context, lineage string) ([]providers.Object, error) {
	return nil, nil
}

// calls returns the log and clears it.
func (p *fakeProvider) takeLog() []entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.log
	p.log = nil
	p.maxRunning = 0
	return l
}

func (p *fakeProvider) maxConcurrent() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxRunning
}

func (p *fakeProvider) node(id string) *fakeNode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.all[id]
}

func (p *fakeProvider) live() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for id := range p.nodes {
		ids = append(ids, id)
	}
	return ids
}

// object returns a copy of the node's object; the fakeProvider's mu must
// be held or the node not yet shared.
func (n *fakeNode) object() providers.Object {
	o := n.obj
	o.Private = copyStrings(n.obj.Private)
	return o
}

func copyStrings(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// fakeNode is an in-process SSH server standing in for a node: it presents
// the host key the executor generated, admits only the pool's key, and
// answers the node protocol (docs/node-protocol.md) without running
// anything on this machine: bootstrap prints its phases, the agent
// "starts" when asked and answers its status through direct-tcpip to
// agent.ControlAddr, and SFTP writes go to memory.
type fakeNode struct {
	ln       net.Listener
	conf     *ssh.ServerConfig
	fs       sftp.Handlers
	hostKey  string // authorized_keys form
	failBoot bool
	obj      providers.Object // guarded by the fakeProvider's mu

	mu      sync.Mutex
	drops   int // bootstraps left that drop the connections
	agentUp bool
	// starts records how each agent start came: "bootstrap" (agent
	// bootstrap -start) or "serve" (StartAgent's own command).
	starts []string
	// accepted counts the SSH connections the node took.
	accepted int
	// announced holds, on a head, the workers the controller announced;
	// the fake admits them at once.
	announced map[int]string
	conns     map[net.Conn]bool
	closed    bool
	wg        sync.WaitGroup
	once      sync.Once
}

func startFakeNode(spec *providers.NodeSpec, failBoot bool, drops int) (*fakeNode, error) {
	signer, err := ssh.ParsePrivateKey(spec.HostKey)
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	authorized, _, _, _, err := ssh.ParseAuthorizedKey([]byte(spec.AuthorizedKey))
	if err != nil {
		return nil, fmt.Errorf("authorized key: %w", err)
	}
	conf := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(k.Marshal(), authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	conf.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n := &fakeNode{
		ln: ln, conf: conf, fs: sftp.InMemHandler(), failBoot: failBoot, drops: drops,
		hostKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))),
		conns:   map[net.Conn]bool{},
	}
	n.wg.Add(1)
	go n.serve()
	return n, nil
}

func (n *fakeNode) serve() {
	defer n.wg.Done()
	for {
		c, err := n.ln.Accept()
		if err != nil {
			return
		}
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			c.Close()
			return
		}
		n.conns[c] = true
		n.accepted++
		n.wg.Add(1)
		n.mu.Unlock()
		go func() {
			defer n.wg.Done()
			n.handle(c)
		}()
	}
}

// close stops the server and waits for its goroutines; it is idempotent.
func (n *fakeNode) close() {
	n.once.Do(func() {
		n.mu.Lock()
		n.closed = true
		for c := range n.conns {
			c.Close()
		}
		n.mu.Unlock()
		n.ln.Close()
		n.wg.Wait()
	})
}

// drop closes every connection to the node, as a network failure would,
// if drops are left; it reports whether it did.
func (n *fakeNode) drop() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.drops == 0 {
		return false
	}
	n.drops--
	for c := range n.conns {
		c.Close()
	}
	return true
}

func (n *fakeNode) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

func (n *fakeNode) handle(c net.Conn) {
	defer func() {
		n.mu.Lock()
		delete(n.conns, c)
		n.mu.Unlock()
		c.Close()
	}()
	sc, chans, reqs, err := ssh.NewServerConn(c, n.conf)
	if err != nil {
		return
	}
	defer sc.Close()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ssh.DiscardRequests(reqs)
	}()
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				n.session(nc)
			}()
		case "direct-tcpip":
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				n.forward(nc)
			}()
		default:
			nc.Reject(ssh.UnknownChannelType, "unsupported channel type")
		}
	}
}

func (n *fakeNode) session(nc ssh.NewChannel) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	for req := range reqs {
		switch req.Type {
		case "exec":
			var p struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &p); err != nil {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			go ssh.DiscardRequests(reqs)
			code := n.exec(p.Command, ch)
			ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
			return
		case "subsystem":
			var p struct{ Name string }
			if err := ssh.Unmarshal(req.Payload, &p); err != nil || p.Name != "sftp" {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			go ssh.DiscardRequests(reqs)
			srv := sftp.NewRequestServer(ch, n.fs)
			srv.Serve()
			srv.Close()
			return
		default:
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
}

// exec answers the commands the controller runs on a node.
func (n *fakeNode) exec(cmd string, ch ssh.Channel) int {
	// A login user other than root runs root's commands through sudo.
	if q, ok := strings.CutPrefix(cmd, "sudo -n sh -c "); ok {
		cmd = unquote(q)
	}
	switch {
	case strings.HasPrefix(cmd, "install -D "):
		// install -D -m MODE 'TMP' 'DST' && rm -f 'TMP', after an upload
		// to TMP.
		f := strings.Fields(strings.SplitN(cmd, " && ", 2)[0])
		if len(f) != 6 {
			fmt.Fprintf(ch.Stderr(), "fake node: bad install %q\n", cmd)
			return 1
		}
		if err := n.move(unquote(f[4]), unquote(f[5])); err != nil {
			fmt.Fprintf(ch.Stderr(), "install: %v\n", err)
			return 1
		}
		return 0
	case strings.HasPrefix(cmd, "sha256sum "):
		sum, err := n.sum(strings.TrimPrefix(cmd, "sha256sum "))
		if err != nil {
			fmt.Fprintf(ch.Stderr(), "sha256sum: %v\n", err)
			return 1
		}
		fmt.Fprintf(ch, "%s  %s\n", sum, strings.TrimPrefix(cmd, "sha256sum "))
		return 0
	case strings.Contains(cmd, "agent bootstrap"):
		if n.drop() {
			return 255
		}
		// The recipe's tar stream; with -start, agent.json follows the
		// recipe and the agent starts after the phases.
		var agentJSON []byte
		tr := tar.NewReader(ch)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if h.Name == "agent.json" {
				agentJSON, _ = io.ReadAll(tr)
			}
		}
		io.Copy(io.Discard, ch)
		if strings.Contains(cmd, "agent bootstrap -start") && agentJSON == nil {
			fmt.Fprintln(ch.Stderr(), "fake node: -start without agent.json")
			return 1
		}
		if n.failBoot {
			fmt.Fprintln(ch, `{"type":"phase","phase":"setup","status":"started"}`)
			fmt.Fprintln(ch, `{"type":"output","phase":"setup","stream":"stderr","line":"setup: no such file"}`)
			fmt.Fprintln(ch, `{"type":"phase","phase":"setup","status":"failed","exit_code":2,"error":"exit status 2"}`)
			return 1
		}
		fmt.Fprintln(ch, `{"type":"phase","phase":"env","status":"started"}`)
		fmt.Fprintln(ch, `{"type":"phase","phase":"env","status":"completed","duration_ms":1}`)
		if agentJSON != nil {
			fmt.Fprintln(ch, `{"type":"agent","status":"starting"}`)
			if err := n.writeFile(agent.Root+"/agent.json", agentJSON); err != nil {
				fmt.Fprintf(ch.Stderr(), "fake node: write agent.json: %v\n", err)
				return 1
			}
			n.started("bootstrap")
		}
		return 0
	case strings.Contains(cmd, "agent serve"):
		// The configuration comes on stdin (StartAgent).
		if strings.Contains(cmd, "cat > ") {
			data, err := io.ReadAll(ch)
			if err != nil || n.writeFile(agent.Root+"/agent.json", data) != nil {
				fmt.Fprintf(ch.Stderr(), "fake node: write agent.json: %v\n", err)
				return 1
			}
		}
		n.started("serve")
		return 0
	case strings.Contains(cmd, "kill -0"): // StopAgent
		n.setAgent(false)
		return 0
	case strings.Contains(cmd, "tail -n"):
		return 0
	}
	fmt.Fprintf(ch.Stderr(), "fake node: unknown command %q\n", cmd)
	return 127
}

// unquote undoes the controller's single-quoting for the shell.
func unquote(s string) string {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "'"), "'")
	return strings.ReplaceAll(s, `'\''`, "'")
}

// move renames a file of the in-memory file system, creating the parent
// directories of dst.
func (n *fakeNode) move(src, dst string) error {
	var dirs []string
	for d := path.Dir(dst); d != "/" && d != "."; d = path.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	for _, d := range dirs {
		n.fs.FileCmd.Filecmd(sftp.NewRequest("Mkdir", d)) // an existing one is fine
	}
	r := sftp.NewRequest("PosixRename", src)
	r.Target = dst
	return n.fs.FileCmd.(interface{ PosixRename(*sftp.Request) error }).PosixRename(r)
}

// started records an agent start by how, and the agent as running.
func (n *fakeNode) started(how string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.agentUp = true
	n.starts = append(n.starts, how)
}

func (n *fakeNode) connections() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.accepted
}

func (n *fakeNode) agentStarts() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.starts)
}

func (n *fakeNode) setAgent(up bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.agentUp = up
}

// forward serves the agent's control API on direct-tcpip channels to
// agent.ControlAddr while the agent "runs".
func (n *fakeNode) forward(nc ssh.NewChannel) {
	var p struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
		nc.Reject(ssh.ConnectionFailed, "bad direct-tcpip payload")
		return
	}
	n.mu.Lock()
	up := n.agentUp
	n.mu.Unlock()
	if net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port))) != agent.ControlAddr || !up {
		nc.Reject(ssh.ConnectionFailed, "connection refused")
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	go ssh.DiscardRequests(reqs)
	req, err := http.ReadRequest(bufio.NewReader(ch))
	if err != nil {
		return
	}
	code, body := http.StatusNotFound, []byte("{}")
	cfg, _ := n.agentConfig()
	switch node, isMember := strings.CutPrefix(req.URL.Path, "/v1/members/"); {
	case req.Method == http.MethodGet && req.URL.Path == "/v1/status":
		code = http.StatusOK
		st := agent.Status{Pool: cfg.Pool, Node: cfg.Node, NumNodes: cfg.NumNodes, IsHead: cfg.Node == 0, Joined: true}
		if cfg.Node == 0 {
			st.Members = []agent.Member{{Node: 0, Addr: cfg.HeadAddr}}
			n.mu.Lock()
			for i, addr := range n.announced {
				st.Members = append(st.Members, agent.Member{Node: i, Addr: addr})
			}
			n.mu.Unlock()
		}
		body, _ = json.Marshal(st)
	case req.Method == http.MethodPut && isMember && cfg.Node == 0:
		i, _ := strconv.Atoi(node)
		var ann struct{ Addr string }
		json.NewDecoder(req.Body).Decode(&ann)
		n.mu.Lock()
		if n.announced == nil {
			n.announced = map[int]string{}
		}
		n.announced[i] = ann.Addr
		n.mu.Unlock()
		code = http.StatusOK
	}
	resp := &http.Response{
		StatusCode: code, ProtoMajor: 1, ProtoMinor: 1, Request: req, Close: true,
		Header:        http.Header{"Content-Type": {"application/json"}},
		ContentLength: int64(len(body)), Body: io.NopCloser(bytes.NewReader(body)),
	}
	resp.Write(ch)
}

// writeFile writes a file of the in-memory file system, creating its
// parent directories.
func (n *fakeNode) writeFile(name string, data []byte) error {
	var dirs []string
	for d := path.Dir(name); d != "/" && d != "."; d = path.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	for _, d := range dirs {
		n.fs.FileCmd.Filecmd(sftp.NewRequest("Mkdir", d)) // an existing one is fine
	}
	return n.put(name, data)
}

// put writes an existing directory's file of the in-memory file system.
func (n *fakeNode) put(name string, data []byte) error {
	r := sftp.NewRequest("Put", name)
	r.Flags = 0x1a // SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC
	w, err := n.fs.FilePut.Filewrite(r)
	if err != nil {
		return err
	}
	_, err = w.WriteAt(data, 0)
	return err
}

// sum is the sha256 of a file of the in-memory file system.
func (n *fakeNode) sum(name string) (string, error) {
	r := sftp.NewRequest("Get", name)
	r.Flags = 1 // SSH_FXF_READ
	ra, err := n.fs.FileGet.Fileread(r)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(ra, 0, 1<<40)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// agentConfig returns the agent.json the controller uploaded.
func (n *fakeNode) agentConfig() (agent.Config, error) {
	var cfg agent.Config
	r := sftp.NewRequest("Get", agent.Root+"/agent.json")
	r.Flags = 1 // SSH_FXF_READ
	ra, err := n.fs.FileGet.Fileread(r)
	if err != nil {
		return cfg, err
	}
	b, err := io.ReadAll(io.NewSectionReader(ra, 0, 1<<20))
	if err != nil {
		return cfg, err
	}
	return cfg, json.Unmarshal(b, &cfg)
}
