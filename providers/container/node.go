package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/skyward-sh/skyward/agent"
	"github.com/skyward-sh/skyward/providers"
)

// Paths inside a node container.
const (
	AgentPath          = agent.BinaryPath
	HostKeyPath        = "/opt/skyward/ssh_host_ed25519_key"
	AuthorizedKeysPath = "/opt/skyward/authorized_keys"
)

// sshPort is the port the agent's SSH server listens on in the container.
const sshPort = nat.Port("22/tcp")

// SSHUser is the user a container node is reached as.
const SSHUser = "root"

// entrypoint starts the agent as PID 1: it serves SSH and reaps orphans.
// With a ttl it stops everything, and so the container, after that long.
func entrypoint(ttl time.Duration) []string {
	e := []string{
		AgentPath, "agent", "sshd",
		"-listen=:22",
		"-host-key=" + HostKeyPath,
		"-authorized-keys=" + AuthorizedKeysPath,
	}
	if ttl > 0 {
		e = append(e, "-ttl="+ttl.String())
	}
	return e
}

// ContainerName is the name of the container of node index of pool.
func ContainerName(lineage, pool string, index int) string {
	return fmt.Sprintf("skyward-%s-%s-%d", short(lineage), pool, index)
}

func (p *Provider) createNode(ctx context.Context, r providers.Resource) (providers.Object, error) {
	spec := r.Node
	switch {
	case spec == nil:
		return providers.Object{}, errors.New("create: node resource has no node spec")
	case r.Lineage == "" || r.Pool == "":
		return providers.Object{}, errors.New("create: node resource needs a lineage and a pool name")
	case r.PoolObject == nil || r.PoolObject.Attrs["network"] == "":
		return providers.Object{}, errors.New("create: node resource has no pool network")
	case spec.AgentBinary == "":
		return providers.Object{}, errors.New("create: no agent binary to copy into the node")
	case len(spec.HostKey) == 0 || spec.AuthorizedKey == "":
		return providers.Object{}, errors.New("create: node needs an SSH host key and an authorized key")
	}
	if fi, err := os.Stat(spec.AgentBinary); err != nil {
		return providers.Object{}, fmt.Errorf("create: agent binary: %w", err)
	} else if !fi.Mode().IsRegular() {
		return providers.Object{}, fmt.Errorf("create: agent binary %s is not a regular file", spec.AgentBinary)
	}
	res, err := resources(spec.VCPUs, spec.MemoryGB)
	if err != nil {
		return providers.Object{}, fmt.Errorf("create: %w", err)
	}
	img := spec.BaseImage
	if img == "" {
		img = p.image
	}
	if err := p.ensureImage(ctx, img); err != nil {
		return providers.Object{}, fmt.Errorf("create: %w", err)
	}

	netName := r.PoolObject.Attrs["network"]
	name := ContainerName(r.Lineage, r.Pool, r.Index)
	labels := labelsFor(r)
	labels[LabelPool] = r.Pool
	labels[LabelIndex] = strconv.Itoa(r.Index)
	noInit := false
	cfg := &container.Config{
		Hostname:     spec.Hostname,
		Image:        img,
		Entrypoint:   entrypoint(spec.TTL),
		Cmd:          []string{},
		ExposedPorts: nat.PortSet{sshPort: struct{}{}},
		Labels:       labels,
	}
	host := &container.HostConfig{
		NetworkMode:  container.NetworkMode(netName),
		PortBindings: nat.PortMap{sshPort: {{HostIP: "127.0.0.1", HostPort: ""}}},
		Resources:    res,
		Init:         &noInit,
	}
	netCfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		netName: {Aliases: aliases(spec.Hostname)},
	}}

	created, err := p.api.ContainerCreate(ctx, cfg, host, netCfg, nil, name)
	if err != nil && cerrdefs.IsConflict(err) {
		// A container of this name and address exists although the
		// caller's state does not know it: a crash between create and
		// state write. Its setup is unknown, so start afresh.
		if rerr := p.removeStale(ctx, name, r); rerr != nil {
			return providers.Object{}, fmt.Errorf("create: container %s: %w (%v)", name, err, rerr)
		}
		created, err = p.api.ContainerCreate(ctx, cfg, host, netCfg, nil, name)
	}
	if err != nil {
		return providers.Object{}, fmt.Errorf("create: container %s: %w", name, err)
	}

	o, err := p.setUp(ctx, created.ID, spec)
	if err != nil {
		// No leaks: the caller never learns this container's id.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if rerr := p.api.ContainerRemove(cctx, created.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); rerr != nil && !cerrdefs.IsNotFound(rerr) {
			return providers.Object{}, fmt.Errorf("create: container %s: %w (and removing it failed: %v)", name, err, rerr)
		}
		return providers.Object{}, fmt.Errorf("create: container %s: %w", name, err)
	}
	return o, nil
}

