package runpod

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"

	"github.com/skyward-sh/skyward/providers"
)

func TestNewEndpoints(t *testing.T) {
	t.Setenv(EnvREST, "")
	t.Setenv(EnvGraphQL, "")
	tests := map[string]struct {
		cfg          Config
		rest, gql    string
		cloud, image string
		err          string
	}{
		"defaults":  {cfg: Config{}, rest: DefaultEndpoint, gql: DefaultGraphQL, cloud: "SECURE", image: DefaultImage},
		"emulator":  {cfg: Config{Endpoint: "http://127.0.0.1:9/v1/", CloudType: "community", Image: "img"}, rest: "http://127.0.0.1:9/v1", gql: "http://127.0.0.1:9/graphql", cloud: "COMMUNITY", image: "img"},
		"bad cloud": {cfg: Config{CloudType: "ALL"}, err: `cloud_type = "ALL" is not a RunPod cloud; use "SECURE" or "COMMUNITY"`},
		"bad url":   {cfg: Config{Endpoint: "rest.runpod.io"}, err: `endpoint "rest.runpod.io" is not an http(s) URL`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := New(tc.cfg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []string{p.api.restURL, p.api.graphqlURL, p.cloudType, p.image}
			if diff := cmp.Diff([]string{tc.rest, tc.gql, tc.cloud, tc.image}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeConfig(t *testing.T) {
	v := cty.ObjectVal(map[string]cty.Value{
		"api_key": cty.StringVal("k"), "endpoint": cty.NullVal(cty.String), "cloud_type": cty.StringVal("SECURE"),
		"image": cty.NullVal(cty.String), "data_centers": cty.ListVal([]cty.Value{cty.StringVal("EU-RO-1"), cty.StringVal("US-KS-2")}),
	})
	c, err := DecodeConfig(v)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{APIKey: "k", CloudType: "SECURE", DataCenters: []string{"EU-RO-1", "US-KS-2"}}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if f := Factory(); !f.IsSensitive("api_key") || f.IsSensitive("endpoint") {
		t.Errorf("sensitive arguments %v, want api_key only", f.Sensitive)
	}
}

func TestPodNames(t *testing.T) {
	const lin = "0c16ab12-3456-7890-abcd-ef0123456789"
	if got := podName(lin, "my-pool", 12); got != "skyward-0c16ab12-my-pool-12" {
		t.Errorf("podName = %q", got)
	}
	tests := map[string]struct {
		name  string
		pool  string
		index int
		ok    bool
	}{
		"plain":        {"skyward-0c16ab12-dev-0", "dev", 0, true},
		"dashed pool":  {"skyward-0c16ab12-my-pool-12", "my-pool", 12, true},
		"other state":  {"skyward-ffffffff-dev-0", "", 0, false},
		"no index":     {"skyward-0c16ab12-dev", "", 0, false},
		"leading zero": {"skyward-0c16ab12-dev-01", "", 0, false},
		"not ours":     {"my-notebook", "", 0, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pool, index, ok := parsePodName(tc.name, namePrefix(lin))
			if pool != tc.pool || index != tc.index || ok != tc.ok {
				t.Errorf("parsePodName(%q) = %q, %d, %v", tc.name, pool, index, ok)
			}
		})
	}
}

func TestShapeOf(t *testing.T) {
	tests := map[string]struct {
		spec providers.NodeSpec
		want string
	}{
		"cpu default":  {providers.NodeSpec{}, "a 2-vCPU cpu3c CPU pod"},
		"cpu general":  {providers.NodeSpec{VCPUs: 4, MemoryGB: 16}, "a 4-vCPU cpu3g CPU pod"},
		"cpu memory":   {providers.NodeSpec{VCPUs: 1.5, MemoryGB: 12}, "a 2-vCPU cpu3m CPU pod"},
		"gpu":          {providers.NodeSpec{Accelerator: "NVIDIA L4"}, "1 x NVIDIA L4"},
		"gpu count":    {providers.NodeSpec{Accelerator: "NVIDIA A100 80GB PCIe:4"}, "4 x NVIDIA A100 80GB PCIe"},
		"bad count":    {providers.NodeSpec{Accelerator: "NVIDIA L4:zero"}, "error"},
		"no gpu name":  {providers.NodeSpec{Accelerator: ":2"}, "error"},
		"spot cpu pod": {providers.NodeSpec{Allocation: "spot"}, "error"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := shapeOf(tc.spec)
			got := s.String()
			if err != nil {
				got = "error"
			}
			if got != tc.want {
				t.Errorf("shapeOf(%+v) = %q (%v), want %q", tc.spec, got, err, tc.want)
			}
		})
	}
	s, _ := shapeOf(providers.NodeSpec{Accelerator: "NVIDIA L4:2", VCPUs: 9, MemoryGB: 33, DiskGB: 40.5})
	if s.vcpusPer != 5 || s.memPer != 17 || s.disk != 41 {
		t.Errorf("per-GPU minimums %+v, want 5 vCPUs and 17 GB per GPU, 41 GB of disk", s)
	}
}

func TestErrorMessages(t *testing.T) {
	tests := map[string]struct {
		body string
		want string
	}{
		"rest":    {`{"error":"create pod: no","status":400}`, "create pod: no"},
		"graphql": {`{"errors":[{"message":"Something went wrong"}]}`, "Something went wrong"},
		"text":    {"upstream connect error\nmore", "upstream connect error"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := errorMessage([]byte(tc.body)); got != tc.want {
				t.Errorf("errorMessage = %q, want %q", got, tc.want)
			}
		})
	}
	for msg, want := range map[string]bool{
		"SUPPLY_CONSTRAINT: full": true,
		"create pod: There are no longer any instances available with the requested specifications. Please refresh and try again.": true,
		"invalid gpuTypeIds": false,
	} {
		if capacityMessage(msg) != want {
			t.Errorf("capacityMessage(%q) = %v", msg, !want)
		}
	}
}
