package planner

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skyward-sh/skyward/internal/skytest"
	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/state"
)

// memProvider lists objects from memory and counts the calls.
type memProvider struct {
	objs  []providers.Object
	lists atomic.Int32
	reads atomic.Int32
}

var _ providers.Provider = (*memProvider)(nil)

func (m *memProvider) Type() string                         { return "container" }
func (m *memProvider) Capabilities() providers.Capabilities { return providers.Capabilities{} }
func (m *memProvider) Check(ctx context.Context) error      { return nil }
func (m *memProvider) Create(ctx context.Context, r providers.Resource) (providers.Object, error) {
	panic("not used")
}
func (m *memProvider) Read(ctx context.Context, o providers.Object) (providers.Object, error) {
	m.reads.Add(1)
	return o, nil
}
func (m *memProvider) Update(ctx context.Context, o providers.Object, r providers.Resource) (providers.Object, error) {
	panic("not used")
}
func (m *memProvider) Delete(ctx context.Context, o providers.Object) error { panic("not used") }
func (m *memProvider) List(ctx context.Context, lineage string) ([]providers.Object, error) {
	m.lists.Add(1)
	return m.objs, nil
}

// objectsOf returns the provider objects matching a state.
func objectsOf(st *state.State) []providers.Object {
	var out []providers.Object
	for _, r := range st.Resources {
		out = append(out, providers.Object{Kind: providers.Kind(r.Type), Address: r.Address, ID: r.ID, Lineage: st.Lineage, Running: true,
			PrivateIP: "10.0.0.1"})
	}
	return out
}

func TestRefresh(t *testing.T) {
	cfg := skytest.Config(3, 1, "img")
	tests := map[string]struct {
		mutate func(objs []providers.Object) []providers.Object
		want   map[string]string
	}{
		"in sync": {
			mutate: func(o []providers.Object) []providers.Object { return o },
			want:   map[string]string{},
		},
		"node deleted by hand is created again": {
			mutate: func(o []providers.Object) []providers.Object { return append(o[:2:2], o[3:]...) },
			want:   map[string]string{"pool.dev.node[1]": "create"},
		},
		"stopped node is started": {
			mutate: func(o []providers.Object) []providers.Object { o[1].Running = false; return o },
			want:   map[string]string{"pool.dev.node[0]": "update"},
		},
		"orphan beyond the configured nodes is destroyed": {
			mutate: func(o []providers.Object) []providers.Object {
				return append(o, providers.Object{Kind: providers.KindNode, Address: "pool.dev.node[3]", ID: "orphan3", Running: true})
			},
			want: map[string]string{"pool.dev.node[3]": "delete"},
		},
		"orphan of a removed pool is destroyed": {
			mutate: func(o []providers.Object) []providers.Object {
				return append(o, providers.Object{Kind: providers.KindPool, Address: "pool.old", ID: "net-old", Running: true})
			},
			want: map[string]string{"pool.old": "delete"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st := applied(t, cfg)
			// Object IDs follow state order: pool, node0, node1, node2.
			mp := &memProvider{objs: tc.mutate(objectsOf(st))}
			ref, _, err := Refresh(context.Background(), st, map[string]providers.Provider{"container": mp})
			if err != nil {
				t.Fatal(err)
			}
			if n := mp.lists.Load(); n != 1 {
				t.Errorf("List called %d times, want 1", n)
			}
			if n := mp.reads.Load(); n != 0 {
				t.Errorf("Read called %d times, want 0", n)
			}
			p, err := Build(cfg, ref, skytest.Registry(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, actions(p)); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRefreshAdoptsConfiguredOrphan(t *testing.T) {
	cfg := skytest.Config(2, 1, "img")
	st := applied(t, cfg)
	objs := objectsOf(st)
	// The state lost node 1 (a crash between create and state write),
	// but the provider still has it.
	st.Remove("pool.dev.node[1]")
	mp := &memProvider{objs: objs}
	ref, notes, err := Refresh(context.Background(), st, map[string]providers.Provider{"container": mp})
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 {
		t.Errorf("notes = %q, want one adoption note", notes)
	}
	p, err := Build(cfg, ref, skytest.Registry(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"pool.dev.node[1]": "replace"}, actions(p)); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	if c := p.Change("pool.dev.node[1]"); c.PriorID != objs[2].ID {
		t.Errorf("replaced object = %q, want the adopted %q", c.PriorID, objs[2].ID)
	}
}

// BenchmarkNoChangePlan1000 measures refresh and plan against a state of
// 1,000 nodes that matches the config (target: under 1s an operation).
func BenchmarkNoChangePlan1000(b *testing.B) {
	cfg := skytest.Config(1000, 1, "img")
	st := applied(b, cfg)
	mp := &memProvider{objs: objectsOf(st)}
	provs := map[string]providers.Provider{"container": mp}
	reg := skytest.Registry()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ref, _, err := Refresh(context.Background(), st, provs)
		if err != nil {
			b.Fatal(err)
		}
		p, err := Build(cfg, ref, reg, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if p.HasChanges() {
			b.Fatalf("unexpected changes: %s", p.Summary())
		}
	}
}
