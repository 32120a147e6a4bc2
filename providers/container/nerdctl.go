package container

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// nerdctlCLI is dockerAPI on containerd through the nerdctl CLI, which has
// no API socket: every call runs nerdctl and reads its Docker-compatible
// JSON (inspect --mode=dockercompat, --format '{{json .}}'). A list is two
// runs (ps for the ids, one inspect of them all), never one per object.
type nerdctlCLI struct {
	bin    string   // the nerdctl binary
	global []string // flags before the command: --address
	// run runs nerdctl with args, returning what it printed; a failed run's
	// error has ExitCode() int. Tests replace it with a recording of
	// nerdctl's output.
	run func(ctx context.Context, args ...string) (stdout, stderr []byte, err error)

	mu    sync.Mutex
	execs map[string]*nerdctlExec
}

// nerdctlExec is an exec created and not yet inspected.
type nerdctlExec struct {
	container string
	opts      container.ExecOptions
	exitCode  int
	done      bool
}

var _ dockerAPI = (*nerdctlCLI)(nil)

// newNerdctl drives the nerdctl binary on PATH; address, when set, is
// containerd's socket (nerdctl's --address; CONTAINERD_ADDRESS works too).
func newNerdctl(address string) *nerdctlCLI {
	n := &nerdctlCLI{bin: RuntimeNerdctl, execs: map[string]*nerdctlExec{}}
	if address != "" {
		n.global = []string{"--address", strings.TrimPrefix(address, "unix://")}
	}
	n.run = n.exec
	return n
}

// errNerdctlMissing is the error of every call when nerdctl is not installed.
var errNerdctlMissing = errors.New(`binary "nerdctl" is not installed (not found on PATH); install nerdctl and containerd, or use binary = "docker"`)

