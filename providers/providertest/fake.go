package providertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/skyward-sh/skyward/cluster"
	"github.com/skyward-sh/skyward/providers"
)

// Fake is an in-memory provider with the shape of a cloud: Create returns
// an id at once and the node runs only CreateDelay later; its nodes are SSH
// servers on loopback that admit the pool's key and present a host key of
// their own (first contact), or the controller's when InstallHostKey is
// set. They accept no session: the fake checks the seam, not the node
// pipeline. It is safe for concurrent use; set the fields before use.
type Fake struct {
	// CreateDelay is how long after Create a node starts to run.
	CreateDelay time.Duration
	// InstallHostKey makes nodes present NodeSpec.HostKey, as containers
	// in agent mode do.
	InstallHostKey bool

	mu    sync.Mutex
	seq   int
	objs  map[string]*fakeObject
	close []func()
}

type fakeObject struct {
	obj     providers.Object
	spec    *providers.NodeSpec
	readyAt time.Time
	srv     *fakeSSH // nil while stopped
}

var (
	_ providers.Provider = (*Fake)(nil)
	_ providers.Waiter   = (*Fake)(nil)
)

// Type implements providers.Provider.
func (f *Fake) Type() string { return "fake" }

// Capabilities implements providers.Provider.
func (f *Fake) Capabilities() providers.Capabilities {
	c := providers.Capabilities{HostKey: providers.HostKeyFirstContact, PrivateNetwork: true, CreateTimeout: time.Minute}
	if f.InstallHostKey {
		c.HostKey = providers.HostKeyInstalled
	}
	return c
}

// Check implements providers.Provider.
func (f *Fake) Check(context.Context) error { return nil }

// Close stops every node's SSH server.
func (f *Fake) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.objs {
		if o.srv != nil {
			o.srv.stop()
			o.srv = nil
		}
	}
}

