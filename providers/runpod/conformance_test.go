package runpod

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/internal/dockertest"
	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/providers/providertest"
)

// TestConformance runs the provider suite on pods of the emulator: real
// containers with OpenSSH, reached at 127.0.0.1:portMappings["22"].
func TestConformance(t *testing.T) {
	s := emulator(t)
	providertest.Run(t, providertest.Harness{
		New: func(t *testing.T) providers.Provider { return newProvider(t, s, nil) },
		Stop: func(t *testing.T, _ providers.Provider, o providers.Object) {
			if err := s.Stop(context.Background(), o.ID); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// TestPipeline takes a pool of two nodes, an Instant Cluster, through
// apply, run and destroy; afterwards the emulator has no pod and no
// cluster left.
func TestPipeline(t *testing.T) {
	s := emulator(t)
	reg := &providers.Registry{}
	reg.Register(Type, Factory())
	providertest.RunPipeline(t, providertest.Pipeline{
		Registry:    reg,
		Provider:    &hclspec.Provider{Type: Type, Config: config(s, map[string]cty.Value{"data_centers": cty.ListVal([]cty.Value{cty.StringVal("US-KS-2")})})},
		AgentBinary: dockertest.AgentBinary(t),
		Pool:        func(p *hclspec.Pool) { p.Accelerator = "NVIDIA H100 80GB HBM3:1" },
		Timeout:     5 * time.Minute,
	})
	reqs := s.Requests()
	for _, want := range []string{"graphql createCluster", "graphql deleteCluster"} {
		if !slices.Contains(reqs, want) {
			t.Errorf("a pool of two nodes made no %s: %v", want, reqs)
		}
	}
	if slices.Contains(reqs, "POST /v1/pods") {
		t.Errorf("the pods of a cluster were rented one by one: %v", reqs)
	}
	if pods, cls, tmpls := s.Pods(), s.Clusters(), s.Templates(); len(pods) != 0 || len(cls) != 0 || len(tmpls) != 0 {
		t.Errorf("after destroy the emulator has pods %+v, clusters %+v and templates %+v", pods, cls, tmpls)
	}
}
