package executor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/skyward-sh/skyward/cluster"
	"github.com/skyward-sh/skyward/planner"
	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/state"
)

// Key names under .skyward/keys.
func poolKeyName(pool string) string   { return pool + "/id_ed25519" }
func poolTokenName(pool string) string { return pool + "/token" }
func hostKeyName(pool string, i int) string {
	return fmt.Sprintf("%s/node-%d/ssh_host_ed25519_key", pool, i)
}

// PoolToken loads the pool's secret token, which its agents ask for.
func PoolToken(keys state.KeyStore, pool string) (string, error) {
	b, err := keys.Read(poolTokenName(pool))
	if err != nil {
		return "", fmt.Errorf("pool %q: read token: %w", pool, err)
	}
	return string(b), nil
}

// PoolSigner loads the SSH key the controller uses for a pool's nodes.
func PoolSigner(keys state.KeyStore, pool string) (ssh.Signer, error) {
	b, err := PoolKey(keys, pool)
	if err != nil {
		return nil, err
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("pool %q: parse SSH key: %w", pool, err)
	}
	return s, nil
}

// PoolKey returns the pool's SSH private key, PEM.
func PoolKey(keys state.KeyStore, pool string) ([]byte, error) {
	b, err := keys.Read(poolKeyName(pool))
	if err != nil {
		return nil, fmt.Errorf("pool %q: read SSH key: %w", pool, err)
	}
	return b, nil
}

// DialNode connects to a node recorded in state with its pool's key,
// verifying its pinned host key. ctx bounds the connection attempts,
// which are retried for up to dialNodeWait while the node does not answer.
func DialNode(ctx context.Context, keys state.KeyStore, r *state.Resource) (*cluster.Client, error) {
	signer, err := PoolSigner(keys, r.Pool)
	if err != nil {
		return nil, err
	}
	ep, err := NodeEndpoint(r, signer)
	if err != nil {
		return nil, err
	}
	// A node that runs may still be starting its SSH server (a container
	// started a moment ago publishes its port before its agent listens):
	// connection failures are retried for a while, a changed host key or
	// a refused client key fail at once.
	wctx, cancel := context.WithTimeout(ctx, dialNodeWait)
	defer cancel()
	return cluster.WaitDial(wctx, ep, 50*time.Millisecond)
}

// dialNodeWait bounds DialNode's retries of a node that does not answer.
const dialNodeWait = 10 * time.Second

// NodeEndpoint is how the controller reaches a node recorded in state.
func NodeEndpoint(r *state.Resource, signer ssh.Signer) (cluster.Endpoint, error) {
	str := func(k string) string { s, _ := r.Attributes[k].(string); return s }
	port := 0
	fmt.Sscanf(str("ssh_port"), "%d", &port)
	if str("ssh_host") == "" || port == 0 {
		return cluster.Endpoint{}, fmt.Errorf("%s: no SSH address recorded (is the node running?)", r.Address)
	}
	user := str("ssh_user")
	if user == "" {
		user = "root"
	}
	return cluster.Endpoint{Address: r.Address, Host: str("ssh_host"), Port: port, User: user, HostKey: str("host_key"),
		Signer: signer, Guard: str("ssh_server") == sshServerOther, ProxyCommand: str("ssh_proxy_command")}, nil
}

// Values of a node's ssh_server attribute: skyward's own SSH server kills
// a session's processes when it ends; any other (OpenSSH) needs the guard.
// A node recorded without one (by an older skyward, which had only
// skyward's server) needs none: its binary may not know the guard yet.
const (
	sshServerSkyward = "skyward"
	sshServerOther   = "openssh"
)

// HostKeySource is how a node's pinned host key became known, from its
// state record: providers.HostKeyInstalled, providers.HostKeyFirstContact,
// "provider" (the provider reported it) or "" when none is pinned yet.
func HostKeySource(r *state.Resource) string {
	s, _ := r.Attributes["host_key_source"].(string)
	if s == "" && r.Attributes["host_key"] != nil {
		return string(providers.HostKeyInstalled) // states written before the source was recorded
	}
	return s
}

