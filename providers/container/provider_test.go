package container

import (
	"context"
	"io"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/zclconf/go-cty/cty"

	"github.com/skyward-sh/skyward/providers"
)

func TestDecodeAndNew(t *testing.T) {
	tests := map[string]struct {
		cfg      cty.Value
		env      map[string]string
		want     Config
		endpoint string // "" = do not check
		err      string
	}{
		"null": {
			cfg:  cty.NullVal(cty.DynamicPseudoType),
			want: Config{Binary: "docker", Image: "ubuntu:24.04", SSH: "agent", User: "root"},
		},
		"defaults": {
			cfg: cty.ObjectVal(map[string]cty.Value{
				"binary": cty.NullVal(cty.String), "image": cty.NullVal(cty.String), "network": cty.NullVal(cty.String),
			}),
			env:      map[string]string{"DOCKER_HOST": "unix:///tmp/skyward-test.sock"},
			want:     Config{Binary: "docker", Image: "ubuntu:24.04", SSH: "agent", User: "root"},
			endpoint: "unix:///tmp/skyward-test.sock",
		},
		"all set": {
			cfg: cty.ObjectVal(map[string]cty.Value{
				"binary": cty.StringVal("docker"), "image": cty.StringVal("debian:12"), "network": cty.StringVal("lab"),
			}),
			want: Config{Binary: "docker", Image: "debian:12", Network: "lab", SSH: "agent", User: "root"},
		},
		"podman CONTAINER_HOST": {
			cfg:      cty.ObjectVal(map[string]cty.Value{"binary": cty.StringVal("podman")}),
			env:      map[string]string{"CONTAINER_HOST": "unix:///tmp/podman-test.sock", "XDG_RUNTIME_DIR": "/run/user/7"},
			want:     Config{Binary: "podman", Image: "ubuntu:24.04", SSH: "agent", User: "root"},
			endpoint: "unix:///tmp/podman-test.sock",
		},
		"nerdctl": {
			cfg:      cty.ObjectVal(map[string]cty.Value{"binary": cty.StringVal("nerdctl")}),
			want:     Config{Binary: "nerdctl", Image: "ubuntu:24.04", SSH: "agent", User: "root"},
			endpoint: "nerdctl",
		},
		"unknown binary": {
			cfg: cty.ObjectVal(map[string]cty.Value{"binary": cty.StringVal("lxc")}),
			err: `unknown binary "lxc"`,
		},
		"openssh as ubuntu": {
			cfg:  cty.ObjectVal(map[string]cty.Value{"ssh": cty.StringVal("openssh"), "user": cty.StringVal("ubuntu")}),
			want: Config{Binary: "docker", Image: "ubuntu:24.04", SSH: "openssh", User: "ubuntu"},
		},
		"unknown ssh mode": {
			cfg: cty.ObjectVal(map[string]cty.Value{"ssh": cty.StringVal("dropbear")}),
			err: `ssh = "dropbear" is not a node mode`,
		},
		"user without openssh": {
			cfg: cty.ObjectVal(map[string]cty.Value{"user": cty.StringVal("ubuntu")}),
			err: `user = "ubuntu" needs ssh = "openssh"`,
		},
		"bad user name": {
			cfg: cty.ObjectVal(map[string]cty.Value{"ssh": cty.StringVal("openssh"), "user": cty.StringVal("-rf")}),
			err: `user = "-rf" is not a valid user name`,
		},
		"unknown value": {
			cfg: cty.ObjectVal(map[string]cty.Value{"image": cty.UnknownVal(cty.String)}),
			err: "not known yet",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			got, err := DecodeConfig(tc.cfg)
			if err == nil {
				if diff := cmp.Diff(tc.want, got); tc.err == "" && diff != "" {
					t.Errorf("config (-want +got):\n%s", diff)
				}
			}
			var p providers.Provider
			if err == nil {
				p, err = Factory().New(tc.cfg)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.(*Provider).Close()
			if p.Type() != "container" {
				t.Errorf("type %q", p.Type())
			}
			if ep := p.(*Provider).Endpoint(); tc.endpoint != "" && ep != tc.endpoint {
				t.Errorf("endpoint %q, want %q", ep, tc.endpoint)
			}
		})
	}
}

func TestFactory(t *testing.T) {
	f := Factory()
	if diff := cmp.Diff([]string{"vcpus", "memory_gb"}, f.InPlace); diff != "" {
		t.Errorf("InPlace (-want +got):\n%s", diff)
	}
	for _, a := range []string{"binary", "image", "network"} {
		if _, ok := f.Schema[a]; !ok {
			t.Errorf("schema lacks %q", a)
		}
	}
}

// fakeAPI fails every call it does not override (the embedded nil
// interface panics) and counts the calls it sees.
type fakeAPI struct {
	dockerAPI
	calls      map[string]int
	containers []container.Summary
	networks   []network.Summary
	startErr   error
	onStart    func()
	removed    []string
}

