package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
)

// The pool's collections store is an embedded etcd: members on nodes 0 to
// Replicas-1, every node's collection commands its clients. A member
// listens on the node's private address only, for clients and peers
// alike, with mutual TLS under the pool's authority (storetls.go).

// storeFile is where the agent writes the StoreInfo, under its root.
const storeFile = "store.json"

// replicas is the number of members, at most one a node; 0 without a
// store.
func (d *Daemon) replicas() int {
	return min(max(d.cfg.Replicas, 0), max(d.cfg.NumNodes, 1))
}

func (d *Daemon) storePorts() (client, peer int) {
	client, peer = d.cfg.StoreClientPort, d.cfg.StorePeerPort
	if client == 0 {
		client = StoreClientPort
	}
	if peer == 0 {
		peer = StorePeerPort
	}
	return client, peer
}

// storeMembersLocked is the private address of every member, node 0 first,
// as far as the head knows them; ok is false while one is not announced.
// d.mu is held.
func (d *Daemon) storeMembersLocked() (addrs []string, ok bool) {
	addrs = []string{d.cfg.HeadAddr}
	for node := 1; node < d.replicas(); node++ {
		a, known := d.expected[node]
		if !known {
			return nil, false
		}
		addrs = append(addrs, a)
	}
	return addrs, d.cfg.HeadAddr != ""
}

// storeAnswer is the head's answer to GET and POST /v1/store.
type storeAnswer struct {
	// Members are the members' private addresses, node 0 first; empty
	// while the controller has not announced them all.
	Members []string `json:"members"`
	// Start is true once a command asked for the store: the members
	// start then, not before, so that an apply does not pay for a store
	// no task uses.
	Start bool `json:"start"`
}

// wantStore records that the store is wanted; the head's members start.
func (d *Daemon) wantStore() {
	d.storeOnce.Do(func() { close(d.storeWanted) })
}

func (d *Daemon) storeIsWanted() bool {
	select {
	case <-d.storeWanted:
		return true
	default:
		return false
	}
}

// serveStore answers GET /v1/store on the head's cluster API, and POST
// /v1/store/start, which a collection command sends before it connects:
// the members' private addresses once the controller announced all of
// them, and whether the store was asked for.
func (d *Daemon) serveStore(w http.ResponseWriter, r *http.Request) {
	if !d.checkToken(w, r, "a store request") {
		return
	}
	if r.Method == http.MethodPost {
		d.wantStore()
	}
	d.mu.Lock()
	addrs, ok := d.storeMembersLocked()
	d.mu.Unlock()
	ans := storeAnswer{Start: d.storeIsWanted()}
	if ok {
		ans.Members = addrs
	}
	writeJSON(w, http.StatusOK, ans)
}

// askStore asks the head about the store; start asks for it too.
func (d *Daemon) askStore(ctx context.Context, client *http.Client, start bool) (storeAnswer, error) {
	head := net.JoinHostPort(d.cfg.HeadAddr, strconv.Itoa(d.cfg.ClusterPort))
	method, path := http.MethodGet, "/v1/store"
	if start {
		method, path = http.MethodPost, "/v1/store/start"
	}
	var ans storeAnswer
	req, err := http.NewRequestWithContext(ctx, method, "http://"+head+path, nil)
	if err != nil {
		return ans, err
	}
	req.Header.Set("Authorization", "Bearer "+d.cfg.Token)
	resp, err := client.Do(req)
	if err != nil {
		return ans, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return ans, fmt.Errorf("%s", resp.Status)
	}
	if err := json.Unmarshal(body, &ans); err != nil || len(ans.Members) != 0 && len(ans.Members) != d.replicas() {
		return ans, fmt.Errorf("bad store answer %q", body)
	}
	return ans, nil
}