// Create implements providers.Provider: the object exists at once, and a
// node runs CreateDelay later.
func (f *Fake) Create(ctx context.Context, r providers.Resource) (providers.Object, error) {
	if r.Lineage == "" || r.Address == "" {
		return providers.Object{}, errors.New("fake: create needs a lineage and an address")
	}
	if r.Kind == providers.KindNode && (r.Node == nil || r.Node.AuthorizedKey == "") {
		return providers.Object{}, errors.New("fake: a node needs an authorized key")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.objs == nil {
		f.objs = map[string]*fakeObject{}
	}
	f.seq++
	o := &fakeObject{obj: providers.Object{Kind: r.Kind, Address: r.Address, Lineage: r.Lineage, ID: fmt.Sprintf("fake-%d", f.seq)}}
	if r.Kind == providers.KindPool {
		o.obj.Running = true
		o.obj.Private = map[string]string{"network": "fake-net-" + r.Pool}
	} else {
		spec := *r.Node
		o.spec = &spec
		o.readyAt = time.Now().Add(f.CreateDelay)
		o.obj.PrivateIP = fmt.Sprintf("10.0.0.%d", f.seq)
	}
	f.objs[o.obj.ID] = o
	return o.obj, nil
}

// Read implements providers.Provider; a node whose delay has passed is
// started on the first read after it.
func (f *Fake) Read(ctx context.Context, o providers.Object) (providers.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fo, ok := f.objs[o.ID]
	if !ok {
		return providers.Object{}, fmt.Errorf("fake: read %s: %w", o.ID, providers.ErrNotFound)
	}
	if err := f.advance(fo); err != nil {
		return providers.Object{}, err
	}
	return fo.obj, nil
}

// Wait implements providers.Waiter.
func (f *Fake) Wait(ctx context.Context, o providers.Object) (providers.Object, error) {
	for {
		got, err := f.Read(ctx, o)
		if err != nil || (got.Running && !got.SSH.IsZero()) {
			return got, err
		}
		select {
		case <-ctx.Done():
			return providers.Object{}, fmt.Errorf("fake: wait %s: %w", o.ID, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// advance starts a created node once its delay has passed; mu is held.
func (f *Fake) advance(fo *fakeObject) error {
	if fo.obj.Kind != providers.KindNode || fo.obj.Running || fo.readyAt.IsZero() || time.Now().Before(fo.readyAt) {
		return nil
	}
	fo.readyAt = time.Time{}
	return f.start(fo)
}

// start runs a node's SSH server; mu is held.
func (f *Fake) start(fo *fakeObject) error {
	srv, err := newFakeSSH(fo.spec, f.InstallHostKey)
	if err != nil {
		return fmt.Errorf("fake: start %s: %w", fo.obj.ID, err)
	}
	fo.srv = srv
	fo.obj.Running = true
	fo.obj.SSH = providers.SSHEndpoint{Host: "127.0.0.1", Port: srv.port(), User: "ubuntu"}
	return nil
}

// Stop stops a node behind the provider's back, as a machine that shut
// down.
func (f *Fake) Stop(o providers.Object) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fo, ok := f.objs[o.ID]; ok && fo.srv != nil {
		fo.srv.stop()
		fo.srv = nil
		fo.obj.Running = false
		fo.obj.SSH = providers.SSHEndpoint{}
	}
}

// Update implements providers.Provider: it records the new sizes and
// starts a stopped node.
func (f *Fake) Update(ctx context.Context, o providers.Object, r providers.Resource) (providers.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fo, ok := f.objs[o.ID]
	if !ok {
		return providers.Object{}, fmt.Errorf("fake: update %s: %w", o.ID, providers.ErrNotFound)
	}
	if fo.obj.Kind == providers.KindNode && r.Node != nil {
		spec := *r.Node
		fo.spec.VCPUs, fo.spec.MemoryGB = spec.VCPUs, spec.MemoryGB
		if !fo.obj.Running && fo.readyAt.IsZero() {
			if err := f.start(fo); err != nil {
				return providers.Object{}, err
			}
		}
	}
	return fo.obj, nil
}

// Delete implements providers.Provider.
func (f *Fake) Delete(ctx context.Context, o providers.Object) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fo, ok := f.objs[o.ID]; ok {
		if fo.srv != nil {
			fo.srv.stop()
		}
		delete(f.objs, o.ID)
	}
	return nil
}

// List implements providers.Provider.
func (f *Fake) List(ctx context.Context, lineage string) ([]providers.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []providers.Object
	for _, fo := range f.objs {
		if err := f.advance(fo); err != nil {
			return nil, err
		}
		if fo.obj.Lineage == lineage {
			out = append(out, fo.obj)
		}
	}
	return out, nil
}

// fakeSSH is a node's SSH server: handshakes only.
type fakeSSH struct {
	ln net.Listener
	wg sync.WaitGroup
}

func newFakeSSH(spec *providers.NodeSpec, installed bool) (*fakeSSH, error) {
	hostPEM := spec.HostKey
	if !installed || len(hostPEM) == 0 {
		var err error
		if hostPEM, _, err = cluster.GenerateKey(); err != nil {
			return nil, err
		}
	}
	host, err := ssh.ParsePrivateKey(hostPEM)
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	allowed, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(spec.AuthorizedKey)))
	if err != nil {
		return nil, fmt.Errorf("authorized key: %w", err)
	}
	conf := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if bytes.Equal(k.Marshal(), allowed.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("unknown key")
	}}
	conf.AddHostKey(host)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &fakeSSH{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				sc, chans, reqs, err := ssh.NewServerConn(c, conf)
				if err != nil {
					return
				}
				defer sc.Close()
				go ssh.DiscardRequests(reqs)
				for nc := range chans {
					nc.Reject(ssh.Prohibited, "the fake node runs nothing")
				}
			}()
		}
	}()
	return s, nil
}

func (s *fakeSSH) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *fakeSSH) stop() {
	s.ln.Close()
}
