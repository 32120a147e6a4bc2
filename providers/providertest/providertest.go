// Package providertest is the harness every provider passes: Run checks
// the provider seam (create, wait, read, list, update, stop and start,
// delete, not-found semantics) against a real provider or an emulator, and
// RunPipeline takes a pool through the whole node pipeline (connect,
// bootstrap, agent, join, run, destroy) as `skyward apply`, `run` and
// `destroy` do.
//
// It is imported by tests only. Unlike a provider it uses the controller's
// packages (cluster, planner, executor, state), since the pipeline is what
// it checks.
package providertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/skyward-sh/skyward/cluster"
	"github.com/skyward-sh/skyward/providers"
)

// Harness describes the provider under test.
type Harness struct {
	// New builds the provider. Every subtest builds its own, with a
	// lineage of its own; objects left behind are the caller's to sweep
	// (for instance by label, in t.Cleanup).
	New func(t *testing.T) providers.Provider
	// Node completes a node's spec with what this provider needs (a base
	// image, an agent binary); the suite sets hostname, keys and sizes.
	Node func(t *testing.T, spec *providers.NodeSpec)
	// Stop stops a running node behind the provider's back, as a machine
	// that shut down; Update must start it again.
	Stop func(t *testing.T, p providers.Provider, o providers.Object)
	// Timeout bounds each call; 0 means 2 minutes.
	Timeout time.Duration
}

// Run runs the conformance suite on the provider of h.
func Run(t *testing.T, h Harness) {
	t.Run("CreateWaitRead", func(t *testing.T) { t.Parallel(); testCreateWaitRead(t, h) })
	t.Run("List", func(t *testing.T) { t.Parallel(); testList(t, h) })
	t.Run("NotFound", func(t *testing.T) { t.Parallel(); testNotFound(t, h) })
	t.Run("UpdateInPlace", func(t *testing.T) { t.Parallel(); testUpdate(t, h) })
	t.Run("StopStart", func(t *testing.T) { t.Parallel(); testStopStart(t, h) })
}

// env is one subtest's provider, lineage and keys.
type env struct {
	t       *testing.T
	h       Harness
	p       providers.Provider
	lineage string
	signer  ssh.Signer
	pub     string
	hostKey []byte
	hostPub string
}

func newEnv(t *testing.T, h Harness) *env { return newEnvOn(t, h, h.New(t)) }

// newEnvOn is newEnv on a provider another env uses, with a lineage of
// its own.
func newEnvOn(t *testing.T, h Harness, p providers.Provider) *env {
	t.Helper()
	priv, pub, err := cluster.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, hostPub, err := cluster.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, h: h, p: p, lineage: Lineage(t), signer: signer, pub: pub, hostKey: hostKey, hostPub: hostPub}
}