func (w *walk) createPool(ctx context.Context, p providers.Provider, c *planner.Change) (string, error) {
	keys := w.e.Keys
	// A fresh key and token for every new pool; a replaced pool gets new
	// ones too.
	priv, pub, err := cluster.GenerateKey()
	if err != nil {
		return "", fmt.Errorf("%s: generate SSH key: %w", c.Address, err)
	}
	if err := keys.Write(poolKeyName(c.Pool), priv); err != nil {
		return "", fmt.Errorf("%s: %w", c.Address, err)
	}
	tok := make([]byte, 32)
	if _, err := rand.Read(tok); err != nil {
		return "", err
	}
	if err := keys.Write(poolTokenName(c.Pool), []byte(hex.EncodeToString(tok))); err != nil {
		return "", fmt.Errorf("%s: %w", c.Address, err)
	}
	r := w.resource(c, nil)
	r.AuthorizedKey = pub
	obj, err := p.Create(ctx, r)
	if err != nil {
		return "", fmt.Errorf("%s: create: %w", c.Address, err)
	}
	attrs := merged(c.After, obj, nil)
	attrs["ssh_public_key"] = pub
	err = w.save(func(st *state.State) {
		st.Set(&state.Resource{Address: c.Address, Type: c.Type, Pool: c.Pool, Provider: c.Provider,
			ID: obj.ID, Attributes: attrs, Sensitive: c.Sensitive, Status: state.StatusReady})
	})
	return obj.ID, err
}

func (w *walk) updatePool(_ context.Context, c *planner.Change) (string, error) {
	cur := w.get(c.Address)
	if cur == nil {
		return "", fmt.Errorf("%s: not in state", c.Address)
	}
	for k, v := range c.After {
		cur.Attributes[k] = v
	}
	cur.Sensitive = c.Sensitive
	return cur.ID, w.save(func(st *state.State) { st.Set(cur) })
}

// resource builds the provider request for a change.
func (w *walk) resource(c *planner.Change, node *providers.NodeSpec) providers.Resource {
	idx := -1
	kind := providers.KindPool
	if c.Index != nil {
		idx = *c.Index
		kind = providers.KindNode
	}
	r := providers.Resource{
		Kind: kind, Address: c.Address, Pool: c.Pool, Index: idx, Lineage: w.st.Lineage,
		PoolSize: w.poolSize(c.Pool),
		Labels: map[string]string{
			providers.LabelManaged: "true",
			providers.LabelLineage: w.st.Lineage,
			providers.LabelAddress: c.Address,
		},
		Node: node,
	}
	if kind == providers.KindNode {
		if pr := w.get(providers.PoolAddress(c.Pool)); pr != nil {
			r.PoolObject = &providers.Object{Kind: providers.KindPool, Address: pr.Address, ID: pr.ID, Private: stringAttrs(pr.Attributes)}
		}
	}
	return r
}

func (w *walk) nodeSpec(c *planner.Change) (*providers.NodeSpec, error) {
	a := c.After
	str := func(k string) string { s, _ := a[k].(string); return s }
	num := func(k string) float64 { f, _ := a[k].(float64); return f }
	var ttl time.Duration
	if s := str("ttl"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("ttl: %w", err)
		}
		ttl = d
	}
	pool := w.get(providers.PoolAddress(c.Pool))
	if pool == nil {
		return nil, fmt.Errorf("pool.%s is not in state", c.Pool)
	}
	pub, _ := pool.Attributes["ssh_public_key"].(string)
	return &providers.NodeSpec{
		Hostname:      fmt.Sprintf("%s-%d", c.Pool, *c.Index),
		VCPUs:         num("vcpus"),
		MemoryGB:      num("memory_gb"),
		DiskGB:        num("disk_gb"),
		InstanceType:  str("instance_type"),
		Accelerator:   str("accelerator"),
		Allocation:    str("allocation"),
		TTL:           ttl,
		AuthorizedKey: pub,
		AgentBinary:   w.e.AgentBinary,
	}, nil
}

