package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"github.com/skyward-sh/skyward/agent"
	"github.com/skyward-sh/skyward/providers"
)

// Paths inside a node container.
const (
	AgentPath          = agent.BinaryPath
	HostKeyPath        = "/opt/skyward/ssh_host_ed25519_key"
	AuthorizedKeysPath = "/opt/skyward/authorized_keys"
	// OpenSSHInitPath is the start script of a ModeOpenSSH node.
	OpenSSHInitPath = "/opt/skyward/openssh-init.sh"
	// bakeStash is a tmpfs on every node: a bake moves the node's secrets
	// there while the container is committed, and a tmpfs is not part of
	// the commit.
	bakeStash = "/run/skyward-bake"
)

// LabelUser is the label of a node container naming its SSH login user.
const LabelUser = "skyward.user"

// sshPort is the port the agent's SSH server listens on in the container.
const sshPort = nat.Port("22/tcp")

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

// openSSHInit starts the image's own OpenSSH server as PID 1, as a cloud
// VM's boot does: it creates the login user ($1) with passwordless sudo
// when the image lacks it, installs the pool's authorized key ($3, a file)
// for it, makes the host keys on the node and, with a ttl ($2, seconds),
// stops the container after that long, whatever the controller does.
// Shell builtins do what they can: every program it starts is one more
// exec through the engine's storage driver before sshd listens.
const openSSHInit = `#!/bin/sh
set -eu
user=$1 ttl=$2 keys=$3
fail() { echo "skyward: $*" >&2; exit 78; }
[ -x /usr/sbin/sshd ] || fail "the image has no OpenSSH server (/usr/sbin/sshd); install openssh-server in it, or use ssh = \"agent\""
if [ "$user" != root ]; then
  command -v sudo >/dev/null || fail "user $user needs sudo, which the image lacks; install sudo in it, or use user = \"root\""
fi
if ent=$(getent passwd "$user"); then
  rest=${ent#*:*:*:*:*:}
  home=${rest%%:*}
else
  home=/home/$user
  useradd -m -d "$home" -s /bin/sh -p '*' "$user" || fail "cannot create user $user"
fi
if [ "$user" != root ]; then
  (umask 0337; echo "$user ALL=(ALL) NOPASSWD:ALL" >/etc/sudoers.d/skyward-"$user")
fi
umask 077
fresh=
[ -d "$home/.ssh" ] || fresh=1
mkdir -p "$home/.ssh" /run/sshd
while IFS= read -r line || [ -n "$line" ]; do printf '%s\n' "$line"; done <"$keys" >"$home/.ssh/authorized_keys"
[ -n "$fresh" ] || chmod go-rwx "$home/.ssh" "$home/.ssh/authorized_keys"
[ "$user" = root ] || chown -R "$user" "$home/.ssh"
# One ed25519 host key, made on the node, unless the image has one: the
# cheapest to make, and the one the controller asks for.
key=/etc/ssh/ssh_host_ed25519_key
[ -e "$key" ] || ssh-keygen -q -t ed25519 -N '' -f "$key"
umask 022
if [ "$ttl" -gt 0 ]; then
  (sleep "$ttl"; kill -TERM 1) </dev/null >/dev/null 2>&1 &
fi
exec /usr/sbin/sshd -D -e -h "$key"
`

// openSSHEntrypoint runs openSSHInit for user with a ttl, from the node's
// mounted files or from the copies in the container.
func openSSHEntrypoint(user string, ttl time.Duration, mounted bool) []string {
	secs := int64(0)
	if ttl > 0 {
		secs = max(1, int64(math.Ceil(ttl.Seconds())))
	}
	script, keys := OpenSSHInitPath, AuthorizedKeysPath
	if mounted {
		script, keys = nodeOpenSSHInitPath, nodeAuthorizedKeysPath
	}
	return []string{"/bin/sh", script, user, strconv.FormatInt(secs, 10), keys}
}

// ContainerName is the name of the container of node index of pool.
func ContainerName(lineage, pool string, index int) string {
	return fmt.Sprintf("skyward-%s-%s-%d", short(lineage), pool, index)
}