func (n *nerdctlCLI) exec(ctx context.Context, args ...string) ([]byte, []byte, error) {
	bin, err := exec.LookPath(n.bin)
	if err != nil {
		return nil, nil, errNerdctlMissing
	}
	cmd := exec.CommandContext(ctx, bin, append(append([]string{}, n.global...), args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	return stdout.Bytes(), stderr.Bytes(), err
}

// call runs nerdctl and returns its stdout, or an error naming the command
// with what nerdctl said.
func (n *nerdctlCLI) call(ctx context.Context, args ...string) ([]byte, error) {
	stdout, stderr, err := n.run(ctx, args...)
	if errors.Is(err, errNerdctlMissing) {
		return nil, err
	}
	if err != nil {
		return stdout, nerdctlError(args, string(stderr), err)
	}
	return stdout, nil
}

// nerdctlError turns a failed run into an error that cerrdefs classifies
// as the Docker client's would be (not found, conflict), carrying the last
// line nerdctl printed.
func nerdctlError(args []string, stderr string, err error) error {
	msg := lastErrorLine(stderr)
	if msg == "" {
		msg = err.Error()
	}
	what := "nerdctl"
	if len(args) > 0 {
		what += " " + args[0]
		if len(args) > 1 && !strings.HasPrefix(args[1], "-") {
			what += " " + args[1]
		}
	}
	text := what + ": " + msg
	low := strings.ToLower(msg)
	switch {
	case strings.Contains(low, "no such container"), strings.Contains(low, "no such object"),
		strings.Contains(low, "no such image"), strings.Contains(low, "no network found"),
		strings.Contains(low, "not found"):
		return cerrdefs.ErrNotFound.WithMessage(text)
	case strings.Contains(low, "is already used by"), strings.Contains(low, "already exists"):
		return cerrdefs.ErrConflict.WithMessage(text)
	}
	return errors.New(text)
}

// lastErrorLine is the last line of nerdctl's stderr, without logrus's
// `time=... level=fatal msg="..."` frame.
func lastErrorLine(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if i := strings.Index(l, `msg="`); i >= 0 && strings.HasSuffix(l, `"`) {
		if s, err := strconv.Unquote(l[i+4:]); err == nil {
			return s
		}
	}
	return strings.TrimPrefix(l, "FATA[0000] ")
}

// jsonLines decodes one JSON value a line (nerdctl's --format '{{json .}}').
func jsonLines[T any](out []byte) ([]T, error) {
	var all []T
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(line, &v); err != nil {
			return nil, fmt.Errorf("nerdctl: cannot read %q: %w", line, err)
		}
		all = append(all, v)
	}
	return all, sc.Err()
}

// Ping asks nerdctl for containerd's version: it answers only when
// containerd does.
func (n *nerdctlCLI) Ping(ctx context.Context) (types.Ping, error) {
	_, err := n.ServerVersion(ctx)
	return types.Ping{}, err
}

// nerdctlVersion is `nerdctl version --format '{{json .}}'`.
type nerdctlVersion struct {
	Client struct{ Version string }
	Server *struct {
		Components []struct{ Name, Version string }
	}
}

// ServerVersion implements dockerAPI: nerdctl's own version as the engine,
// and containerd's (and runc's) as components.
func (n *nerdctlCLI) ServerVersion(ctx context.Context) (types.Version, error) {
	out, err := n.call(ctx, "version", "--format", "{{json .}}")
	if err != nil {
		return types.Version{}, err
	}
	var v nerdctlVersion
	if err := json.Unmarshal(bytes.TrimSpace(out), &v); err != nil {
		return types.Version{}, fmt.Errorf("nerdctl version: %w", err)
	}
	if v.Server == nil {
		return types.Version{}, errors.New("nerdctl version: no server (containerd) answered")
	}
	r := types.Version{Version: v.Client.Version, Components: []types.ComponentVersion{{Name: "nerdctl", Version: v.Client.Version}}}
	for _, c := range v.Server.Components {
		r.Components = append(r.Components, types.ComponentVersion{Name: c.Name, Version: c.Version})
	}
	return r, nil
}

// ImageInspect implements dockerAPI.
func (n *nerdctlCLI) ImageInspect(ctx context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	out, err := n.call(ctx, "image", "inspect", "--mode=dockercompat", ref)
	if err != nil {
		return image.InspectResponse{}, err
	}
	var imgs []image.InspectResponse
	if err := json.Unmarshal(out, &imgs); err != nil {
		return image.InspectResponse{}, fmt.Errorf("nerdctl image inspect: %w", err)
	}
	if len(imgs) == 0 {
		return image.InspectResponse{}, cerrdefs.ErrNotFound.WithMessage("nerdctl image inspect: no such image: " + ref)
	}
	return imgs[0], nil
}

// ImagePull implements dockerAPI; the pull is over when it returns.
func (n *nerdctlCLI) ImagePull(ctx context.Context, ref string, _ image.PullOptions) (io.ReadCloser, error) {
	if _, err := n.call(ctx, "pull", "--quiet", ref); err != nil {
		return nil, err
	}
	return io.NopCloser(strings.NewReader("")), nil
}

// createArgs is the `nerdctl create` of a container: the same labels,
// limits, published ports, tmpfs and entrypoint the Docker API gets.
// nerdctl has no network aliases: nodes reach each other by address.
func createArgs(cfg *container.Config, host *container.HostConfig, name string) ([]string, error) {
	args := []string{"create", "--name", name}
	if cfg.Hostname != "" {
		args = append(args, "--hostname", cfg.Hostname)
	}
	if host.NetworkMode != "" {
		args = append(args, "--network", string(host.NetworkMode))
	}
	keys := make([]string, 0, len(cfg.Labels))
	for k := range cfg.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--label", k+"="+cfg.Labels[k])
	}
	ports := make([]string, 0, len(host.PortBindings))
	for p, bs := range host.PortBindings {
		for _, b := range bs {
			ports = append(ports, fmt.Sprintf("%s:%s:%s", b.HostIP, b.HostPort, p))
		}
	}
	sort.Strings(ports)
	for _, p := range ports {
		args = append(args, "--publish", p)
	}
	if host.NanoCPUs > 0 {
		args = append(args, "--cpus", strconv.FormatFloat(float64(host.NanoCPUs)/1e9, 'f', -1, 64))
	}
	if host.Memory > 0 {
		args = append(args, "--memory", strconv.FormatInt(host.Memory, 10)+"b")
	}
	if host.MemorySwap > 0 {
		args = append(args, "--memory-swap", strconv.FormatInt(host.MemorySwap, 10)+"b")
	}
	for _, u := range host.Ulimits {
		args = append(args, "--ulimit", fmt.Sprintf("%s=%d:%d", u.Name, u.Soft, u.Hard))
	}
	tmpfs := make([]string, 0, len(host.Tmpfs))
	for path, opts := range host.Tmpfs {
		if opts != "" {
			path += ":" + opts
		}
		tmpfs = append(tmpfs, path)
	}
	sort.Strings(tmpfs)
	for _, t := range tmpfs {
		args = append(args, "--tmpfs", t)
	}
	if host.Init != nil && *host.Init {
		args = append(args, "--init")
	}
	if len(cfg.Entrypoint) == 0 {
		return nil, errors.New("nerdctl create: the container needs an entrypoint")
	}
	// As with docker's CLI, --entrypoint takes the program; the rest of
	// the entrypoint goes after the image, before the command.
	args = append(args, "--entrypoint", cfg.Entrypoint[0], cfg.Image)
	args = append(args, cfg.Entrypoint[1:]...)
	return append(args, cfg.Cmd...), nil
}

