package providertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyward-sh/skyward/agent"
	"github.com/skyward-sh/skyward/cluster"
	"github.com/skyward-sh/skyward/executor"
	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/planner"
	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/state"
)

// Pipeline describes a provider whose nodes run the real node pipeline.
type Pipeline struct {
	// Registry knows the provider's type.
	Registry *providers.Registry
	// Provider is the provider block, its Config as its factory's schema
	// decodes it.
	Provider *hclspec.Provider
	// AgentBinary is the static skyward binary for the nodes.
	AgentBinary string
	// Pool, if set, completes the pool with what this provider's pools of
	// two nodes need (an accelerator).
	Pool func(p *hclspec.Pool)
	// Timeout bounds the whole pipeline; 0 means 10 minutes.
	Timeout time.Duration
}

// RunPipeline takes a pool of two nodes through what `skyward apply`,
// `skyward run` and `skyward destroy` do: plan from an empty state, apply
// (create, wait, connect with a pinned host key, bootstrap an image with
// env, includes and setup, start the agents, join the head), run a
// broadcast execution on every node, then destroy, after which the
// provider lists nothing of the pool.
func RunPipeline(t *testing.T, pl Pipeline) {
	timeout := pl.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "src", "data.txt"), []byte("included\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := pl.Provider.Addr()
	cfg := &hclspec.Config{
		Dir:       dir,
		Providers: map[string]*hclspec.Provider{addr: pl.Provider},
		Images: map[string]*hclspec.Image{"img": {Name: "img", Env: map[string]string{"PIPELINE": "yes"},
			Includes: []string{"src"}, Setup: []string{"echo done > /tmp/pipeline-setup"}}},
		Pools: map[string]*hclspec.Pool{"dev": {Name: "dev", Provider: addr, Nodes: 2, Image: "img", Concurrency: 1, Allocation: "on-demand"}},
	}
	if pl.Pool != nil {
		pl.Pool(cfg.Pools["dev"])
	}
	f, ok := pl.Registry.Lookup(pl.Provider.Type)
	if !ok {
		t.Fatalf("provider type %q is not registered", pl.Provider.Type)
	}
	p, err := f.New(pl.Provider.Config)
	if err != nil {
		t.Fatal(err)
	}
	provs := map[string]providers.Provider{addr: p}
	file := &state.File{Dir: filepath.Join(dir, ".skyward")}
	keys := &state.Keys{Dir: filepath.Join(dir, ".skyward", "keys")}
	ex := &executor.Executor{Providers: provs, State: file, Keys: keys, AgentBinary: pl.AgentBinary, ConfigDir: dir}
	st := state.New(state.NewLineage())

	apply := func(what string, opts planner.Options) *state.State {
		t.Helper()
		refreshed, _, err := planner.Refresh(ctx, st, provs)
		if err != nil {
			t.Fatalf("%s: refresh: %v", what, err)
		}
		plan, err := planner.Build(cfg, refreshed, pl.Registry, opts)
		if err != nil {
			t.Fatalf("%s: plan: %v", what, err)
		}
		res, err := ex.Apply(ctx, plan, refreshed)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return res.State
	}
	destroyed := false
	defer func() {
		if !destroyed {
			apply("destroy after a failure", planner.Options{Destroy: true})
		}
	}()

	st = apply("apply", planner.Options{})
	var nodes []*state.Resource
	for _, r := range st.Resources {
		if r.Type != string(providers.KindNode) {
			continue
		}
		nodes = append(nodes, r)
		if r.Status != state.StatusReady {
			t.Errorf("%s: status %s after apply, want ready", r.Address, r.Status)
		}
		if hk, _ := r.Attributes["host_key"].(string); !strings.HasPrefix(hk, "ssh-") {
			t.Errorf("%s: no host key pinned (%q)", r.Address, hk)
		}
		if src := executor.HostKeySource(r); src != string(p.Capabilities().HostKey) {
			t.Errorf("%s: host key source %q, want %q", r.Address, src, p.Capabilities().HostKey)
		}
	}
	if len(nodes) != 2 {
		t.Fatalf("%d nodes in state after apply, want 2", len(nodes))
	}

	token, err := executor.PoolToken(keys, "dev")
	if err != nil {
		t.Fatal(err)
	}
	workers := make([]*cluster.Worker, len(nodes))
	for i, r := range nodes {
		cl, err := executor.DialNode(ctx, keys, r)
		if err != nil {
			t.Fatalf("dial %s: %v", r.Address, err)
		}
		defer cl.Close()
		workers[i] = &cluster.Worker{Node: i, Slots: 1, Client: cl, Token: token}
	}
	head, err := cluster.AgentStatus(ctx, workers[0].Client)
	if err != nil {
		t.Fatal(err)
	}
	if !head.IsHead || len(head.Members) != 2 {
		t.Errorf("head status %+v, want the head with 2 members", head)
	}
	var jobs []cluster.Job
	for i := range nodes {
		jobs = append(jobs, cluster.Job{Node: i, Request: func(node int) agent.ExecRequest {
			return agent.ExecRequest{ID: fmt.Sprintf("pipeline-%d", node), Task: "pipeline",
				Script: `echo "$SKYWARD_NODE $PIPELINE $(cat /tmp/pipeline-setup) $(cat src/data.txt)"`,
				Env:    map[string]string{"SKYWARD_NODE": fmt.Sprint(node)}}
		}})
	}
	out := (&cluster.Dispatcher{Workers: workers, FailFast: true}).Run(ctx, jobs)
	for i, o := range out {
		want := fmt.Sprintf("%d yes done included", i)
		if o.Failed() || strings.TrimSpace(o.Stdout) != want {
			t.Errorf("node %d: exit %+v, err %v, stdout %q, stderr %q; want %q", i, o.Exit, o.Err, o.Stdout, o.Stderr, want)
		}
	}

	lineage := st.Lineage
	st = apply("destroy", planner.Options{Destroy: true})
	destroyed = true
	if len(st.Resources) != 0 {
		t.Errorf("state after destroy: %d resources", len(st.Resources))
	}
	left, err := p.List(ctx, lineage)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("the provider still lists %d objects of the pool after destroy: %+v", len(left), left)
	}
}