func (p *Provider) createNode(ctx context.Context, r providers.Resource) (_ providers.Object, err error) {
	spec := r.Node
	switch {
	case spec == nil:
		return providers.Object{}, errors.New("create: node resource has no node spec")
	case r.Lineage == "" || r.Pool == "":
		return providers.Object{}, errors.New("create: node resource needs a lineage and a pool name")
	case r.PoolObject == nil || r.PoolObject.Private["network"] == "":
		return providers.Object{}, errors.New("create: node resource has no pool network")
	case spec.AuthorizedKey == "":
		return providers.Object{}, errors.New("create: node needs an authorized key")
	case p.mode == ModeAgent && spec.AgentBinary == "":
		return providers.Object{}, errors.New("create: no agent binary to copy into the node")
	case p.mode == ModeAgent && len(spec.HostKey) == 0:
		return providers.Object{}, errors.New("create: node needs an SSH host key")
	}
	if p.mode == ModeAgent {
		if fi, err := os.Stat(spec.AgentBinary); err != nil {
			return providers.Object{}, fmt.Errorf("create: agent binary: %w", err)
		} else if !fi.Mode().IsRegular() {
			return providers.Object{}, fmt.Errorf("create: agent binary %s is not a regular file", spec.AgentBinary)
		}
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

	netName := r.PoolObject.Private["network"]
	name := ContainerName(r.Lineage, r.Pool, r.Index)
	labels := labelsFor(r)
	labels[LabelPool] = r.Pool
	labels[LabelIndex] = strconv.Itoa(r.Index)
	labels[LabelUser] = p.user
	noInit := false
	entry := entrypoint(spec.TTL)
	if p.mode == ModeOpenSSH {
		entry = openSSHEntrypoint(p.user, spec.TTL, false)
	}
	cfg := &container.Config{
		Hostname:     spec.Hostname,
		Image:        img,
		Entrypoint:   entry,
		Cmd:          []string{},
		ExposedPorts: nat.PortSet{sshPort: struct{}{}},
		Labels:       labels,
	}
	host := &container.HostConfig{
		NetworkMode:  container.NetworkMode(netName),
		PortBindings: nat.PortMap{sshPort: {{HostIP: "127.0.0.1", HostPort: ""}}},
		Resources:    res,
		Init:         &noInit,
		Tmpfs:        map[string]string{bakeStash: "mode=0700"},
	}
	host.Ulimits = p.ulimits
	mounted := p.mountsFiles()
	if mounted {
		files, err := p.nodeFilesDir(r.Lineage, name)
		if err != nil {
			return providers.Object{}, fmt.Errorf("create: %w", err)
		}
		if err := writeNodeFilesDir(files, p.mode, spec); err != nil {
			return providers.Object{}, fmt.Errorf("create: %w", err)
		}
		defer func() {
			if err != nil {
				// The container is gone too (below): nothing mounts them.
				_ = p.removeNodeFiles(r.Lineage, name)
			}
		}()
		p.pruneOnce.Do(func() {
			if root, err := p.nodeFilesRoot(); err == nil {
				pruneNodeFiles(root, time.Now(), p.mountSources)
			}
		})
		host.Binds = append(host.Binds, files+":"+NodeFilesPath+":ro")
		if p.mode == ModeOpenSSH {
			cfg.Entrypoint = openSSHEntrypoint(p.user, spec.TTL, true)
			// The binary uploaded over SSH lands on this machine's disk, as
			// a VM's would on its own, not through the engine's storage
			// driver (fuse-overlayfs here: 0.2 s of CPU for three nodes).
			bin := filepath.Join(files, "bin")
			if err := os.MkdirAll(bin, 0o755); err != nil {
				return providers.Object{}, fmt.Errorf("create: node files: %w", err)
			}
			host.Binds = append(host.Binds, bin+":"+path.Dir(AgentPath))
		}
	}
	if p.mountsAgent() {
		dir, err := seedDir()
		if err != nil {
			return providers.Object{}, fmt.Errorf("create: %w", err)
		}
		seed, sum, err := agentSeed(spec.AgentBinary, p.mountedSeeds(dir))
		if err != nil {
			return providers.Object{}, fmt.Errorf("create: %w", err)
		}
		id, err := newLinkID()
		if err != nil {
			return providers.Object{}, fmt.Errorf("create: %w", err)
		}
		host.Binds = append(host.Binds, seed+":"+SeedPath+":ro")
		cfg.Entrypoint = mountedEntrypoint(sum, id, spec.TTL)
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

	err = p.setUp(ctx, created.ID, spec, mounted)
	if err != nil {
		// No leaks: the caller never learns this container's id.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if rerr := p.api.ContainerRemove(cctx, created.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); rerr != nil && !cerrdefs.IsNotFound(rerr) {
			return providers.Object{}, fmt.Errorf("create: container %s: %w (and removing it failed: %v)", name, err, rerr)
		}
		return providers.Object{}, fmt.Errorf("create: container %s: %w", name, err)
	}
	// Started, not yet inspected: Wait reads its address and SSH port.
	return providers.Object{Kind: providers.KindNode, Address: r.Address, ID: created.ID, Lineage: r.Lineage,
		Private: map[string]string{"name": name, "network": netName}}, nil
}

// setUp copies the node's files into a created container and starts it;
// mounted, they are mounted at NodeFilesPath (and the agent binary at
// SeedPath): nothing is copied.
func (p *Provider) setUp(ctx context.Context, id string, spec *providers.NodeSpec, mounted bool) error {
	if !mounted {
		if err := p.copyFiles(ctx, id, spec); err != nil {
			return fmt.Errorf("copy agent and keys: %w", err)
		}
	}
	if err := p.api.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("start: %w", p.explainRlimit(err))
	}
	return nil
}