// ContainerCreate implements dockerAPI.
func (n *nerdctlCLI) ContainerCreate(ctx context.Context, cfg *container.Config, host *container.HostConfig, _ *network.NetworkingConfig, _ *ocispec.Platform, name string) (container.CreateResponse, error) {
	args, err := createArgs(cfg, host, name)
	if err != nil {
		return container.CreateResponse{}, err
	}
	out, err := n.call(ctx, args...)
	if err != nil {
		return container.CreateResponse{}, err
	}
	id := lastField(out)
	if id == "" {
		return container.CreateResponse{}, errors.New("nerdctl create printed no container id")
	}
	return container.CreateResponse{ID: id}, nil
}

// lastField is the last whitespace-separated word nerdctl printed.
func lastField(out []byte) string {
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// CopyToContainer implements dockerAPI: nerdctl cp copies paths, not an
// archive, so the archive is unpacked into a private directory first
// (nerdctl copies into created, not yet started containers too).
func (n *nerdctlCLI) CopyToContainer(ctx context.Context, id, dst string, content io.Reader, _ container.CopyToContainerOptions) error {
	dir, err := os.MkdirTemp("", "skyward-nerdctl-cp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := untar(content, dir); err != nil {
		return fmt.Errorf("nerdctl cp: %w", err)
	}
	_, err = n.call(ctx, "cp", dir+"/.", id+":"+dst)
	return err
}

// untar unpacks directories and regular files of an archive under dir,
// with their modes.
func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, os.FileMode(h.Mode)&os.ModePerm); err != nil {
				return err
			}
			if err := os.Chmod(p, os.FileMode(h.Mode)&os.ModePerm); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&os.ModePerm)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: only directories and regular files are copied", h.Name)
		}
	}
}

// ContainerStart implements dockerAPI.
func (n *nerdctlCLI) ContainerStart(ctx context.Context, id string, _ container.StartOptions) error {
	_, err := n.call(ctx, "start", id)
	return err
}

// nerdctlContainer is what the dockerAPI mapping needs of nerdctl's
// dockercompat inspect beyond the fields Docker's type shares with it: the
// CPU limit as a CFS quota (nerdctl reports no NanoCpus) and the image.
type nerdctlContainer struct {
	container.InspectResponse
	HostConfig *struct {
		container.HostConfig
		CPUQuota  int64  `json:"CpuQuota"`
		CPUPeriod uint64 `json:"CpuPeriod"`
	}
	NetworkSettings *struct {
		Ports    nat.PortMap
		Networks map[string]*network.EndpointSettings
	}
}