func (f *fakeAPI) count(name string) {
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[name]++
}

func (f *fakeAPI) ContainerList(ctx context.Context, o container.ListOptions) ([]container.Summary, error) {
	f.count("ContainerList")
	return f.containers, nil
}

func (f *fakeAPI) NetworkList(ctx context.Context, o network.ListOptions) ([]network.Summary, error) {
	f.count("NetworkList")
	return f.networks, nil
}

func (f *fakeAPI) ImageInspect(ctx context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	f.count("ImageInspect")
	return image.InspectResponse{}, nil
}

func (f *fakeAPI) ContainerCreate(ctx context.Context, c *container.Config, h *container.HostConfig, n *network.NetworkingConfig, p *ocispec.Platform, name string) (container.CreateResponse, error) {
	f.count("ContainerCreate")
	return container.CreateResponse{ID: "c1"}, nil
}

func (f *fakeAPI) CopyToContainer(ctx context.Context, id, dst string, r io.Reader, o container.CopyToContainerOptions) error {
	f.count("CopyToContainer")
	_, err := io.Copy(io.Discard, r)
	return err
}

func (f *fakeAPI) ContainerStart(ctx context.Context, id string, o container.StartOptions) error {
	f.count("ContainerStart")
	if f.onStart != nil {
		f.onStart()
	}
	return f.startErr
}

func (f *fakeAPI) ContainerRemove(ctx context.Context, id string, o container.RemoveOptions) error {
	f.count("ContainerRemove")
	if ctx.Err() != nil {
		return ctx.Err()
	}
	f.removed = append(f.removed, id)
	return nil
}

func TestListCallsAndMapping(t *testing.T) {
	f := &fakeAPI{
		networks: []network.Summary{{Name: "skyward-abc-dev", ID: "n1", Labels: map[string]string{
			providers.LabelLineage: "abc", providers.LabelAddress: "pool.dev", providers.LabelManaged: "true"}}},
	}
	for i, st := range []string{"running", "exited"} {
		s := container.Summary{
			ID: []string{"c0", "c1"}[i], Names: []string{"/skyward-abc-dev-" + []string{"0", "1"}[i]}, Image: "img", State: st,
			Labels: map[string]string{providers.LabelLineage: "abc", providers.LabelAddress: providers.NodeAddress("dev", i)},
			Ports:  []container.Port{{IP: "127.0.0.1", PrivatePort: 22, PublicPort: 32768, Type: "tcp"}},
			NetworkSettings: &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{
				"skyward-abc-dev": {IPAddress: "172.20.0.2"}}},
		}
		s.HostConfig.NetworkMode = "skyward-abc-dev"
		f.containers = append(f.containers, s)
	}
	p := newProvider(f, "fake://", Config{})
	got, err := p.List(context.Background(), "abc")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"ContainerList": 1, "NetworkList": 1}, f.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	want := []providers.Object{
		{Kind: providers.KindPool, Address: "pool.dev", ID: "n1", Lineage: "abc", Running: true,
			Private: map[string]string{"network": "skyward-abc-dev", "network_id": "n1", "shared": "false"}},
		{Kind: providers.KindNode, Address: "pool.dev.node[0]", ID: "c0", Lineage: "abc", Running: true,
			PrivateIP: "172.20.0.2", SSH: providers.SSHEndpoint{Host: "127.0.0.1", Port: 32768, User: "root"},
			Private: map[string]string{"name": "skyward-abc-dev-0", "network": "skyward-abc-dev"},
			Spec:    map[string]string{"base_image": "img"}},
		{Kind: providers.KindNode, Address: "pool.dev.node[1]", ID: "c1", Lineage: "abc", Running: false,
			Private: map[string]string{"name": "skyward-abc-dev-1", "network": "skyward-abc-dev"},
			Spec:    map[string]string{"base_image": "img"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
}

func TestCreateRemovesContainerOnFailure(t *testing.T) {
	f := &fakeAPI{startErr: cerrdefs.ErrUnavailable.WithMessage("no cgroup")}
	p := newProvider(f, "fake://", Config{Image: "img"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := providers.Resource{
		Kind: providers.KindNode, Address: "pool.dev.node[0]", Pool: "dev", Lineage: "abcdefgh-1234",
		PoolObject: &providers.Object{Private: map[string]string{"network": "skyward-abcdefgh-dev"}},
		Node:       &providers.NodeSpec{Hostname: "dev-0", AgentBinary: "provider_test.go", HostKey: []byte("k"), AuthorizedKey: "ssh-ed25519 AAAA"},
	}
	// A context cancelled meanwhile must not stop the cleanup.
	f.onStart = cancel
	_, err := p.Create(ctx, r)
	if err == nil || !strings.Contains(err.Error(), "create: container skyward-abcdefgh-dev-0: start: no cgroup") {
		t.Fatalf("error = %v", err)
	}
	if diff := cmp.Diff([]string{"c1"}, f.removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
}