func (w *walk) createNode(ctx context.Context, p providers.Provider, c *planner.Change) (string, error) {
	spec, err := w.nodeSpec(c)
	if err != nil {
		return "", fmt.Errorf("%s: %w", c.Address, err)
	}
	w.phase(c, "creating")
	caps := p.Capabilities()
	hostPub := ""
	if caps.HostKey == providers.HostKeyInstalled {
		hostPriv, pub, err := cluster.GenerateKey()
		if err != nil {
			return "", fmt.Errorf("%s: generate host key: %w", c.Address, err)
		}
		if err := w.e.Keys.Write(hostKeyName(c.Pool, *c.Index), hostPriv); err != nil {
			return "", fmt.Errorf("%s: %w", c.Address, err)
		}
		spec.HostKey, hostPub = hostPriv, pub
	}
	baked := w.bakedImage(ctx, p, c)
	if baked != "" {
		spec.BaseImage = baked
	}
	obj, err := p.Create(ctx, w.resource(c, spec))
	if err != nil {
		return "", fmt.Errorf("%s: create: %w", c.Address, err)
	}
	extra := map[string]any{"created_at": time.Now().UTC().Format(time.RFC3339), "ssh_server": sshServerOther}
	if caps.KillsSessions {
		extra["ssh_server"] = sshServerSkyward
	}
	if hostPub != "" {
		extra["host_key"], extra["host_key_source"] = hostPub, string(providers.HostKeyInstalled)
	}
	if baked != "" {
		extra["started_from"] = baked
	}
	rec := &state.Resource{Address: c.Address, Type: c.Type, Pool: c.Pool, Index: c.Index, Provider: c.Provider,
		ID: obj.ID, Attributes: merged(c.After, obj, extra), Sensitive: c.Sensitive, Dependencies: []string{providers.PoolAddress(c.Pool)}, Status: state.StatusCreating}
	// Record the object before waiting for it, so that a crash from here
	// on leaves it in state.
	if err := w.save(func(st *state.State) { st.Set(rec.DeepCopy()) }); err != nil {
		return obj.ID, fmt.Errorf("%s: %w", c.Address, err)
	}
	err = w.waitNode(ctx, p, c, obj, rec)
	if err == nil {
		err = w.bringUp(ctx, p, c, rec, bringUpOpts{bake: baked == "", fresh: true, prebaked: baked != ""})
	}
	if err != nil {
		rec.Status = state.StatusTainted
		if serr := w.save(func(st *state.State) { st.Set(rec) }); serr != nil {
			err = errors.Join(err, serr)
		}
		return obj.ID, err
	}
	rec.Status = state.StatusReady
	if err := w.save(func(st *state.State) { st.Set(rec) }); err != nil {
		return obj.ID, fmt.Errorf("%s: %w", c.Address, err)
	}
	w.phase(c, "ready")
	return obj.ID, nil
}

// waitNode waits, up to the provider's create timeout, until obj runs and
// has an SSH endpoint, with the provider's Wait or by polling Read, and
// records what the provider then tells of it in rec (and the state).
func (w *walk) waitNode(ctx context.Context, p providers.Provider, c *planner.Change, obj providers.Object, rec *state.Resource) error {
	if obj.Running && !obj.SSH.IsZero() {
		return w.recordFacts(c, obj, rec)
	}
	timeout := p.Capabilities().CreateTimeout
	if timeout <= 0 {
		timeout = providers.DefaultCreateTimeout
	}
	if w.e.CreateTimeout > 0 {
		timeout = w.e.CreateTimeout
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var got providers.Object
	err := idle(ctx, func() error {
		var err error
		if wt, ok := p.(providers.Waiter); ok {
			got, err = wt.Wait(wctx, obj)
			return err
		}
		got, err = pollRead(wctx, p, obj)
		return err
	})
	if err != nil {
		if wctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("%s: timed out after %s waiting for %s %s to run with an SSH endpoint: %w", c.Address, time.Since(start).Round(time.Second), p.Type(), shortID(obj.ID), err)
		}
		return fmt.Errorf("%s: waiting for %s %s to run: %w", c.Address, p.Type(), shortID(obj.ID), err)
	}
	return w.recordFacts(c, got, rec)
}

