package planner

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/internal/skytest"
	"github.com/skyward-sh/skyward/state"
)

// applied returns the state an apply of cfg would leave.
func applied(t testing.TB, cfg *hclspec.Config) *state.State {
	t.Helper()
	st := state.New("lineage-1")
	p, err := Build(cfg, st, skytest.Registry(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range p.Changes {
		st.Set(&state.Resource{Address: c.Address, Type: c.Type, Pool: c.Pool, Index: c.Index, Provider: c.Provider,
			ID: "id" + itoa(i), Attributes: c.After, Status: state.StatusReady})
	}
	return st
}

func actions(p *Plan) map[string]string {
	out := map[string]string{}
	for _, c := range p.Changes {
		if c.Action != NoOp {
			out[c.Address] = c.Action.String()
		}
	}
	return out
}

func TestBuild(t *testing.T) {
	base := skytest.Config(2, 1, "img:1")
	tests := map[string]struct {
		cfg     *hclspec.Config
		prior   func(t *testing.T) *state.State
		opts    Options
		want    map[string]string
		summary string
	}{
		"fresh pool": {
			cfg:     base,
			prior:   func(t *testing.T) *state.State { return state.New("l") },
			want:    map[string]string{"pool.dev": "create", "pool.dev.node[0]": "create", "pool.dev.node[1]": "create"},
			summary: "Plan: 3 to add, 0 to change, 0 to destroy.",
		},
		"no changes": {
			cfg:     base,
			prior:   func(t *testing.T) *state.State { return applied(t, base) },
			want:    map[string]string{},
			summary: "No changes. Your infrastructure matches the configuration.",
		},
		"scale up": {
			cfg:     skytest.Config(3, 1, "img:1"),
			prior:   func(t *testing.T) *state.State { return applied(t, base) },
			want:    map[string]string{"pool.dev.node[2]": "create"},
			summary: "Plan: 1 to add, 0 to change, 0 to destroy.",
		},
		"scale down keeps the head": {
			cfg:     skytest.Config(1, 1, "img:1"),
			prior:   func(t *testing.T) *state.State { return applied(t, base) },
			want:    map[string]string{"pool.dev.node[1]": "delete"},
			summary: "Plan: 0 to add, 0 to change, 1 to destroy.",
		},
		"memory in place": {
			cfg:     skytest.Config(2, 2, "img:1"),
			prior:   func(t *testing.T) *state.State { return applied(t, base) },
			want:    map[string]string{"pool.dev.node[0]": "update", "pool.dev.node[1]": "update"},
			summary: "Plan: 0 to add, 2 to change, 0 to destroy.",
		},
		"lifting a memory limit replaces": {
			cfg:     skytest.Config(2, 0, "img:1"),
			prior:   func(t *testing.T) *state.State { return applied(t, base) },
			want:    map[string]string{"pool.dev.node[0]": "replace", "pool.dev.node[1]": "replace"},
			summary: "Plan: 2 to add, 0 to change, 2 to destroy.",
		},
		"base image replaces": {
			cfg:     skytest.Config(2, 1, "img:2"),
			prior:   func(t *testing.T) *state.State { return applied(t, base) },
			want:    map[string]string{"pool.dev.node[0]": "replace", "pool.dev.node[1]": "replace"},
			summary: "Plan: 2 to add, 0 to change, 2 to destroy.",
		},
		"tainted replaces": {
			cfg: base,
			prior: func(t *testing.T) *state.State {
				st := applied(t, base)
				st.Get("pool.dev.node[1]").Status = state.StatusTainted
				return st
			},
			want:    map[string]string{"pool.dev.node[1]": "replace"},
			summary: "Plan: 1 to add, 0 to change, 1 to destroy.",
		},
		"stopped node is started": {
			cfg: base,
			prior: func(t *testing.T) *state.State {
				st := applied(t, base)
				st.Get("pool.dev.node[0]").Attributes["running"] = false
				return st
			},
			want:    map[string]string{"pool.dev.node[0]": "update"},
			summary: "Plan: 0 to add, 1 to change, 0 to destroy.",
		},
		"dead agent is restarted": {
			cfg: base,
			prior: func(t *testing.T) *state.State {
				st := applied(t, base)
				st.Get("pool.dev.node[1]").Attributes["agent"] = AgentDown
				return st
			},
			want:    map[string]string{"pool.dev.node[1]": "update"},
			summary: "Plan: 0 to add, 1 to change, 0 to destroy.",
		},
		"replace requested": {
			cfg:   base,
			prior: func(t *testing.T) *state.State { return applied(t, base) },
			opts:  Options{Replace: []string{"dev/0"}},
			want:  map[string]string{"pool.dev.node[0]": "replace"},
		},
		"destroy": {
			cfg:     base,
			prior:   func(t *testing.T) *state.State { return applied(t, base) },
			opts:    Options{Destroy: true},
			want:    map[string]string{"pool.dev": "delete", "pool.dev.node[0]": "delete", "pool.dev.node[1]": "delete"},
			summary: "Plan: 0 to add, 0 to change, 3 to destroy.",
		},
		"target a node of a new pool brings the pool": {
			cfg:   base,
			prior: func(t *testing.T) *state.State { return state.New("l") },
			opts:  Options{Targets: []string{"pool.dev.node[1]"}},
			want:  map[string]string{"pool.dev": "create", "pool.dev.node[1]": "create"},
		},
		"pool removed from config": {
			cfg:   &hclspec.Config{Providers: base.Providers},
			prior: func(t *testing.T) *state.State { return applied(t, base) },
			want:  map[string]string{"pool.dev": "delete", "pool.dev.node[0]": "delete", "pool.dev.node[1]": "delete"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := Build(tc.cfg, tc.prior(t), skytest.Registry(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, actions(p)); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			if tc.summary != "" && p.Summary() != tc.summary {
				t.Errorf("summary = %q, want %q", p.Summary(), tc.summary)
			}
		})
	}
}

func TestBuildRecordsProviderOfRemovedPool(t *testing.T) {
	base := skytest.Config(1, 1, "img:1")
	st := applied(t, base)
	p, err := Build(&hclspec.Config{}, st, skytest.Registry(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := ProviderConfig{Type: "container", Config: map[string]any{"image": "img:1"}}
	if diff := cmp.Diff(want, p.Providers["container"]); diff != "" {
		t.Errorf("provider from state (-want +got):\n%s", diff)
	}
}

func TestRenderMarksForcedReplacement(t *testing.T) {
	base := skytest.Config(1, 1, "img:1")
	p, err := Build(skytest.Config(1, 2, "img:2"), applied(t, base), skytest.Registry(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	p.Render(&buf, Colors{})
	out := buf.String()
	for _, want := range []string{
		"# pool.dev.node[0] must be replaced",
		`~ provider_config = { image = "img:1" } -> { image = "img:2" } # forces replacement`,
		"~ memory_gb       = 1 -> 2\n",
		"Plan: 1 to add, 0 to change, 1 to destroy.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("render lacks %q:\n%s", want, out)
		}
	}
}

func TestSteps(t *testing.T) {
	base := skytest.Config(2, 1, "img:1")
	tests := map[string]struct {
		cfg   *hclspec.Config
		prior func(t *testing.T) *state.State
		opts  Options
		want  map[string][]string
	}{
		"create": {
			cfg:   base,
			prior: func(*testing.T) *state.State { return state.New("l") },
			want: map[string][]string{
				"create pool.dev":         nil,
				"create pool.dev.node[0]": {"create pool.dev"},
				"create pool.dev.node[1]": {"create pool.dev"},
			},
		},
		"destroy": {
			cfg:   base,
			prior: func(t *testing.T) *state.State { return applied(t, base) },
			opts:  Options{Destroy: true},
			want: map[string][]string{
				"delete pool.dev":         {"delete pool.dev.node[0]", "delete pool.dev.node[1]"},
				"delete pool.dev.node[0]": nil,
				"delete pool.dev.node[1]": nil,
			},
		},
		"replace": {
			cfg:   skytest.Config(1, 1, "img:2"),
			prior: func(t *testing.T) *state.State { return applied(t, skytest.Config(1, 1, "img:1")) },
			want: map[string][]string{
				"delete pool.dev.node[0]": nil,
				"create pool.dev.node[0]": {"delete pool.dev.node[0]"},
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := Build(tc.cfg, tc.prior(t), skytest.Registry(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for _, s := range p.Steps() {
				got[s.ID] = s.Deps
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseAddress(t *testing.T) {
	tests := map[string]struct {
		pool  string
		index int
		err   bool
	}{
		"pool.dev":          {pool: "dev", index: -1},
		"pool.dev.node[3]":  {pool: "dev", index: 3},
		"dev/1":             {pool: "dev", index: 1},
		"dev/x":             {err: true},
		"pool.dev.node[-1]": {err: true},
		"pool.dev.nodes[1]": {err: true},
		"dev":               {err: true},
		"pool.":             {err: true},
		"./0":               {err: true}, // found by FuzzParseAddress
		"\xe4.0/10000":      {err: true},
		"pool.a b":          {err: true},
		"pool.my-pool_2":    {pool: "my-pool_2", index: -1},
	}
	for in, tc := range tests {
		t.Run(in, func(t *testing.T) {
			pool, idx, err := ParseAddress(in)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if !tc.err && (pool != tc.pool || idx != tc.index) {
				t.Errorf("got %q %d, want %q %d", pool, idx, tc.pool, tc.index)
			}
		})
	}
}

func TestPlanFileStale(t *testing.T) {
	st := state.New("lin")
	st.Serial = 4
	p, err := Build(skytest.Config(1, 1, "i"), st, skytest.Registry(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "plan")
	if err := WritePlanFile(path, "/dir", p); err != nil {
		t.Fatal(err)
	}
	got, err := ReadPlanFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.CheckFresh(st); err != nil {
		t.Errorf("fresh plan refused: %v", err)
	}
	st.Serial++
	if err := got.CheckFresh(st); err == nil || !strings.Contains(err.Error(), "Saved plan is stale") {
		t.Errorf("stale plan accepted: %v", err)
	}
	if diff := cmp.Diff(actions(p), actions(got)); diff != "" {
		t.Errorf("plan changed in the file (-want +got):\n%s", diff)
	}
}

func TestShowJSONActions(t *testing.T) {
	base := skytest.Config(1, 1, "img:1")
	p, err := Build(skytest.Config(1, 1, "img:2"), applied(t, base), skytest.Registry(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	js := p.JSON("test")
	var got []string
	for _, rc := range js.ResourceChanges {
		got = append(got, rc.Address+" "+strings.Join(rc.Change.Actions, ","))
	}
	want := []string{"pool.dev no-op", "pool.dev.node[0] delete,create"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resource_changes (-want +got):\n%s", diff)
	}
	if js.PriorState == nil || len(js.PriorState.Values.RootModule.Resources) != 2 {
		t.Errorf("prior_state = %+v, want 2 resources", js.PriorState)
	}
}