// Lineage returns a fresh lineage for one test's objects.
func Lineage(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (e *env) ctx() (context.Context, context.CancelFunc) {
	d := e.h.Timeout
	if d == 0 {
		d = 2 * time.Minute
	}
	return context.WithTimeout(context.Background(), d)
}

func (e *env) resource(kind providers.Kind, pool string, index int, poolObj *providers.Object) providers.Resource {
	addr := providers.PoolAddress(pool)
	if kind == providers.KindNode {
		addr = providers.NodeAddress(pool, index)
	}
	r := providers.Resource{Kind: kind, Address: addr, Pool: pool, Index: index, Lineage: e.lineage, PoolObject: poolObj,
		Labels: map[string]string{providers.LabelManaged: "true", providers.LabelLineage: e.lineage, providers.LabelAddress: addr}}
	if kind == providers.KindPool {
		r.AuthorizedKey = e.pub
	}
	if kind == providers.KindNode {
		r.Node = &providers.NodeSpec{Hostname: fmt.Sprintf("%s-%d", pool, index), VCPUs: 1, MemoryGB: 0.5,
			AuthorizedKey: e.pub, HostKey: e.hostKey}
		if e.h.Node != nil {
			e.h.Node(e.t, r.Node)
		}
	}
	return r
}

// pool creates a pool's shared objects.
func (e *env) pool(name string) providers.Object {
	e.t.Helper()
	ctx, cancel := e.ctx()
	defer cancel()
	o, err := e.p.Create(ctx, e.resource(providers.KindPool, name, -1, nil))
	if err != nil {
		e.t.Fatalf("create pool.%s: %v", name, err)
	}
	e.cleanup(o)
	if o.ID == "" || o.Kind != providers.KindPool || o.Address != providers.PoolAddress(name) {
		e.t.Fatalf("create pool.%s returned %+v", name, o)
	}
	return o
}

// node creates node index of a pool and waits until it runs.
func (e *env) node(pool providers.Object, index int) providers.Object {
	e.t.Helper()
	ctx, cancel := e.ctx()
	defer cancel()
	r := e.resource(providers.KindNode, pool.Address[len("pool."):], index, &pool)
	o, err := e.p.Create(ctx, r)
	if err != nil {
		e.t.Fatalf("create %s: %v", r.Address, err)
	}
	e.cleanup(o)
	if o.ID == "" {
		e.t.Fatalf("create %s returned no id: %+v", r.Address, o)
	}
	return e.wait(o)
}

// cleanup deletes o when the test ends, whatever happened: a test that
// fails leaves nothing behind (a delete of what is gone is no error).
func (e *env) cleanup(o providers.Object) {
	e.t.Cleanup(func() {
		ctx, cancel := e.ctx()
		defer cancel()
		if err := e.p.Delete(ctx, o); err != nil {
			e.t.Errorf("clean up %s: %v", o.Address, err)
		}
	})
}

// wait waits for a node as the executor does: Wait, or Read until it
// runs with an SSH endpoint.
func (e *env) wait(o providers.Object) providers.Object {
	e.t.Helper()
	ctx, cancel := e.ctx()
	defer cancel()
	if w, ok := e.p.(providers.Waiter); ok {
		got, err := w.Wait(ctx, o)
		if err != nil {
			e.t.Fatalf("wait %s: %v", o.Address, err)
		}
		return got
	}
	for {
		got, err := e.p.Read(ctx, o)
		if err != nil {
			e.t.Fatalf("read %s while waiting: %v", o.Address, err)
		}
		if got.Running && !got.SSH.IsZero() {
			return got
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("%s did not run with an SSH endpoint: last read %+v", o.Address, got)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (e *env) delete(o providers.Object) {
	e.t.Helper()
	ctx, cancel := e.ctx()
	defer cancel()
	if err := e.p.Delete(ctx, o); err != nil {
		e.t.Fatalf("delete %s: %v", o.Address, err)
	}
}

// checkNode checks what every running node must tell: identity from its
// labels or name, an SSH endpoint that answers with the pool's key and a
// host key that can be pinned, and a private address when the provider
// says its nodes share a network.
func (e *env) checkNode(o providers.Object, addr string) {
	e.t.Helper()
	caps := e.p.Capabilities()
	if o.Kind != providers.KindNode || o.Address != addr || o.Lineage != e.lineage || !o.Running {
		e.t.Errorf("node object %+v: want kind node, address %s, lineage %s, running", o, addr, e.lineage)
	}
	if o.SSH.Host == "" || o.SSH.User == "" {
		e.t.Errorf("%s: SSH endpoint %+v lacks a host or user", addr, o.SSH)
	}
	if caps.PrivateNetwork && o.PrivateIP == "" {
		e.t.Errorf("%s: no private address, though the provider says its nodes share a private network", addr)
	}
	ep := cluster.Endpoint{Address: addr, Host: o.SSH.Host, Port: o.SSH.Port, User: o.SSH.User, Signer: e.signer}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var cl *cluster.Client
	var err error
	switch {
	case caps.HostKey == providers.HostKeyInstalled:
		ep.HostKey = e.hostPub
		cl, err = cluster.WaitDial(ctx, ep, 20*time.Millisecond)
	case o.HostKey != "":
		ep.HostKey = o.HostKey
		cl, err = cluster.WaitDial(ctx, ep, 20*time.Millisecond)
	default:
		var key string
		cl, key, err = cluster.WaitDialRecord(ctx, ep, 20*time.Millisecond)
		if err == nil && key == "" {
			e.t.Errorf("%s: first contact recorded no host key", addr)
		}
	}
	if err != nil {
		e.t.Errorf("%s: SSH with the pool's key: %v", addr, err)
		return
	}
	cl.Close()
}

func testCreateWaitRead(t *testing.T, h Harness) {
	e := newEnv(t, h)
	pool := e.pool("dev")
	defer e.delete(pool)
	o := e.node(pool, 0)
	defer e.delete(o)
	e.checkNode(o, "pool.dev.node[0]")

	ctx, cancel := e.ctx()
	defer cancel()
	got, err := e.p.Read(ctx, o)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if got.ID != o.ID || got.Address != o.Address || got.SSH != o.SSH || !got.Running {
		t.Errorf("read %+v, want the waited-for %+v", got, o)
	}
	if p, err := e.p.Read(ctx, pool); err != nil || p.ID != pool.ID {
		t.Errorf("read pool: %+v, %v", p, err)
	}
}

func testList(t *testing.T, h Harness) {
	e := newEnv(t, h)
	other := newEnvOn(t, h, e.p) // another state's objects, on the same provider
	pool := e.pool("dev")
	defer e.delete(pool)
	n0, n1 := e.node(pool, 0), e.node(pool, 1)
	defer e.delete(n0)
	defer e.delete(n1)
	otherPool := other.pool("dev")
	defer other.delete(otherPool)

	ctx, cancel := e.ctx()
	defer cancel()
	list, err := e.p.List(ctx, e.lineage)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, o := range list {
		if o.Lineage != e.lineage {
			t.Errorf("List(%s) returned %s of lineage %s", e.lineage, o.Address, o.Lineage)
		}
		got[o.Address] = o.ID
	}
	want := map[string]string{pool.Address: pool.ID, n0.Address: n0.ID, n1.Address: n1.ID}
	for addr, id := range want {
		if got[addr] != id {
			t.Errorf("List: %s has id %q, want %q (listed: %v)", addr, got[addr], id, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("List: %v, want exactly %v", got, want)
	}
}

func testNotFound(t *testing.T, h Harness) {
	e := newEnv(t, h)
	pool := e.pool("dev")
	defer e.delete(pool)
	o := e.node(pool, 0)
	e.delete(o)
	e.delete(o) // a second delete of what is gone is no error

	ctx, cancel := e.ctx()
	defer cancel()
	if _, err := e.p.Read(ctx, o); !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("read after delete: %v, want ErrNotFound", err)
	}
	r := e.resource(providers.KindNode, "dev", 0, &pool)
	if _, err := e.p.Update(ctx, o, r); !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("update after delete: %v, want ErrNotFound", err)
	}
	list, err := e.p.List(ctx, e.lineage)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(list, func(l providers.Object) bool { return l.ID == o.ID }) {
		t.Errorf("List after delete still has %s", o.ID)
	}
}

func testUpdate(t *testing.T, h Harness) {
	e := newEnv(t, h)
	pool := e.pool("dev")
	defer e.delete(pool)
	o := e.node(pool, 0)
	defer e.delete(o)
	r := e.resource(providers.KindNode, "dev", 0, &pool)
	r.Node.MemoryGB = 0.75
	ctx, cancel := e.ctx()
	defer cancel()
	up, err := e.p.Update(ctx, o, r)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if up.ID != o.ID {
		t.Errorf("update in place changed the id %s -> %s", o.ID, up.ID)
	}
	e.checkNode(e.wait(up), o.Address)
}

func testStopStart(t *testing.T, h Harness) {
	if h.Stop == nil {
		t.Fatal("the harness cannot stop a node: every provider must let a test stop one")
	}
	e := newEnv(t, h)
	pool := e.pool("dev")
	defer e.delete(pool)
	o := e.node(pool, 0)
	defer e.delete(o)
	h.Stop(t, e.p, o)
	ctx, cancel := e.ctx()
	defer cancel()
	got, err := e.p.Read(ctx, o)
	if err != nil {
		t.Fatalf("read of a stopped node: %v", err)
	}
	if got.Running {
		t.Errorf("read of a stopped node: running")
	}
	list, err := e.p.List(ctx, e.lineage)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(list, func(l providers.Object) bool { return l.ID == o.ID }); i < 0 || list[i].Running {
		t.Errorf("List of a stopped node: %+v", list)
	}
	up, err := e.p.Update(ctx, got, e.resource(providers.KindNode, "dev", 0, &pool))
	if err != nil {
		t.Fatalf("update (start) of a stopped node: %v", err)
	}
	e.checkNode(e.wait(up), o.Address)
}