// storePoll polls the head until cond holds for its answer.
func (d *Daemon) storePoll(ctx context.Context, cond func(storeAnswer) bool) (storeAnswer, error) {
	tr := &http.Transport{Proxy: nil, MaxIdleConns: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	wait := 20 * time.Millisecond
	wanted := d.storeWanted // nil once it fired: a closed channel would spin
	for {
		var ans storeAnswer
		var err error
		if d.cfg.Node == 0 {
			d.mu.Lock()
			addrs, ok := d.storeMembersLocked()
			d.mu.Unlock()
			ans.Start = d.storeIsWanted()
			if ok {
				ans.Members = addrs
			}
		} else {
			ans, err = d.askStore(ctx, client, false)
		}
		if err == nil && cond(ans) {
			return ans, nil
		}
		select {
		case <-ctx.Done():
			return ans, ctx.Err()
		case <-wanted:
			wanted = nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}

// runStore resolves the store's members, writes store.json for the
// node's clients and, on a member node, runs the member until ctx is done,
// from the first time a command asks for the store (or at once when this
// member already has data).
func (d *Daemon) runStore(ctx context.Context) {
	infoPath := filepath.Join(d.root, storeFile)
	os.Remove(infoPath) // a previous configuration's members
	if d.replicas() == 0 {
		return
	}
	var addrs []string
	if d.replicas() == 1 {
		addrs = []string{d.cfg.HeadAddr}
	} else {
		ans, err := d.storePoll(ctx, func(a storeAnswer) bool { return len(a.Members) > 0 })
		if err != nil {
			return
		}
		addrs = ans.Members
	}
	clientPort, peerPort := d.storePorts()
	info := StoreInfo{Pool: d.cfg.Pool}
	for i, a := range addrs {
		info.Endpoints = append(info.Endpoints, "https://"+net.JoinHostPort(a, strconv.Itoa(clientPort)))
		info.Nodes = append(info.Nodes, i)
	}
	d.writeStoreInfo(infoPath, info)
	if d.cfg.Node >= len(addrs) {
		return
	}
	dir, initial := d.memberDir(addrs, peerPort)
	if _, err := os.Stat(filepath.Join(dir, "data")); err != nil {
		if _, err := d.storePoll(ctx, func(a storeAnswer) bool { return a.Start }); err != nil {
			return
		}
	}
	e, err := d.startMember(ctx, addrs, dir, initial, clientPort, peerPort)
	if err != nil {
		if ctx.Err() == nil {
			d.logf("store: %v", err)
		}
		return
	}
	defer e.Close()
	select {
	case <-ctx.Done():
	case err := <-e.Err():
		d.logf("store: member stopped: %v", err)
	}
}

func (d *Daemon) writeStoreInfo(path string, info StoreInfo) {
	b, _ := json.Marshal(info)
	if err := writeFile(path, b, 0o644); err != nil {
		d.logf("store: %v", err)
		return
	}
	d.logf("store: %d member(s) at %s", len(info.Endpoints), strings.Join(info.Endpoints, ", "))
}

// memberDir is this member's directory, root/store/<cluster hash>, so
// that a new member set starts afresh while a restarted agent of the same
// set finds its data again; other sets' directories are removed. initial
// is etcd's initial cluster.
func (d *Daemon) memberDir(addrs []string, peerPort int) (dir, initial string) {
	var cluster []string
	for i, a := range addrs {
		cluster = append(cluster, fmt.Sprintf("node%d=https://%s", i, net.JoinHostPort(a, strconv.Itoa(peerPort))))
	}
	initial = strings.Join(cluster, ",")
	sum := sha256.Sum256([]byte(d.cfg.Pool + "\x00" + initial))
	id := hex.EncodeToString(sum[:6])
	base := filepath.Join(d.root, "store")
	if old, err := os.ReadDir(base); err == nil {
		for _, e := range old {
			if e.Name() != id {
				os.RemoveAll(filepath.Join(base, e.Name()))
			}
		}
	}
	return filepath.Join(base, id), initial
}

// startMember starts this node's etcd member in dir and returns once it
// serves (or failed to start).
func (d *Daemon) startMember(ctx context.Context, addrs []string, dir, initial string, clientPort, peerPort int) (*embed.Etcd, error) {
	id := filepath.Base(dir)
	tlsDir := filepath.Join(dir, "tls")
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return nil, err
	}
	ca, err := newStoreCA(d.cfg.Token, d.cfg.Pool)
	if err != nil {
		return nil, err
	}
	self := net.ParseIP(addrs[d.cfg.Node])
	if self == nil {
		return nil, fmt.Errorf("member address %q is not an IP address", addrs[d.cfg.Node])
	}
	_, certPEM, keyPEM, err := ca.issue(fmt.Sprintf("skyward pool %s store node%d", d.cfg.Pool, d.cfg.Node), []net.IP{self, net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"ca.crt": ca.pem(), "node.crt": certPEM, "node.key": keyPEM}
	for name, b := range files {
		if err := writeFile(filepath.Join(tlsDir, name), b, 0o600); err != nil {
			return nil, err
		}
	}
	tlsInfo := transport.TLSInfo{
		CertFile:       filepath.Join(tlsDir, "node.crt"),
		KeyFile:        filepath.Join(tlsDir, "node.key"),
		TrustedCAFile:  filepath.Join(tlsDir, "ca.crt"),
		ClientCertAuth: true,
	}
	curl := url.URL{Scheme: "https", Host: net.JoinHostPort(self.String(), strconv.Itoa(clientPort))}
	purl := url.URL{Scheme: "https", Host: net.JoinHostPort(self.String(), strconv.Itoa(peerPort))}

	cfg := embed.NewConfig()
	cfg.Name = fmt.Sprintf("node%d", d.cfg.Node)
	cfg.Dir = filepath.Join(dir, "data")
	cfg.ListenClientUrls = []url.URL{curl}
	cfg.AdvertiseClientUrls = []url.URL{curl}
	cfg.ListenPeerUrls = []url.URL{purl}
	cfg.AdvertisePeerUrls = []url.URL{purl}
	cfg.InitialCluster = initial
	cfg.InitialClusterToken = "skyward-" + id
	cfg.ClusterState = embed.ClusterStateFlagNew
	cfg.ClientTLSInfo = tlsInfo
	cfg.PeerTLSInfo = tlsInfo
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{"stderr"}
	// Small pools, small values: a modest backend keeps the node's disk
	// and memory in check.
	cfg.QuotaBackendBytes = 512 << 20
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start member: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("start member: %w", err)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
	d.logf("store: member node%d serves %s", d.cfg.Node, curl.String())
	return e, nil
}