// inspectResponse maps nerdctl's dockercompat container to Docker's.
func (c nerdctlContainer) inspectResponse() container.InspectResponse {
	r := c.InspectResponse
	r.HostConfig = nil
	if c.HostConfig != nil {
		h := c.HostConfig.HostConfig
		if h.NanoCPUs == 0 && c.HostConfig.CPUQuota > 0 && c.HostConfig.CPUPeriod > 0 {
			h.NanoCPUs = c.HostConfig.CPUQuota * 1e9 / int64(c.HostConfig.CPUPeriod)
		}
		r.HostConfig = &h
	}
	if r.Config != nil && r.Config.Image == "" {
		r.Config.Image = r.Image
	}
	r.NetworkSettings = &container.NetworkSettings{}
	if ns := c.NetworkSettings; ns != nil {
		r.NetworkSettings.Networks, r.NetworkSettings.Ports = ns.Networks, ns.Ports
	}
	// nerdctl before 2.3 keys a container's networks by interface
	// ("unknown-eth0"): with one network, that is the one it was created on.
	if nets := r.NetworkSettings.Networks; len(nets) == 1 && r.HostConfig != nil && r.HostConfig.NetworkMode != "" {
		for k, ep := range nets {
			if strings.HasPrefix(k, "unknown-") {
				delete(nets, k)
				nets[string(r.HostConfig.NetworkMode)] = ep
			}
		}
	}
	r.Name = strings.TrimPrefix(r.Name, "/")
	return r
}

// ContainerInspect implements dockerAPI.
func (n *nerdctlCLI) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	cs, err := n.inspectContainers(ctx, id)
	if err != nil {
		return container.InspectResponse{}, err
	}
	if len(cs) == 0 {
		return container.InspectResponse{}, cerrdefs.ErrNotFound.WithMessage("nerdctl container inspect: no such container: " + id)
	}
	return cs[0], nil
}

func (n *nerdctlCLI) inspectContainers(ctx context.Context, ids ...string) ([]container.InspectResponse, error) {
	out, err := n.call(ctx, append([]string{"container", "inspect", "--mode=dockercompat"}, ids...)...)
	if err != nil {
		return nil, err
	}
	var raw []nerdctlContainer
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("nerdctl container inspect: %w", err)
	}
	cs := make([]container.InspectResponse, 0, len(raw))
	for _, c := range raw {
		cs = append(cs, c.inspectResponse())
	}
	return cs, nil
}

// ContainerUpdate implements dockerAPI; zero limits are left as they are.
func (n *nerdctlCLI) ContainerUpdate(ctx context.Context, id string, u container.UpdateConfig) (container.UpdateResponse, error) {
	args := []string{"update"}
	if u.NanoCPUs > 0 {
		args = append(args, "--cpus", strconv.FormatFloat(float64(u.NanoCPUs)/1e9, 'f', -1, 64))
	}
	if u.Memory > 0 {
		args = append(args, "--memory", strconv.FormatInt(u.Memory, 10)+"b")
	}
	if u.MemorySwap > 0 {
		args = append(args, "--memory-swap", strconv.FormatInt(u.MemorySwap, 10)+"b")
	}
	if len(args) == 1 {
		return container.UpdateResponse{}, nil
	}
	_, err := n.call(ctx, append(args, id)...)
	return container.UpdateResponse{}, err
}

// ContainerRemove implements dockerAPI.
func (n *nerdctlCLI) ContainerRemove(ctx context.Context, id string, opts container.RemoveOptions) error {
	args := []string{"rm"}
	if opts.Force {
		args = append(args, "--force")
	}
	if opts.RemoveVolumes {
		args = append(args, "--volumes")
	}
	_, err := n.call(ctx, append(args, id)...)
	return err
}

// psItem is a line of `nerdctl ps --format '{{json .}}'`; only the id is
// read (the labels were a map before nerdctl 1.x and are a string since).
type psItem struct {
	ID string
}