// setUp copies the agent and keys into a created container, starts it and
// returns its object.
func (p *Provider) setUp(ctx context.Context, id string, spec *providers.NodeSpec) (providers.Object, error) {
	if err := p.copyFiles(ctx, id, spec); err != nil {
		return providers.Object{}, fmt.Errorf("copy agent and keys: %w", err)
	}
	if err := p.api.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return providers.Object{}, fmt.Errorf("start: %w", err)
	}
	// The port mapping is in place once start returns: no polling.
	c, err := p.api.ContainerInspect(ctx, id)
	if err != nil {
		return providers.Object{}, fmt.Errorf("inspect: %w", err)
	}
	return nodeObject(c), nil
}

func (p *Provider) copyFiles(ctx context.Context, id string, spec *providers.NodeSpec) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := writeNodeFiles(pw, spec)
		pw.CloseWithError(err)
		done <- err
	}()
	err := p.api.CopyToContainer(ctx, id, "/", pr, container.CopyToContainerOptions{})
	// Unblock the writer if the upload stopped reading early.
	pr.CloseWithError(errCopyEnded)
	if werr := <-done; werr != nil && !errors.Is(werr, errCopyEnded) && !errors.Is(werr, io.ErrClosedPipe) {
		// The archive could not be written (agent binary unreadable, ...):
		// that is the cause, not the aborted upload.
		return werr
	}
	return err
}

var errCopyEnded = errors.New("upload ended")

// removeStale removes the container called name if it carries the labels
// of r; it refuses to touch anything else.
func (p *Provider) removeStale(ctx context.Context, name string, r providers.Resource) error {
	c, err := p.api.ContainerInspect(ctx, name)
	if err != nil {
		return err
	}
	var l map[string]string
	if c.Config != nil {
		l = c.Config.Labels
	}
	if l[providers.LabelLineage] != r.Lineage || l[providers.LabelAddress] != r.Address {
		return fmt.Errorf("the name is taken by a container that skyward did not create for %s in this state", r.Address)
	}
	err = p.api.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// ensureImage pulls img unless it is present locally.
func (p *Provider) ensureImage(ctx context.Context, img string) error {
	_, err := p.api.ImageInspect(ctx, img)
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("base image %q: %w", img, err)
	}
	if err := p.pull(ctx, img); err != nil {
		return fmt.Errorf("base image %q is not present locally and could not be pulled: %w; build or load it first (docker load, docker import, or testdata/mkbaseimage.sh for the test image)", img, err)
	}
	return nil
}

func (p *Provider) pull(ctx context.Context, img string) error {
	rc, err := p.api.ImagePull(ctx, img, image.PullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	// The daemon reports a failed pull inside the progress stream.
	dec := json.NewDecoder(rc)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
}

func (p *Provider) readNode(ctx context.Context, o providers.Object) (providers.Object, error) {
	if o.ID == "" {
		return providers.Object{}, fmt.Errorf("read: node object has no container id: %w", providers.ErrNotFound)
	}
	c, err := p.api.ContainerInspect(ctx, o.ID)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return providers.Object{}, fmt.Errorf("read: container %s: %w", o.ID, providers.ErrNotFound)
		}
		return providers.Object{}, fmt.Errorf("read: container %s: %w", o.ID, err)
	}
	return nodeObject(c), nil
}

func (p *Provider) updateNode(ctx context.Context, o providers.Object, r providers.Resource) (providers.Object, error) {
	if r.Node == nil {
		return providers.Object{}, errors.New("update: node resource has no node spec")
	}
	res, err := resources(r.Node.VCPUs, r.Node.MemoryGB)
	if err != nil {
		return providers.Object{}, fmt.Errorf("update: %w", err)
	}
	cur, err := p.api.ContainerInspect(ctx, o.ID)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return providers.Object{}, fmt.Errorf("update: container %s: %w", o.ID, providers.ErrNotFound)
		}
		return providers.Object{}, fmt.Errorf("update: container %s: %w", o.ID, err)
	}
	if cur.HostConfig != nil {
		// The engine treats 0 as "leave as is" and cannot lift a limit in
		// place; lifting one needs a replacement.
		if res.NanoCPUs == 0 && cur.HostConfig.NanoCPUs != 0 {
			return providers.Object{}, fmt.Errorf("update: container %s: cannot remove its CPU limit in place; replace the node", o.ID)
		}
		if res.Memory == 0 && cur.HostConfig.Memory != 0 {
			return providers.Object{}, fmt.Errorf("update: container %s: cannot remove its memory limit in place; replace the node", o.ID)
		}
	}
	if _, err := p.api.ContainerUpdate(ctx, o.ID, container.UpdateConfig{Resources: res}); err != nil {
		return providers.Object{}, fmt.Errorf("update: container %s: %w", o.ID, err)
	}
	if cur.State == nil || !cur.State.Running {
		if err := p.api.ContainerStart(ctx, o.ID, container.StartOptions{}); err != nil {
			return providers.Object{}, fmt.Errorf("update: start container %s: %w", o.ID, err)
		}
	}
	c, err := p.api.ContainerInspect(ctx, o.ID)
	if err != nil {
		return providers.Object{}, fmt.Errorf("update: inspect container %s: %w", o.ID, err)
	}
	return nodeObject(c), nil
}

