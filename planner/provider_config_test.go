package planner

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/internal/skytest"
	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/state"
)

// cloudRegistry has a provider type "cloud" shaped like RunPod's: a
// sensitive api_key, a list and a map argument, an endpoint that replaces
// nothing and an image that replaces the nodes.
func cloudRegistry() *providers.Registry {
	r := &providers.Registry{}
	r.Register("cloud", providers.Factory{
		Schema: hcldec.ObjectSpec{
			"api_key":      &hcldec.AttrSpec{Name: "api_key", Type: cty.String},
			"endpoint":     &hcldec.AttrSpec{Name: "endpoint", Type: cty.String},
			"image":        &hcldec.AttrSpec{Name: "image", Type: cty.String},
			"data_centers": &hcldec.AttrSpec{Name: "data_centers", Type: cty.List(cty.String)},
			"tags":         &hcldec.AttrSpec{Name: "tags", Type: cty.Map(cty.String)},
		},
		Sensitive:    []string{"api_key"},
		ForceNew:     []string{"image"},
		PoolForceNew: []string{"data_centers"},
	})
	return r
}

func cloudConfig(key, endpoint, image string) *hclspec.Config {
	return &hclspec.Config{
		Dir: "/nonexistent",
		Providers: map[string]*hclspec.Provider{"cloud": {Type: "cloud", Config: cty.ObjectVal(map[string]cty.Value{
			"api_key":      cty.StringVal(key),
			"endpoint":     cty.StringVal(endpoint),
			"image":        cty.StringVal(image),
			"data_centers": cty.ListVal([]cty.Value{cty.StringVal("EU-1"), cty.StringVal("US-2")}),
			"tags":         cty.MapVal(map[string]cty.Value{"team": cty.StringVal("ml")}),
		})}},
		Pools: map[string]*hclspec.Pool{"gpu": {Name: "gpu", Provider: "cloud", Nodes: 1, Concurrency: 1, Allocation: "on-demand"}},
	}
}

// TestProviderConfigTyped: plans and state keep a provider's arguments with
// their types (lists and maps) and never its sensitive ones; the provider
// is rebuilt from them with the secret taken from the config; a changed
// credential or endpoint changes no resource, a ForceNew argument replaces
// the nodes and a PoolForceNew one the pool.
func TestProviderConfigTyped(t *testing.T) {
	reg := cloudRegistry()
	const secret = "rp-SECRET-key-1234"
	cfg := cloudConfig(secret, "http://127.0.0.1:1", "img:1")
	p, err := Build(cfg, state.New("l"), reg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pc := p.Providers["cloud"]
	if _, ok := pc.Config["api_key"]; ok {
		t.Errorf("the plan keeps the sensitive api_key: %v", pc.Config)
	}
	if dc, _ := pc.Config["data_centers"].([]any); len(dc) != 2 || dc[0] != "EU-1" {
		t.Errorf("data_centers kept as %#v, want a list", pc.Config["data_centers"])
	}
	if tags, _ := pc.Config["tags"].(map[string]any); tags["team"] != "ml" {
		t.Errorf("tags kept as %#v, want a map", pc.Config["tags"])
	}

	// Neither the plan file, the state nor show -json holds the secret.
	dir := t.TempDir()
	planPath := filepath.Join(dir, "plan")
	if err := WritePlanFile(planPath, dir, p); err != nil {
		t.Fatal(err)
	}
	st := state.New("l")
	for i, c := range p.Changes {
		st.Set(&state.Resource{Address: c.Address, Type: c.Type, Pool: c.Pool, Index: c.Index, Provider: c.Provider,
			ID: "id" + itoa(i), Attributes: c.After, Status: state.StatusReady})
	}
	stateJSON, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	show, err := json.Marshal(p.JSON("test"))
	if err != nil {
		t.Fatal(err)
	}
	planFile, err := os.ReadFile(planPath)
	if err != nil {
		t.Fatal(err)
	}
	for what, b := range map[string][]byte{"plan file": planFile, "state": stateJSON, "show -json": show} {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("the %s holds the sensitive api_key", what)
		}
	}

	// Rebuilt from the plan, the provider gets the secret from the config.
	read, err := ReadPlanFile(planPath)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := reg.Lookup("cloud")
	v, err := ProviderValue(f, read.Providers["cloud"], cfg.Providers["cloud"].Config)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.GetAttr("api_key"); got.IsNull() || got.AsString() != secret {
		t.Errorf("rebuilt api_key = %#v", got)
	}
	if got := v.GetAttr("data_centers"); !got.Type().IsListType() || got.LengthInt() != 2 {
		t.Errorf("rebuilt data_centers = %#v", got)
	}
	if v, err := ProviderValue(f, read.Providers["cloud"], cty.NilVal); err != nil || !v.GetAttr("api_key").IsNull() {
		t.Errorf("without a config, api_key = %#v, %v; want null (the provider's own default)", v.GetAttr("api_key"), err)
	}

	tests := map[string]struct {
		cfg  *hclspec.Config
		want map[string]string
	}{
		"new credential":  {cloudConfig("rp-OTHER-key", "http://127.0.0.1:1", "img:1"), map[string]string{}},
		"new endpoint":    {cloudConfig(secret, "http://127.0.0.1:2", "img:1"), map[string]string{}},
		"new image":       {cloudConfig(secret, "http://127.0.0.1:1", "img:2"), map[string]string{"pool.gpu.node[0]": "replace"}},
		"new data center": {withDataCenters(cloudConfig(secret, "http://127.0.0.1:1", "img:1"), "AP-3"), map[string]string{"pool.gpu": "replace", "pool.gpu.node[0]": "replace"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			next, err := Build(tc.cfg, st, reg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := actions(next)
			if len(got) != len(tc.want) {
				t.Fatalf("actions %v, want %v", got, tc.want)
			}
			for addr, a := range tc.want {
				if got[addr] != a {
					t.Errorf("%s: %q, want %q (all: %v)", addr, got[addr], a, got)
				}
			}
			var buf bytes.Buffer
			next.Render(&buf, Colors{})
			if strings.Contains(buf.String(), "rp-") {
				t.Errorf("the plan shows the credential:\n%s", buf.String())
			}
		})
	}
}

func withDataCenters(cfg *hclspec.Config, dc string) *hclspec.Config {
	p := cfg.Providers["cloud"]
	m := p.Config.AsValueMap()
	m["data_centers"] = cty.ListVal([]cty.Value{cty.StringVal(dc)})
	p.Config = cty.ObjectVal(m)
	return cfg
}

// TestLegacyNodeRecords: nodes recorded by an older skyward, with
// base_image and no provider_config, are not replaced by the upgrade.
func TestLegacyNodeRecords(t *testing.T) {
	cfg := skytest.Config(2, 1, "img:1")
	st := applied(t, cfg)
	for _, r := range st.Resources {
		if r.Index != nil {
			delete(r.Attributes, "provider_config")
			r.Attributes["base_image"] = "img:1"
		}
	}
	p, err := Build(cfg, st, skytest.Registry(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(p); len(got) != 0 {
		t.Errorf("actions %v, want none", got)
	}
}