// ContainerList implements dockerAPI with ps (label and network filters,
// a network given by id is named) and one inspect of what it found.
func (n *nerdctlCLI) ContainerList(ctx context.Context, opts container.ListOptions) ([]container.Summary, error) {
	args := []string{"ps", "--no-trunc", "--format", "{{json .}}"}
	if opts.All {
		args = append(args, "--all")
	}
	for _, l := range opts.Filters.Get("label") {
		args = append(args, "--filter", "label="+l)
	}
	for _, netRef := range opts.Filters.Get("network") {
		name := netRef
		if nw, err := n.NetworkInspect(ctx, netRef, network.InspectOptions{}); err == nil && nw.Name != "" {
			name = nw.Name
		}
		args = append(args, "--filter", "network="+name)
	}
	out, err := n.call(ctx, args...)
	if err != nil {
		return nil, err
	}
	items, err := jsonLines[psItem](out)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, nil
	}
	ids := make([]string, 0, len(items))
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	cs, err := n.inspectContainers(ctx, ids...)
	if err != nil {
		return nil, err
	}
	list := make([]container.Summary, 0, len(cs))
	for _, c := range cs {
		list = append(list, summaryOf(c))
	}
	return list, nil
}

// summaryOf maps an inspected container to a list entry.
func summaryOf(c container.InspectResponse) container.Summary {
	s := container.Summary{ID: c.ID, Names: []string{"/" + c.Name}}
	if c.Config != nil {
		s.Labels, s.Image = c.Config.Labels, c.Config.Image
	}
	if c.State != nil {
		s.State = container.ContainerState(c.State.Status)
	}
	if c.HostConfig != nil {
		s.HostConfig.NetworkMode = string(c.HostConfig.NetworkMode)
	}
	if c.NetworkSettings != nil {
		s.NetworkSettings = &container.NetworkSettingsSummary{Networks: c.NetworkSettings.Networks}
		for p, bs := range c.NetworkSettings.Ports {
			for _, b := range bs {
				pub, _ := strconv.Atoi(b.HostPort)
				s.Ports = append(s.Ports, container.Port{IP: b.HostIP, PrivatePort: uint16(p.Int()), PublicPort: uint16(pub), Type: p.Proto()})
			}
		}
	}
	return s
}

// NetworkCreate implements dockerAPI; nerdctl prints the new network's id.
func (n *nerdctlCLI) NetworkCreate(ctx context.Context, name string, opts network.CreateOptions) (network.CreateResponse, error) {
	args := []string{"network", "create"}
	if opts.Driver != "" {
		args = append(args, "--driver", opts.Driver)
	}
	keys := make([]string, 0, len(opts.Labels))
	for k := range opts.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--label", k+"="+opts.Labels[k])
	}
	out, err := n.call(ctx, append(args, name)...)
	if err != nil {
		return network.CreateResponse{}, err
	}
	id := lastField(out)
	if id == "" {
		id = name
	}
	return network.CreateResponse{ID: id}, nil
}

// NetworkInspect implements dockerAPI.
func (n *nerdctlCLI) NetworkInspect(ctx context.Context, ref string, _ network.InspectOptions) (network.Inspect, error) {
	nets, err := n.inspectNetworks(ctx, ref)
	if err != nil {
		return network.Inspect{}, err
	}
	if len(nets) == 0 {
		return network.Inspect{}, cerrdefs.ErrNotFound.WithMessage("nerdctl network inspect: no network found matching: " + ref)
	}
	return nets[0], nil
}

func (n *nerdctlCLI) inspectNetworks(ctx context.Context, refs ...string) ([]network.Inspect, error) {
	out, err := n.call(ctx, append([]string{"network", "inspect", "--mode=dockercompat"}, refs...)...)
	if err != nil {
		return nil, err
	}
	var nets []network.Inspect
	if err := json.Unmarshal(out, &nets); err != nil {
		return nil, fmt.Errorf("nerdctl network inspect: %w", err)
	}
	for i := range nets {
		if nets[i].ID == "" {
			nets[i].ID = nets[i].Name // an id is optional in nerdctl
		}
	}
	return nets, nil
}

