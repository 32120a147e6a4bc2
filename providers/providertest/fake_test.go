package providertest

import (
	"context"
	"testing"
	"time"

	"github.com/skyward-sh/skyward/providers"
)

// TestFake runs the suite on the in-memory fake, with nodes that take a
// while to run after Create, in both host key modes.
func TestFake(t *testing.T) {
	for name, installed := range map[string]bool{"first-contact": false, "installed": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			Run(t, Harness{
				New: func(t *testing.T) providers.Provider {
					f := &Fake{CreateDelay: 200 * time.Millisecond, InstallHostKey: installed}
					t.Cleanup(f.Close)
					return f
				},
				Stop:    func(t *testing.T, p providers.Provider, o providers.Object) { p.(*Fake).Stop(o) },
				Timeout: 30 * time.Second,
			})
		})
	}
}

// TestFakeCreateIsAsynchronous checks the fake's one promise the suite
// relies on: Create returns before the node runs.
func TestFakeCreateIsAsynchronous(t *testing.T) {
	f := &Fake{CreateDelay: time.Hour}
	defer f.Close()
	ctx := context.Background()
	pool, err := f.Create(ctx, providers.Resource{Kind: providers.KindPool, Address: "pool.dev", Pool: "dev", Lineage: "l"})
	if err != nil {
		t.Fatal(err)
	}
	o, err := f.Create(ctx, providers.Resource{Kind: providers.KindNode, Address: "pool.dev.node[0]", Pool: "dev", Lineage: "l",
		PoolObject: &pool, Node: &providers.NodeSpec{AuthorizedKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKqgXk7VK0s3xgN1pS1rR0c6CRdWC6l8Kq2G9b9g5m1f"}})
	if err != nil {
		t.Fatal(err)
	}
	if o.ID == "" || o.Running || !o.SSH.IsZero() {
		t.Errorf("create returned %+v, want an id and a node not running yet", o)
	}
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := f.Wait(wctx, o); err == nil {
		t.Errorf("wait returned before the node ran")
	}
}