// pollRead reads o until it runs with an SSH endpoint, backing off from
// 100ms to 5s between reads.
func pollRead(ctx context.Context, p providers.Provider, o providers.Object) (providers.Object, error) {
	delay := 100 * time.Millisecond
	for {
		got, err := p.Read(ctx, o)
		if err != nil {
			return providers.Object{}, err
		}
		if got.Running && !got.SSH.IsZero() {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return providers.Object{}, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// recordFacts merges what the provider tells of a node into rec and saves
// it. A host key the provider learnt out of band is pinned unless one is
// already.
func (w *walk) recordFacts(c *planner.Change, obj providers.Object, rec *state.Resource) error {
	for k, v := range planner.Facts(obj) {
		rec.Attributes[k] = v
	}
	if obj.HostKey != "" && rec.Attributes["host_key"] == nil {
		rec.Attributes["host_key"], rec.Attributes["host_key_source"] = obj.HostKey, "provider"
	}
	if err := w.save(func(st *state.State) { st.Set(rec.DeepCopy()) }); err != nil {
		return fmt.Errorf("%s: %w", c.Address, err)
	}
	return nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// connectPoll is how often connect tries a node that does not answer SSH
// yet: a container's server listens within tens of milliseconds of its
// start, and a refused attempt costs next to nothing.
const connectPoll = 10 * time.Millisecond

// connect waits until the node answers SSH and returns the connection;
// the caller closes it. A node whose host key is pinned must present it; a
// node with none pinned yet (first contact) has the key it presents
// recorded in rec and in the state before anything is sent to it. While it
// waits, it watches the node on its provider (watchNode): one that stops
// (a start script that failed, an instance terminated) ends the wait with
// the provider's reason, not the SSH timeout.
func (w *walk) connect(ctx context.Context, p providers.Provider, c *planner.Change, rec *state.Resource) (*cluster.Client, error) {
	w.phase(c, "connecting")
	signer, err := PoolSigner(w.e.Keys, c.Pool)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Address, err)
	}
	ep, err := NodeEndpoint(rec, signer)
	if err != nil {
		return nil, err
	}
	timeout := w.e.SSHTimeout
	if timeout == 0 {
		timeout = 90 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wctx, stop := context.WithCancelCause(cctx)
	defer stop(nil)
	go w.watchNode(wctx, stop, p, c, rec)
	down := func(err error) error {
		var nd *nodeDownError
		if errors.As(context.Cause(wctx), &nd) {
			return nd
		}
		return fmt.Errorf("%s: connect: %w", c.Address, err)
	}
	if ep.HostKey != "" {
		cl, err := cluster.WaitDial(wctx, ep, connectPoll)
		if err != nil {
			return nil, down(err)
		}
		return cl, nil
	}
	cl, key, err := cluster.WaitDialRecord(wctx, ep, connectPoll)
	if err != nil {
		return nil, down(err)
	}
	rec.Attributes["host_key"], rec.Attributes["host_key_source"] = key, string(providers.HostKeyFirstContact)
	if err := w.save(func(st *state.State) { st.Set(rec.DeepCopy()) }); err != nil {
		cl.Close()
		return nil, fmt.Errorf("%s: pin host key: %w", c.Address, err)
	}
	w.e.emit(Event{Type: NodePhase, Address: c.Address, Op: planner.OpCreate, Action: c.Action, Phase: "connecting",
		Detail: "pinned host key " + cluster.Fingerprint(key) + " at first contact"})
	return cl, nil
}

// nodeDownError ends connect when the node stopped on its provider.
type nodeDownError struct {
	address string
	err     error
}

func (e *nodeDownError) Error() string { return e.address + ": " + e.err.Error() }
func (e *nodeDownError) Unwrap() error { return e.err }

// watchPace is how often connect first asks the provider whether the node
// it waits for still runs (a refused dial is the norm while a server
// starts); it backs off to watchPaceMax for nodes that take minutes.
const (
	watchPace    = 500 * time.Millisecond
	watchPaceMax = 5 * time.Second
)

// watchNode asks the provider, from watchPace on until ctx ends, whether
// the node of rec still runs (its Wait, which says why a node stopped, or
// Read), and ends ctx with a nodeDownError when the node is gone or has
// stopped for good. Any other answer (an API error, a node not running
// yet) leaves the dial to go on.
func (w *walk) watchNode(ctx context.Context, stop context.CancelCauseFunc, p providers.Provider, c *planner.Change, rec *state.Resource) {
	obj := providers.Object{Kind: providers.KindNode, Address: c.Address, ID: rec.ID, Lineage: w.st.Lineage, Private: stringAttrs(rec.Attributes)}
	pace := watchPace
	for {
		t := time.NewTimer(pace)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		pace = min(2*pace, watchPaceMax)
		// Bounded: Wait returns at once for a node that runs.
		lctx, cancel := context.WithTimeout(ctx, watchPace)
		var err error
		if wt, ok := p.(providers.Waiter); ok {
			_, err = wt.Wait(lctx, obj)
		} else {
			_, err = p.Read(lctx, obj)
		}
		cancel()
		if ctx.Err() == nil && (errors.Is(err, providers.ErrNotFound) || errors.Is(err, providers.ErrStopped)) {
			stop(&nodeDownError{address: c.Address, err: fmt.Errorf("stopped while skyward waited for its SSH server: %w", err)})
			return
		}
	}
}

func (w *walk) updateNode(ctx context.Context, p providers.Provider, c *planner.Change) (string, error) {
	cur := w.get(c.Address)
	if cur == nil {
		return "", fmt.Errorf("%s: not in state", c.Address)
	}
	spec, err := w.nodeSpec(c)
	if err != nil {
		return "", fmt.Errorf("%s: %w", c.Address, err)
	}
	obj := providers.Object{Kind: providers.KindNode, Address: c.Address, ID: cur.ID, Lineage: w.st.Lineage, Private: stringAttrs(cur.Attributes)}
	nobj, err := p.Update(ctx, obj, w.resource(c, spec))
	if err != nil {
		return cur.ID, fmt.Errorf("%s: update: %w", c.Address, err)
	}
	kept := map[string]any{}
	for _, k := range controllerAttrs {
		if v, ok := cur.Attributes[k]; ok {
			kept[k] = v
		}
	}
	cur.Attributes = merged(c.After, nobj, kept)
	cur.Sensitive = c.Sensitive
	cur.ID = nobj.ID
	if err := w.waitNode(ctx, p, c, nobj, cur); err != nil {
		return cur.ID, err
	}
	if err := w.bringUp(ctx, p, c, cur, bringUpOpts{}); err != nil {
		return cur.ID, err
	}
	cur.Status = state.StatusReady
	if err := w.save(func(st *state.State) { st.Set(cur) }); err != nil {
		return cur.ID, fmt.Errorf("%s: %w", c.Address, err)
	}
	w.phase(c, "ready")
	return cur.ID, nil
}

func (w *walk) delete(ctx context.Context, p providers.Provider, c *planner.Change) error {
	kind := providers.KindNode
	if c.Index == nil {
		kind = providers.KindPool
	}
	obj := providers.Object{Kind: kind, Address: c.Address, ID: c.PriorID, Lineage: w.st.Lineage, Private: stringAttrs(c.Before)}
	if err := p.Delete(ctx, obj); err != nil && !errors.Is(err, providers.ErrNotFound) {
		return fmt.Errorf("%s: delete: %w", c.Address, err)
	}
	addr := c.Address
	err := w.save(func(st *state.State) {
		// Remove the record only if it is still the object deleted (a
		// replacement may already have been recorded under the address).
		if r := st.Get(addr); r != nil && r.ID == c.PriorID {
			st.Remove(addr)
		}
	})
	if err != nil {
		return fmt.Errorf("%s: %w", c.Address, err)
	}
	if kind == providers.KindNode && *c.Index > 0 && !strings.Contains(addr, "#") {
		w.tellHeadPoolSize(ctx, c)
	}
	// The address of a duplicate carries "#id"; its keys belong to the
	// real resource.
	if !strings.Contains(addr, "#") {
		var kerr error
		if kind == providers.KindPool {
			kerr = w.e.Keys.RemoveAll(c.Pool)
		} else {
			kerr = w.e.Keys.RemoveAll(fmt.Sprintf("%s/node-%d", c.Pool, *c.Index))
		}
		if kerr != nil && !errors.Is(kerr, fs.ErrNotExist) {
			return fmt.Errorf("%s: remove keys: %w", c.Address, kerr)
		}
	}
	return nil
}

func (w *walk) phase(c *planner.Change, phase string) {
	w.e.emit(Event{Type: NodePhase, Address: c.Address, Op: planner.OpCreate, Action: c.Action, Phase: phase})
}

// controllerAttrs are the attributes of a node that the controller, not
// the provider or the config, decides; an update keeps them.
var controllerAttrs = []string{"host_key", "host_key_source", "ssh_server", "created_at", "started_from"}

// merged is the state attributes of a resource: the desired settings, the
// provider's facts and the controller's own (extra).
func merged(after map[string]any, obj providers.Object, extra map[string]any) map[string]any {
	facts := planner.Facts(obj)
	out := make(map[string]any, len(after)+len(facts)+len(extra))
	for k, v := range after {
		out[k] = v
	}
	for k, v := range facts {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

func stringAttrs(m map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

// tellHeadPoolSize tells the head of a pool that shrank how many nodes it
// has now, so that its status and members forget the removed ones. The
// node is gone either way: a failure is reported, not returned.
func (w *walk) tellHeadPoolSize(ctx context.Context, c *planner.Change) {
	headAddr := providers.NodeAddress(c.Pool, 0)
	if hc := w.plan.Change(headAddr); hc != nil && hc.Action != planner.NoOp {
		return // created, replaced, updated or deleted by this apply: it learns the size there
	}
	head := w.get(headAddr)
	if head == nil || head.Status != state.StatusReady {
		return
	}
	err := func() error {
		token, err := PoolToken(w.e.Keys, c.Pool)
		if err != nil {
			return err
		}
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cl, err := DialNode(dctx, w.e.Keys, head)
		if err != nil {
			return err
		}
		defer cl.Close()
		return cluster.SetPoolSize(dctx, cl, token, w.poolSize(c.Pool))
	}()
	if err != nil {
		w.e.emit(Event{Type: NodePhase, Address: c.Address, Op: planner.OpDelete, Action: c.Action, Detail: fmt.Sprintf("the head was not told: %v", err)})
	}
}