var _ providers.Waiter = (*Provider)(nil)

// Wait implements providers.Waiter: it inspects the container until it
// runs with its SSH port published. A container that exited says why, with
// the tail of its log. A node on OpenSSH runs a moment before its sshd
// listens: the controller's dial retries until it does, and a start script
// that fails (no sshd, no sudo) ends the container, which the controller
// learns from this Wait while it dials.
func (p *Provider) Wait(ctx context.Context, o providers.Object) (providers.Object, error) {
	delay := 10 * time.Millisecond
	for {
		c, err := p.api.ContainerInspect(ctx, o.ID)
		if err != nil {
			if cerrdefs.IsNotFound(err) {
				return providers.Object{}, fmt.Errorf("wait: container %s: %w", shortRef(o.ID), providers.ErrNotFound)
			}
			return providers.Object{}, fmt.Errorf("wait: container %s: %w", shortRef(o.ID), err)
		}
		obj := p.reach(ctx, nodeObject(c))
		if obj.Running && obj.SSH.Port != 0 {
			return obj, nil
		}
		if c.State != nil && !c.State.Running && c.State.Status == "exited" {
			return providers.Object{}, providers.Stopped(fmt.Errorf("wait: container %s exited with status %d before it served SSH%s", shortRef(o.ID), c.State.ExitCode, p.logTail(ctx, o.ID)))
		}
		select {
		case <-ctx.Done():
			return providers.Object{}, fmt.Errorf("wait: container %s: %w", shortRef(o.ID), ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 40*time.Millisecond)
	}
}

func (p *Provider) copyFiles(ctx context.Context, id string, spec *providers.NodeSpec) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		var err error
		if p.mode == ModeOpenSSH {
			err = writeOpenSSHFiles(pw, spec)
		} else {
			err = writeNodeFiles(pw, spec)
		}
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
	return p.reach(ctx, nodeObject(c)), nil
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
	running := cur.State != nil && cur.State.Running
	start := func() error {
		if running {
			return nil
		}
		if err := p.api.ContainerStart(ctx, o.ID, container.StartOptions{}); err != nil {
			return fmt.Errorf("update: start container %s: %w", o.ID, p.explainRlimit(err))
		}
		return nil
	}
	if p.binary == RuntimePodman {
		// Podman changes the limits of a running container only (its
		// OCI runtime updates live cgroups): start it first.
		if err := start(); err != nil {
			return providers.Object{}, err
		}
		running = true
	}
	if _, err := p.api.ContainerUpdate(ctx, o.ID, container.UpdateConfig{Resources: res}); err != nil {
		return providers.Object{}, fmt.Errorf("update: container %s: %w", o.ID, err)
	}
	if err := start(); err != nil {
		return providers.Object{}, err
	}
	c, err := p.api.ContainerInspect(ctx, o.ID)
	if err != nil {
		return providers.Object{}, fmt.Errorf("update: inspect container %s: %w", o.ID, err)
	}
	return p.reach(ctx, nodeObject(c)), nil
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
	if name := o.Private["name"]; name != "" && o.Lineage != "" {
		if err := p.removeNodeFiles(o.Lineage, name); err != nil {
			return fmt.Errorf("delete: container %s: %w", o.ID, err)
		}
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
	o := node(labels, c.ID, strings.TrimPrefix(c.Name, "/"), netName, privateIP, port, running)
	o.Spec = map[string]string{
		"vcpus":      strconv.FormatFloat(float64(nano)/1e9, 'f', -1, 64),
		"memory_gb":  strconv.FormatFloat(float64(mem)/(1<<30), 'f', -1, 64),
		"base_image": img,
	}
	return o
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

// node builds a node object from what an inspect or a list tells; the
// SSH endpoint is known once the port is published.
func node(labels map[string]string, id, name, netName, privateIP, port string, running bool) providers.Object {
	o := providers.Object{
		Kind:      providers.KindNode,
		Address:   labels[providers.LabelAddress],
		ID:        id,
		Lineage:   labels[providers.LabelLineage],
		Running:   running,
		PrivateIP: privateIP,
		Private:   map[string]string{"name": name, "network": netName},
	}
	if n, err := strconv.Atoi(port); err == nil && n > 0 {
		user := labels[LabelUser]
		if user == "" {
			user = DefaultUser
		}
		o.SSH = providers.SSHEndpoint{Host: "127.0.0.1", Port: n, User: user}
	}
	return o
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

// logTail returns the last lines of a container's output, indented on
// lines of their own, or "" when there are none.
func (p *Provider) logTail(ctx context.Context, id string) string {
	rc, err := p.api.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "10"})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var out strings.Builder
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil && out.Len() == 0 {
		return ""
	}
	text := strings.TrimSpace(out.String())
	if text == "" {
		return ""
	}
	return ":\n  " + strings.ReplaceAll(text, "\n", "\n  ")
}

// MinTTL is the shortest ttl of a container node: less and it would stop
// before its bring-up is over.
const MinTTL = 10 * time.Second

var _ providers.Validator = (*Provider)(nil)

// ValidateNodes implements providers.Validator: no node may ask for more
// CPUs or memory than the engine's host has, or a ttl under MinTTL.
func (p *Provider) ValidateNodes(ctx context.Context, nodes []providers.NodeSpec) error {
	var ncpu int
	var mem int64
	for _, n := range nodes {
		if n.TTL > 0 && n.TTL < MinTTL {
			return fmt.Errorf("node %s: ttl %s is shorter than a node takes to come up; use at least %s", n.Hostname, n.TTL, MinTTL)
		}
		if n.VCPUs == 0 && n.MemoryGB == 0 {
			continue
		}
		if ncpu == 0 {
			info, err := p.api.Info(ctx)
			if err != nil {
				return fmt.Errorf("ask the %s for its CPUs and memory: %w", p.engine, err)
			}
			ncpu, mem = info.NCPU, info.MemTotal
			// A rootless engine on cgroup v1 starts containers with their
			// limits ignored (Podman warns and goes on): refuse rather
			// than run nodes without the limits asked for.
			if info.CgroupVersion == "1" && slices.Contains(info.SecurityOptions, "name=rootless") {
				return fmt.Errorf("node %s: vcpus and memory_gb cannot be enforced: the %s is rootless on a cgroup v1 host, where container resource limits are ignored; set both to 0, or run it rootful, or on a cgroup v2 host", n.Hostname, p.engine)
			}
		}
		if ncpu > 0 && n.VCPUs > float64(ncpu) {
			return fmt.Errorf("node %s: vcpus = %g, but the %s's host has %d CPUs", n.Hostname, n.VCPUs, p.engine, ncpu)
		}
		if mem > 0 && n.MemoryGB*(1<<30) > float64(mem) {
			return fmt.Errorf("node %s: memory_gb = %g, but the %s's host has %.1f GB", n.Hostname, n.MemoryGB, p.engine, float64(mem)/(1<<30))
		}
	}
	return nil
}