// NetworkRemove implements dockerAPI.
func (n *nerdctlCLI) NetworkRemove(ctx context.Context, ref string) error {
	_, err := n.call(ctx, "network", "rm", ref)
	return err
}

// networkItem is a line of `nerdctl network ls --format '{{json .}}'`.
type networkItem struct {
	ID, Name string
}

// NetworkList implements dockerAPI: ls with the label filters, then one
// inspect of what it found.
func (n *nerdctlCLI) NetworkList(ctx context.Context, opts network.ListOptions) ([]network.Summary, error) {
	args := []string{"network", "ls", "--format", "{{json .}}"}
	for _, l := range opts.Filters.Get("label") {
		args = append(args, "--filter", "label="+l)
	}
	out, err := n.call(ctx, args...)
	if err != nil {
		return nil, err
	}
	items, err := jsonLines[networkItem](out)
	if err != nil || len(items) == 0 {
		return nil, err
	}
	names := make([]string, 0, len(items))
	for _, it := range items {
		names = append(names, it.Name)
	}
	return n.inspectNetworks(ctx, names...)
}

// ContainerCommit implements dockerAPI. nerdctl's commit applies only CMD
// and ENTRYPOINT changes: others are refused rather than dropped.
func (n *nerdctlCLI) ContainerCommit(ctx context.Context, id string, opts container.CommitOptions) (container.CommitResponse, error) {
	args := []string{"commit"}
	if opts.Comment != "" {
		args = append(args, "--message", opts.Comment)
	}
	for _, c := range opts.Changes {
		if kw, _, _ := strings.Cut(strings.TrimSpace(c), " "); kw != "CMD" && kw != "ENTRYPOINT" {
			return container.CommitResponse{}, fmt.Errorf("nerdctl commit cannot apply %q (only CMD and ENTRYPOINT)", c)
		}
		args = append(args, "--change", c)
	}
	out, err := n.call(ctx, append(args, id, opts.Reference)...)
	if err != nil {
		return container.CommitResponse{}, err
	}
	return container.CommitResponse{ID: lastField(out)}, nil
}

// ContainerExecCreate implements dockerAPI; the command runs at attach.
func (n *nerdctlCLI) ContainerExecCreate(_ context.Context, id string, opts container.ExecOptions) (container.ExecCreateResponse, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return container.ExecCreateResponse{}, err
	}
	execID := hex.EncodeToString(b)
	n.mu.Lock()
	n.execs[execID] = &nerdctlExec{container: id, opts: opts}
	n.mu.Unlock()
	return container.ExecCreateResponse{ID: execID}, nil
}

// ContainerExecAttach implements dockerAPI: it runs the exec to its end
// and hands back its output, framed as the Docker API frames it.
func (n *nerdctlCLI) ContainerExecAttach(ctx context.Context, execID string, _ container.ExecAttachOptions) (types.HijackedResponse, error) {
	n.mu.Lock()
	e := n.execs[execID]
	n.mu.Unlock()
	if e == nil {
		return types.HijackedResponse{}, cerrdefs.ErrNotFound.WithMessage("nerdctl exec: no such exec: " + execID)
	}
	args := []string{"exec"}
	if e.opts.User != "" {
		args = append(args, "--user", e.opts.User)
	}
	args = append(append(args, e.container), e.opts.Cmd...)
	stdout, stderr, code, err := n.runOutputs(ctx, args...)
	if err != nil {
		return types.HijackedResponse{}, err
	}
	n.mu.Lock()
	e.exitCode, e.done = code, true
	n.mu.Unlock()
	return hijacked(stdout, stderr), nil
}

