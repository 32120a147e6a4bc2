package runpodtest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
)

// startScript stands in for the start script of RunPod's images
// (runpod/containers' start.sh): it authorises $PUBLIC_KEY for root,
// makes host keys on the pod and runs OpenSSH.
const startScript = `set -e
mkdir -p /root/.ssh
printf '%s\n' "$PUBLIC_KEY" > /root/.ssh/authorized_keys
chmod 700 /root/.ssh
chmod 600 /root/.ssh/authorized_keys
ssh-keygen -A >/dev/null
mkdir -p /run/sshd
exec /usr/sbin/sshd -D -e
`

// crashScript is the start command of a pod asked to exit while it boots.
const crashScript = `echo "pod starting"
echo "start.sh: the image's start command failed (emulated crash)" >&2
exit 3
`

// runContainer creates and starts the container of a pod, on the
// cluster's network when netID is set, and returns its id and its address
// on that network.
func (s *Server) runContainer(ctx context.Context, p *pod, netID string, crash bool) (id, ip string, err error) {
	env := []string{"RUNPOD_POD_ID=" + p.api.ID, "RUNPOD_DC_ID=" + p.api.DataCenterID}
	keys := make([]string, 0, len(p.api.Env))
	for k := range p.api.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+p.api.Env[k])
	}
	script := startScript
	if crash {
		script = crashScript
	}
	cfg := &container.Config{
		Image:        p.api.Image,
		Hostname:     p.api.ID,
		Env:          env,
		Entrypoint:   []string{"/bin/sh", "-c", script},
		Labels:       map[string]string{LabelServer: s.id, "runpodtest.pod": p.api.ID},
		ExposedPorts: nat.PortSet{},
	}
	host := &container.HostConfig{PortBindings: nat.PortMap{}, Init: boolPtr(true)}
	for _, port := range p.api.Ports {
		if port == "22/tcp" {
			cfg.ExposedPorts["22/tcp"] = struct{}{}
			host.PortBindings["22/tcp"] = []nat.PortBinding{{HostIP: "127.0.0.1"}}
		}
	}
	var netCfg *network.NetworkingConfig
	if netID != "" {
		host.NetworkMode = container.NetworkMode(netID)
		netCfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netID: {}}}
	}
	created, err := s.docker.ContainerCreate(ctx, cfg, host, netCfg, nil, "runpodtest-"+s.id+"-"+p.api.ID)
	if err != nil {
		return "", "", fmt.Errorf("run pod %s: %w", p.api.ID, err)
	}
	if err := s.docker.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		s.removeContainer(context.Background(), created.ID)
		return "", "", fmt.Errorf("start pod %s: %w", p.api.ID, err)
	}
	if netID != "" {
		info, err := s.docker.ContainerInspect(ctx, created.ID)
		if err != nil {
			s.removeContainer(context.Background(), created.ID)
			return "", "", err
		}
		for _, ep := range info.NetworkSettings.Networks {
			if ep.NetworkID == netID {
				ip = ep.IPAddress
			}
		}
	}
	return created.ID, ip, nil
}

func boolPtr(b bool) *bool { return &b }

// inspect reports whether a container runs and has run for bootDelay,
// its published SSH port and its exit code.
func (s *Server) inspect(ctx context.Context, id string) (running, booted bool, port, exit int) {
	info, err := s.docker.ContainerInspect(ctx, id)
	if err != nil || info.State == nil {
		return false, false, 0, -1
	}
	if t, err := time.Parse(time.RFC3339Nano, info.State.StartedAt); err == nil {
		booted = time.Since(t) >= s.bootDelay
	}
	if info.NetworkSettings != nil {
		for _, b := range info.NetworkSettings.Ports["22/tcp"] {
			if n, err := strconv.Atoi(b.HostPort); err == nil && b.HostIP == "127.0.0.1" {
				port = n
			}
		}
	}
	return info.State.Running, booted, port, info.State.ExitCode
}

func (s *Server) stopContainer(ctx context.Context, id string) error {
	timeout := 1
	return s.docker.ContainerStop(ctx, id, container.StopOptions{Timeout: &timeout})
}

func (s *Server) startContainer(ctx context.Context, id string) error {
	return s.docker.ContainerStart(ctx, id, container.StartOptions{})
}

func (s *Server) removeContainer(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	err := s.docker.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

func (s *Server) createNetwork(ctx context.Context, clusterID string) (string, error) {
	n, err := s.docker.NetworkCreate(ctx, "runpodtest-"+s.id+"-"+clusterID, network.CreateOptions{
		Driver: "bridge", Labels: map[string]string{LabelServer: s.id, "runpodtest.cluster": clusterID}})
	if err != nil {
		return "", fmt.Errorf("cluster network: %w", err)
	}
	return n.ID, nil
}

func (s *Server) removeNetwork(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	err := s.docker.NetworkRemove(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// removeAll removes every container, then every network, labelled with
// the server's id.
func (s *Server) removeAll(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", LabelServer+"="+s.id))
	var errs []error
	cs, err := s.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	errs = append(errs, err)
	for _, c := range cs {
		errs = append(errs, s.removeContainer(ctx, c.ID))
	}
	ns, err := s.docker.NetworkList(ctx, network.ListOptions{Filters: f})
	errs = append(errs, err)
	for _, n := range ns {
		errs = append(errs, s.removeNetwork(ctx, n.ID))
	}
	s.mu.Lock()
	s.pods, s.clusters, s.templates = map[string]*pod{}, map[string]*cluster{}, map[string]*Template{}
	s.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("runpodtest: clean up: %w", err)
	}
	return nil
}
