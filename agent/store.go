package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
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

// serveStore answers GET /v1/store on the head's cluster API: the
// members' private addresses once the controller announced all of them,
// 503 before.
func (d *Daemon) serveStore(w http.ResponseWriter, r *http.Request) {
	if !d.checkToken(w, r, "a store lookup") {
		return
	}
	d.mu.Lock()
	addrs, ok := d.storeMembersLocked()
	d.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the store's members are not all announced yet"})
		return
	}
	writeJSON(w, http.StatusOK, addrs)
}

// resolveStore waits until it knows the members' addresses: on the head
// from the controller's announcements, on a worker from the head.
func (d *Daemon) resolveStore(ctx context.Context) ([]string, error) {
	if d.replicas() == 1 {
		if d.cfg.HeadAddr == "" {
			return nil, errors.New("store: no head address")
		}
		return []string{d.cfg.HeadAddr}, nil
	}
	head := net.JoinHostPort(d.cfg.HeadAddr, strconv.Itoa(d.cfg.ClusterPort))
	tr := &http.Transport{Proxy: nil, MaxIdleConns: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	wait := 20 * time.Millisecond
	for {
		if d.cfg.Node == 0 {
			d.mu.Lock()
			addrs, ok := d.storeMembersLocked()
			d.mu.Unlock()
			if ok {
				return addrs, nil
			}
		} else if addrs, err := d.askStore(ctx, client, head); err == nil {
			return addrs, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

func (d *Daemon) askStore(ctx context.Context, client *http.Client, head string) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+head+"/v1/store", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+d.cfg.Token)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s", resp.Status)
	}
	var addrs []string
	if err := json.Unmarshal(body, &addrs); err != nil || len(addrs) != d.replicas() {
		return nil, fmt.Errorf("bad store answer %q", body)
	}
	return addrs, nil
}

// runStore resolves the store's members, writes store.json for the
// node's clients and, on a member node, runs the member until ctx is done.
func (d *Daemon) runStore(ctx context.Context) {
	infoPath := filepath.Join(d.root, storeFile)
	os.Remove(infoPath) // a previous configuration's members
	if d.replicas() == 0 {
		return
	}
	addrs, err := d.resolveStore(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.logf("store: %v", err)
		}
		return
	}
	clientPort, peerPort := d.storePorts()
	info := StoreInfo{Pool: d.cfg.Pool}
	for i, a := range addrs {
		info.Endpoints = append(info.Endpoints, "https://"+net.JoinHostPort(a, strconv.Itoa(clientPort)))
		info.Nodes = append(info.Nodes, i)
	}
	if d.cfg.Node >= len(addrs) {
		d.writeStoreInfo(infoPath, info)
		return
	}
	e, err := d.startMember(ctx, addrs, clientPort, peerPort)
	if err != nil {
		if ctx.Err() == nil {
			d.logf("store: %v", err)
		}
		return
	}
	defer e.Close()
	d.writeStoreInfo(infoPath, info)
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

// startMember starts this node's etcd member and returns once it serves
// (or failed to start). Its data lives under root/store/<cluster hash>, so
// that a new member set starts afresh while a restarted agent of the same
// set finds its data again.
func (d *Daemon) startMember(ctx context.Context, addrs []string, clientPort, peerPort int) (*embed.Etcd, error) {
	var cluster []string
	for i, a := range addrs {
		cluster = append(cluster, fmt.Sprintf("node%d=https://%s", i, net.JoinHostPort(a, strconv.Itoa(peerPort))))
	}
	initial := strings.Join(cluster, ",")
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
	dir := filepath.Join(base, id)
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