// runOutputs runs a command through nerdctl exec and returns its stdout,
// stderr and exit code; err is for a run that did not happen (no binary).
func (n *nerdctlCLI) runOutputs(ctx context.Context, args ...string) (stdout, stderr []byte, code int, err error) {
	stdout, stderr, err = n.run(ctx, append([]string{"--log-level=error"}, args...)...)
	var ce interface{ ExitCode() int }
	switch {
	case err == nil:
	case errors.As(err, &ce):
		code = ce.ExitCode()
	default:
		return nil, nil, 0, err
	}
	return stdout, stderr, code, nil
}

// hijacked frames stdout and stderr as the Docker API's multiplexed stream.
func hijacked(stdout, stderr []byte) types.HijackedResponse {
	var buf bytes.Buffer
	stdcopy.NewStdWriter(&buf, stdcopy.Stdout).Write(stdout)
	if len(stderr) > 0 {
		stdcopy.NewStdWriter(&buf, stdcopy.Stderr).Write(stderr)
	}
	// The output is all there: the connection only has to close.
	c1, c2 := net.Pipe()
	c2.Close()
	return types.HijackedResponse{Conn: c1, Reader: bufio.NewReader(&buf)}
}

// ContainerExecInspect implements dockerAPI: the exit code of an exec
// that was attached.
func (n *nerdctlCLI) ContainerExecInspect(_ context.Context, execID string) (container.ExecInspect, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e := n.execs[execID]
	if e == nil {
		return container.ExecInspect{}, cerrdefs.ErrNotFound.WithMessage("nerdctl exec: no such exec: " + execID)
	}
	delete(n.execs, execID)
	return container.ExecInspect{ExecID: execID, ContainerID: e.container, ExitCode: e.exitCode, Running: !e.done}, nil
}

// ContainerLogs implements dockerAPI for the tail a failed start reports.
func (n *nerdctlCLI) ContainerLogs(ctx context.Context, id string, opts container.LogsOptions) (io.ReadCloser, error) {
	args := []string{"logs"}
	if opts.Tail != "" {
		args = append(args, "--tail", opts.Tail)
	}
	out, err := n.call(ctx, append(args, id)...)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	stdcopy.NewStdWriter(&buf, stdcopy.Stdout).Write(out)
	return io.NopCloser(&buf), nil
}

// Info implements dockerAPI: the host's CPUs and memory.
func (n *nerdctlCLI) Info(ctx context.Context) (system.Info, error) {
	out, err := n.call(ctx, "info", "--format", "{{json .}}")
	if err != nil {
		return system.Info{}, err
	}
	var info struct {
		NCPU     int
		MemTotal int64
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &info); err != nil {
		return system.Info{}, fmt.Errorf("nerdctl info: %w", err)
	}
	return system.Info{NCPU: info.NCPU, MemTotal: info.MemTotal}, nil
}

// imageItem is a line of `nerdctl images --format '{{json .}}'`.
type imageItem struct {
	CreatedAt, ID, Repository, Tag string
}

// ImageList implements dockerAPI (with label and reference filters).
func (n *nerdctlCLI) ImageList(ctx context.Context, opts image.ListOptions) ([]image.Summary, error) {
	args := []string{"images", "--no-trunc", "--format", "{{json .}}"}
	for _, k := range []string{"label", "reference"} {
		for _, v := range opts.Filters.Get(k) {
			args = append(args, "--filter", k+"="+v)
		}
	}
	out, err := n.call(ctx, args...)
	if err != nil {
		return nil, err
	}
	items, err := jsonLines[imageItem](out)
	if err != nil {
		return nil, err
	}
	list := make([]image.Summary, 0, len(items))
	for _, it := range items {
		s := image.Summary{ID: it.ID}
		if it.Repository != "" && it.Repository != "<none>" && it.Tag != "" && it.Tag != "<none>" {
			s.RepoTags = []string{it.Repository + ":" + it.Tag}
		}
		if t, err := time.Parse("2006-01-02 15:04:05 -0700 MST", it.CreatedAt); err == nil {
			s.Created = t.Unix()
		}
		list = append(list, s)
	}
	return list, nil
}
