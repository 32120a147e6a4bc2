package container

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/zclconf/go-cty/cty"

	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/internal/dockertest"
	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/providers/providertest"
)

// modes are the two node modes, as provider blocks set them.
var modes = map[string]map[string]cty.Value{
	"agent":   {"ssh": cty.StringVal(ModeAgent)},
	"openssh": {"ssh": cty.StringVal(ModeOpenSSH), "user": cty.StringVal("ubuntu")},
}

// TestConformance runs the provider suite on containers in both node
// modes, with the real agent binary (skyward's SSH server in agent mode).
func TestConformance(t *testing.T) {
	needDocker(t)
	runConformance(t, DefaultBinary, dockerCli)
}

// TestPipeline takes a pool through apply, run and destroy on containers
// in both node modes.
func TestPipeline(t *testing.T) {
	needDocker(t)
	runPipeline(t, cty.NullVal(cty.String))
}

// runConformance runs the provider suite in both node modes on the
// runtime binary, whose engine cli stops nodes.
func runConformance(t *testing.T, binary string, cli *client.Client) {
	bin := dockertest.AgentBinary(t)
	for name, args := range modes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			providertest.Run(t, providertest.Harness{
				New: func(t *testing.T) providers.Provider {
					p, err := New(Config{Binary: binary, Image: baseImage, SSH: args["ssh"].AsString(), User: userOf(args)})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { p.Close() })
					return p
				},
				Node: func(t *testing.T, spec *providers.NodeSpec) { spec.AgentBinary = bin },
				Stop: func(t *testing.T, _ providers.Provider, o providers.Object) {
					timeout := 1
					if err := cli.ContainerStop(context.Background(), o.ID, container.StopOptions{Timeout: &timeout}); err != nil {
						t.Fatal(err)
					}
				},
			})
		})
	}
}

// runPipeline runs the executor-level pipeline in both node modes with
// the provider block's binary argument set to binary.
func runPipeline(t *testing.T, binary cty.Value) {
	bin := dockertest.AgentBinary(t)
	reg := &providers.Registry{}
	reg.Register(Type, Factory())
	for name, args := range modes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := map[string]cty.Value{"binary": binary, "image": cty.StringVal(baseImage),
				"network": cty.NullVal(cty.String), "ssh": args["ssh"], "user": cty.NullVal(cty.String)}
			if u, ok := args["user"]; ok {
				cfg["user"] = u
			}
			providertest.RunPipeline(t, providertest.Pipeline{
				Registry:    reg,
				Provider:    &hclspec.Provider{Type: Type, Config: cty.ObjectVal(cfg)},
				AgentBinary: bin,
				Timeout:     5 * time.Minute,
			})
		})
	}
}

func userOf(args map[string]cty.Value) string {
	if u, ok := args["user"]; ok {
		return u.AsString()
	}
	return ""
}