func (p *Provider) deleteNode(ctx context.Context, o providers.Object) error {
	if o.ID == "" {
		return nil
	}
	err := p.api.ContainerRemove(ctx, o.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	// A removal that an earlier run started (a destroy killed midway) may
	// still be going on: wait for it to finish, trying again should it
	// have failed.
	for removalInProgress(err) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("delete: container %s: waiting for its removal already in progress: %w", o.ID, ctx.Err())
		case <-time.After(removalPoll):
		}
		if _, ierr := p.api.ContainerInspect(ctx, o.ID); cerrdefs.IsNotFound(ierr) {
			return nil
		}
		err = p.api.ContainerRemove(ctx, o.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("delete: container %s: %w", o.ID, err)
	}
	return nil
}

// removalPoll is how often a container whose removal is already in
// progress is looked at again.
var removalPoll = 200 * time.Millisecond

// removalInProgress reports whether err is Docker's "removal of container
// ... is already in progress".
func removalInProgress(err error) bool {
	return err != nil && cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress")
}

// resources turns a node's vCPUs and GB into limits; 0 means no limit.
func resources(vcpus, memoryGB float64) (container.Resources, error) {
	if vcpus < 0 || math.IsNaN(vcpus) || math.IsInf(vcpus, 0) {
		return container.Resources{}, fmt.Errorf("vcpus must be a positive number, not %v", vcpus)
	}
	if memoryGB < 0 || math.IsNaN(memoryGB) || math.IsInf(memoryGB, 0) {
		return container.Resources{}, fmt.Errorf("memory_gb must be a positive number, not %v", memoryGB)
	}
	mem := int64(math.Round(memoryGB * (1 << 30)))
	// Swap equal to memory: the node gets no swap on top of its memory.
	return container.Resources{
		NanoCPUs:   int64(math.Round(vcpus * 1e9)),
		Memory:     mem,
		MemorySwap: mem,
	}, nil
}

func aliases(hostname string) []string {
	if hostname == "" {
		return nil
	}
	return []string{hostname}
}

// nodeObject maps an inspected container to a node object.
func nodeObject(c container.InspectResponse) providers.Object {
	var labels map[string]string
	img := ""
	if c.Config != nil {
		labels = c.Config.Labels
		img = c.Config.Image
	}
	netName := ""
	var nano, mem int64
	if c.HostConfig != nil {
		netName = string(c.HostConfig.NetworkMode)
		nano, mem = c.HostConfig.NanoCPUs, c.HostConfig.Memory
	}
	running := c.State != nil && c.State.Running
	privateIP, port := "", ""
	if c.NetworkSettings != nil {
		netName = pickNetwork(netName, c.NetworkSettings.Networks)
		if ep := c.NetworkSettings.Networks[netName]; ep != nil {
			privateIP = ep.IPAddress
		}
		for _, b := range c.NetworkSettings.Ports[sshPort] {
			if b.HostIP == "127.0.0.1" || port == "" {
				port = b.HostPort
			}
		}
	}
	return providers.Object{
		Kind:    providers.KindNode,
		Address: labels[providers.LabelAddress],
		ID:      c.ID,
		Lineage: labels[providers.LabelLineage],
		Running: running,
		Attrs:   nodeAttrs(strings.TrimPrefix(c.Name, "/"), netName, privateIP, port),
		Spec: map[string]string{
			"vcpus":      strconv.FormatFloat(float64(nano)/1e9, 'f', -1, 64),
			"memory_gb":  strconv.FormatFloat(float64(mem)/(1<<30), 'f', -1, 64),
			"base_image": img,
		},
	}
}

// pickNetwork returns mode if the container is on that network, else the
// first network it is on.
func pickNetwork(mode string, nets map[string]*network.EndpointSettings) string {
	if _, ok := nets[mode]; ok || len(nets) == 0 {
		return mode
	}
	names := make([]string, 0, len(nets))
	for n := range nets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names[0]
}

func nodeAttrs(name, netName, privateIP, port string) map[string]string {
	return map[string]string{
		"name":       name,
		"network":    netName,
		"private_ip": privateIP,
		"ssh_host":   "127.0.0.1",
		"ssh_port":   port,
		"ssh_user":   SSHUser,
	}
}

var _ providers.Preparer = (*Provider)(nil)

// Prepare makes sure the base image of every node about to be created is
// present, pulling it if needed, before any object is created; each image
// is checked once.
func (p *Provider) Prepare(ctx context.Context, nodes []providers.NodeSpec) error {
	seen := map[string]bool{}
	for _, n := range nodes {
		img := n.BaseImage
		if img == "" {
			img = p.image
		}
		if seen[img] {
			continue
		}
		seen[img] = true
		if err := p.ensureImage(ctx, img); err != nil {
			return err
		}
	}
	return nil
}
