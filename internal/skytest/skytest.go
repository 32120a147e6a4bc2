// Package skytest holds fixtures that tests of several packages share: a
// provider registry and a config, without Docker or files.
package skytest

import (
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/providers"
)

// Registry has a "container" provider (image and network arguments; vcpus
// and memory_gb change in place) and an "aws" one (region), neither of
// which can build a provider.
func Registry() *providers.Registry {
	r := &providers.Registry{}
	r.Register("container", providers.Factory{
		Schema: hcldec.ObjectSpec{
			"image":   &hcldec.AttrSpec{Name: "image", Type: cty.String},
			"network": &hcldec.AttrSpec{Name: "network", Type: cty.String},
		},
		InPlace:      []string{"vcpus", "memory_gb"},
		ForceNew:     []string{"image"},
		PoolForceNew: []string{"network"},
		RequiresReplace: func(_ string, before, after any) bool {
			b, _ := before.(float64)
			a, _ := after.(float64)
			return a == 0 && b != 0
		},
	})
	r.Register("aws", providers.Factory{
		Schema: hcldec.ObjectSpec{"region": &hcldec.AttrSpec{Name: "region", Type: cty.String}},
	})
	return r
}

// Config is a config with one container provider on image and one pool
// "dev" of nodes nodes with 1 vCPU and memory GB each.
func Config(nodes int, memory float64, image string) *hclspec.Config {
	return &hclspec.Config{
		Dir: "/nonexistent",
		Providers: map[string]*hclspec.Provider{
			"container": {Type: "container", Config: cty.ObjectVal(map[string]cty.Value{
				"image": cty.StringVal(image), "network": cty.NullVal(cty.String)})},
		},
		Pools: map[string]*hclspec.Pool{
			"dev": {Name: "dev", Provider: "container", Nodes: nodes, VCPUs: 1, MemoryGB: memory, Concurrency: 1, Allocation: "on-demand"},
		},
	}
}
