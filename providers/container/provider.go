package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
	"github.com/hashicorp/hcl/v2/hcldec"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/zclconf/go-cty/cty"

	"github.com/skyward-sh/skyward/providers"
)

// Type is the provider type as written in HCL.
const Type = "container"

// Defaults of the provider block.
const (
	DefaultBinary = "docker"
	DefaultImage  = "ubuntu:24.04"
	DefaultUser   = "root"
)

// Node modes: which SSH server a node container runs.
const (
	// ModeAgent: skyward's own SSH server is the container's PID 1, with
	// the host key the controller generated (fast; the image needs no
	// sshd).
	ModeAgent = "agent"
	// ModeOpenSSH: the image's own OpenSSH server runs, with host keys
	// made on the node, as on a cloud VM; the controller uploads the
	// agent over SSH.
	ModeOpenSSH = "openssh"
)

// createTimeout bounds the wait for a started container to run with its
// SSH port published.
const createTimeout = 2 * time.Minute

// Labels this provider sets besides those of providers.Resource.Labels.
const (
	LabelPool   = "skyward.pool"   // on node containers: the pool name
	LabelIndex  = "skyward.index"  // on node containers: the node index
	LabelShared = "skyward.shared" // on a shared network: "true"
)

// checkTimeout bounds the ping of Check.
const checkTimeout = 5 * time.Second

// cleanupTimeout bounds the removal of a half-created container after a
// failure (the caller's context may already be cancelled then).
const cleanupTimeout = 30 * time.Second

// Config is the decoded provider block.
type Config struct {
	// Binary is the container runtime: RuntimeDocker (default),
	// RuntimePodman (its Docker-compatible service, started when it is not
	// running) or RuntimeNerdctl (containerd, through the nerdctl CLI).
	Binary string
	// Image is the base image of nodes whose NodeSpec.BaseImage is empty.
	Image string
	// Network is a shared network every pool of this provider joins; ""
	// gives each pool its own network.
	Network string
	// SSH is the node mode: ModeAgent (default) or ModeOpenSSH.
	SSH string
	// User is the login user in ModeOpenSSH (default root); any other
	// user is created with passwordless sudo when the image lacks it.
	// ModeAgent always logs in as root.
	User string
}

// Option changes how New builds a provider.
type Option func(*options)

type options struct {
	endpoint string
}

// WithEndpoint makes the provider talk to the engine at host (for example
// "unix:///var/run/docker.sock" or "tcp://127.0.0.1:2375") instead of the
// one its binary and the environment select.
func WithEndpoint(host string) Option {
	return func(o *options) { o.endpoint = host }
}

// Factory returns the factory of the container provider, to register under
// Type.
func Factory() providers.Factory {
	return providers.Factory{
		Schema: hcldec.ObjectSpec{
			"binary":  &hcldec.AttrSpec{Name: "binary", Type: cty.String},
			"image":   &hcldec.AttrSpec{Name: "image", Type: cty.String},
			"network": &hcldec.AttrSpec{Name: "network", Type: cty.String},
			"ssh":     &hcldec.AttrSpec{Name: "ssh", Type: cty.String},
			"user":    &hcldec.AttrSpec{Name: "user", Type: cty.String},
		},
		New: func(cfg cty.Value) (providers.Provider, error) {
			c, err := DecodeConfig(cfg)
			if err != nil {
				return nil, err
			}
			return New(c)
		},
		InPlace:         []string{"vcpus", "memory_gb"},
		RequiresReplace: liftsLimit,
		ForceNew:        []string{"image", "ssh", "user"},
		PoolForceNew:    []string{"binary", "network"},
	}
}

// liftsLimit reports whether a change of a CPU or memory limit goes back
// to no limit: the engine reads 0 as "leave as is", so that needs a new
// container.
func liftsLimit(_ string, before, after any) bool {
	b, _ := before.(float64)
	a, _ := after.(float64)
	return a == 0 && b != 0
}

// DecodeConfig turns a value conforming to Factory().Schema into a Config,
// applying defaults for null attributes. A null cfg gives the defaults.
func DecodeConfig(cfg cty.Value) (Config, error) {
	c := Config{Binary: DefaultBinary, Image: DefaultImage, SSH: ModeAgent, User: DefaultUser}
	fields := map[string]*string{"binary": &c.Binary, "image": &c.Image, "network": &c.Network, "ssh": &c.SSH, "user": &c.User}
	set, err := providers.ConfigStrings(cfg, "container provider", slices.Sorted(maps.Keys(fields))...)
	if err != nil || cfg.IsNull() {
		return c, err
	}
	for name, s := range set {
		*fields[name] = s
	}
	return c, c.validate()
}

// validate checks the settings that New cannot default.
func (c *Config) validate() error {
	switch c.SSH {
	case "":
		c.SSH = ModeAgent
	case ModeAgent, ModeOpenSSH:
	default:
		return fmt.Errorf(`container provider: ssh = %q is not a node mode; use "agent" (skyward's SSH server) or "openssh" (the image's OpenSSH)`, c.SSH)
	}
	if c.User == "" {
		c.User = DefaultUser
	}
	switch c.Network {
	case "host", "none":
		return fmt.Errorf("container provider: network = %q is the engine's own; nodes need a bridge network of their pool: give another name, or none for one network per pool", c.Network)
	}
	if c.SSH == ModeAgent && c.User != DefaultUser {
		return fmt.Errorf(`container provider: user = %q needs ssh = "openssh"; skyward's own SSH server logs in as root`, c.User)
	}
	if !validUser(c.User) {
		return fmt.Errorf("container provider: user = %q is not a valid user name", c.User)
	}
	return nil
}

// validUser accepts the portable user names of useradd(8).
func validUser(u string) bool {
	if u == "" || len(u) > 32 || u[0] == '-' {
		return false
	}
	for _, r := range u {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// Provider is the container provider. Build it with New; it is safe for
// concurrent use.
type Provider struct {
	api      dockerAPI
	endpoint string // what Check names when the engine cannot be reached
	engine   string // "Docker daemon" or "Podman service", for messages
	binary   string // RuntimeDocker, RuntimePodman or RuntimeNerdctl
	// ulimits are the nofile and nproc limits of every node container;
	// nil leaves the runtime's defaults (Docker's fit any host).
	ulimits []*container.Ulimit
	// runtime is what the last successful Check learnt of the engine.
	runtime atomic.Pointer[string]
	image   string
	network string
	mode    string // ModeAgent or ModeOpenSSH
	user    string // login user
	closer  io.Closer
	// copyAgent copies the agent binary and the node's files into every
	// node, even where mountsAgent could mount them.
	copyAgent bool

	// sharedMu serialises creating the shared network: the engine's
	// duplicate-name check is not atomic, and pools are created in parallel.
	sharedMu sync.Mutex
	// pruneOnce prunes stale node files at the first node create of the
	// process, not at every one.
	pruneOnce sync.Once
	// direct knows which networks this machine reaches directly (reach).
	direct directNets
}

var _ providers.Provider = (*Provider)(nil)

// New builds a provider from cfg. It validates cfg and prepares the API
// client without contacting the engine: Check does that.
func New(cfg Config, opts ...Option) (*Provider, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if cfg.Binary == "" {
		cfg.Binary = DefaultBinary
	}
	if cfg.Image == "" {
		cfg.Image = DefaultImage
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	engine := "Docker daemon"
	clientOpts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	var ulimits []*container.Ulimit
	switch cfg.Binary {
	case RuntimeDocker:
	case RuntimePodman:
		engine = "Podman service"
		clientOpts = append(clientOpts, client.WithHost(podmanHost(os.Getuid())))
		ulimits = hostUlimits()
	case RuntimeNerdctl:
		n := newNerdctl(o.endpoint)
		endpoint := "nerdctl"
		if o.endpoint != "" {
			endpoint += " --address " + strings.TrimPrefix(o.endpoint, "unix://")
		}
		p := newProvider(n, endpoint, cfg)
		p.engine, p.binary, p.ulimits = "containerd (through nerdctl)", RuntimeNerdctl, hostUlimits()
		return p, nil
	default:
		return nil, fmt.Errorf(`container provider: unknown binary %q; use "docker", "podman" or "nerdctl"`, cfg.Binary)
	}
	if o.endpoint != "" {
		clientOpts = append(clientOpts, client.WithHost(o.endpoint))
	}
	cli, err := client.NewClientWithOpts(clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("container provider: %s client: %w", cfg.Binary, err)
	}
	var api dockerAPI = cli
	if cfg.Binary == RuntimePodman {
		api = podmanAPI{cli}
	}
	p := newProvider(api, cli.DaemonHost(), cfg)
	p.engine, p.binary, p.ulimits = engine, cfg.Binary, ulimits
	p.closer = cli
	return p, nil
}

func newProvider(api dockerAPI, endpoint string, cfg Config) *Provider {
	if cfg.Image == "" {
		cfg.Image = DefaultImage
	}
	if cfg.SSH == "" {
		cfg.SSH = ModeAgent
	}
	if cfg.User == "" {
		cfg.User = DefaultUser
	}
	return &Provider{
		api:      api,
		endpoint: endpoint,
		engine:   "Docker daemon",
		binary:   RuntimeDocker,
		image:    cfg.Image,
		network:  cfg.Network,
		mode:     cfg.SSH,
		user:     cfg.User,
		// Set, the binary is copied into every node even where it could
		// be mounted (see mountsAgent).
		copyAgent: os.Getenv("SKYWARD_CONTAINER_COPY_AGENT") != "",
	}
}

// Endpoint is the engine address the provider talks to.
func (p *Provider) Endpoint() string { return p.endpoint }

// Close releases the API client's idle connections. The provider must not
// be used afterwards.
func (p *Provider) Close() error {
	if p.closer == nil {
		return nil
	}
	return p.closer.Close()
}

// Type implements providers.Provider.
func (p *Provider) Type() string { return Type }

// Capabilities implements providers.Provider. Nodes share their pool's
// bridge network. In ModeAgent the provider installs the controller's host
// key and skyward's SSH server kills a session's processes with it; in
// ModeOpenSSH the node makes its own host keys, which the controller pins
// at first contact, as on a cloud.
func (p *Provider) Capabilities() providers.Capabilities {
	c := providers.Capabilities{PrivateNetwork: true, CreateTimeout: createTimeout}
	if p.mode == ModeAgent {
		c.HostKey, c.KillsSessions, c.InstallsAgent = providers.HostKeyInstalled, true, true
	} else {
		c.HostKey = providers.HostKeyFirstContact
	}
	return c
}

// Check pings the engine with a short timeout and learns its name and
// version (Runtime). With binary = "podman", a service that is not running
// (no socket, or nothing listening on it) is started first.
func (p *Provider) Check(ctx context.Context) error {
	ping := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, checkTimeout)
		defer cancel()
		_, err := p.api.Ping(ctx)
		return err
	}
	if err := ping(ctx); err != nil {
		cause := dialCause(p.endpoint, err)
		switch {
		case p.binary == RuntimePodman && canStartService(cause) && strings.HasPrefix(p.endpoint, "unix://"):
			sctx, cancel := context.WithTimeout(ctx, serviceStartTimeout+time.Second)
			defer cancel()
			if serr := startPodmanService(sctx, p.endpoint, ping); serr != nil {
				return serr
			}
		case p.binary == RuntimeNerdctl && errors.Is(err, errNerdctlMissing):
			return err
		case p.binary == RuntimeNerdctl:
			return fmt.Errorf("cannot reach containerd through nerdctl: %v; is containerd running (systemctl start containerd, or containerd &)?", oneLine(err.Error()))
		default:
			if _, lerr := exec.LookPath(p.binary); lerr != nil {
				return fmt.Errorf("cannot reach the %s at %s: %v; %q is not installed either (not found on PATH): install it, or name another binary", p.engine, p.endpoint, cause, p.binary)
			}
			if p.binary == RuntimePodman {
				return fmt.Errorf("cannot reach the %s at %s: %v; is it running? (start it with: podman system service --time=0 %s)", p.engine, p.endpoint, cause, p.endpoint)
			}
			return fmt.Errorf("cannot reach the %s at %s: %v; is it running?", p.engine, p.endpoint, cause)
		}
	}
	// The engine answered; its version is what init and plan report, and
	// an engine that will not tell is still usable.
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	v, err := p.api.ServerVersion(ctx)
	if err != nil {
		v = types.Version{}
		if p.binary == RuntimePodman {
			v.Components = []types.ComponentVersion{{Name: "Podman Engine"}}
		}
	}
	d := describeVersion(v, p.endpoint)
	p.runtime.Store(&d)
	return nil
}

// Runtime names the engine that answered the last successful Check, with
// its version and address ("Podman 4.3.1 (API 1.41) at
// unix:///run/podman/podman.sock"); "" before one.
func (p *Provider) Runtime() string {
	if d := p.runtime.Load(); d != nil {
		return *d
	}
	return ""
}

// dialCause returns the reason a connection to endpoint fails. The Docker
// client replaces "connection refused" and timeouts by a generic sentence
// that names neither, so dial once more to learn the cause.
func dialCause(endpoint string, err error) error {
	if !client.IsErrConnectionFailed(err) {
		return err
	}
	u, perr := client.ParseHostURL(endpoint)
	if perr != nil {
		return err
	}
	// The client's parser keeps a unix socket's path as the URL's host.
	addr := u.Host
	if u.Scheme == "unix" && addr == "" {
		addr = u.Path
	}
	if u.Scheme != "unix" && u.Scheme != "tcp" {
		return err
	}
	c, derr := net.DialTimeout(u.Scheme, addr, checkTimeout)
	if derr != nil {
		return derr
	}
	c.Close()
	return err
}

// dockerAPI is the part of the Docker Engine API client the provider uses.
type dockerAPI interface {
	Ping(ctx context.Context) (types.Ping, error)
	ServerVersion(ctx context.Context) (types.Version, error)
	ImageInspect(ctx context.Context, imageID string, opts ...client.ImageInspectOption) (image.InspectResponse, error)
	ImagePull(ctx context.Context, ref string, opts image.PullOptions) (io.ReadCloser, error)
	ContainerCreate(ctx context.Context, config *container.Config, hostConfig *container.HostConfig, networkingConfig *network.NetworkingConfig, platform *ocispec.Platform, containerName string) (container.CreateResponse, error)
	CopyToContainer(ctx context.Context, containerID, dstPath string, content io.Reader, opts container.CopyToContainerOptions) error
	ContainerStart(ctx context.Context, containerID string, opts container.StartOptions) error
	ContainerInspect(ctx context.Context, containerID string) (container.InspectResponse, error)
	ContainerUpdate(ctx context.Context, containerID string, updateConfig container.UpdateConfig) (container.UpdateResponse, error)
	ContainerRemove(ctx context.Context, containerID string, opts container.RemoveOptions) error
	ContainerList(ctx context.Context, opts container.ListOptions) ([]container.Summary, error)
	NetworkCreate(ctx context.Context, name string, opts network.CreateOptions) (network.CreateResponse, error)
	NetworkInspect(ctx context.Context, networkID string, opts network.InspectOptions) (network.Inspect, error)
	NetworkRemove(ctx context.Context, networkID string) error
	NetworkList(ctx context.Context, opts network.ListOptions) ([]network.Summary, error)
	ContainerCommit(ctx context.Context, containerID string, opts container.CommitOptions) (container.CommitResponse, error)
	ContainerExecCreate(ctx context.Context, containerID string, opts container.ExecOptions) (container.ExecCreateResponse, error)
	ContainerExecAttach(ctx context.Context, execID string, opts container.ExecAttachOptions) (types.HijackedResponse, error)
	ContainerExecInspect(ctx context.Context, execID string) (container.ExecInspect, error)
	ContainerLogs(ctx context.Context, containerID string, opts container.LogsOptions) (io.ReadCloser, error)
	Info(ctx context.Context) (system.Info, error)
	ImageList(ctx context.Context, opts image.ListOptions) ([]image.Summary, error)
}

var _ dockerAPI = (*client.Client)(nil)

// Create implements providers.Provider.
func (p *Provider) Create(ctx context.Context, r providers.Resource) (providers.Object, error) {
	switch r.Kind {
	case providers.KindPool:
		return p.createPool(ctx, r)
	case providers.KindNode:
		return p.createNode(ctx, r)
	}
	return providers.Object{}, fmt.Errorf("create: unknown resource kind %q", r.Kind)
}

// Read implements providers.Provider.
func (p *Provider) Read(ctx context.Context, o providers.Object) (providers.Object, error) {
	switch o.Kind {
	case providers.KindPool:
		return p.readPool(ctx, o)
	case providers.KindNode:
		return p.readNode(ctx, o)
	}
	return providers.Object{}, fmt.Errorf("read: unknown object kind %q", o.Kind)
}

// Update implements providers.Provider.
func (p *Provider) Update(ctx context.Context, o providers.Object, r providers.Resource) (providers.Object, error) {
	switch o.Kind {
	case providers.KindPool:
		return o, nil
	case providers.KindNode:
		return p.updateNode(ctx, o, r)
	}
	return providers.Object{}, fmt.Errorf("update: unknown object kind %q", o.Kind)
}

// Delete implements providers.Provider.
func (p *Provider) Delete(ctx context.Context, o providers.Object) error {
	switch o.Kind {
	case providers.KindPool:
		return p.deletePool(ctx, o)
	case providers.KindNode:
		return p.deleteNode(ctx, o)
	}
	return fmt.Errorf("delete: unknown object kind %q", o.Kind)
}

// labelsFor copies r.Labels and makes sure the labels List relies on are
// there even if the caller left them out.
func labelsFor(r providers.Resource) map[string]string {
	l := make(map[string]string, len(r.Labels)+5)
	for k, v := range r.Labels {
		l[k] = v
	}
	l[providers.LabelManaged] = "true"
	if r.Lineage != "" {
		l[providers.LabelLineage] = r.Lineage
	}
	if r.Address != "" {
		l[providers.LabelAddress] = r.Address
	}
	return l
}

// short is the first 8 characters of a lineage, used in names.
func short(lineage string) string {
	if len(lineage) > 8 {
		return lineage[:8]
	}
	return lineage
}
