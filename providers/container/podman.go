package container

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
)

// podmanAPI is the Docker API client on Podman's Docker-compatible
// service, with the calls that service lacks made through Podman's own
// (libpod) API on the same socket.
type podmanAPI struct {
	*client.Client
}

// libpodVersion is the libpod API version the calls below are made with:
// the oldest Podman 4 answers it.
const libpodVersion = "v4.0.0"

// cpuPeriod is the CFS period that a vCPU limit is a quota of, in µs
// (Docker's --cpus uses the same).
const cpuPeriod = 100000

// ContainerUpdate changes a container's CPU and memory limits through
// libpod's update (Podman 4.3 has no compat update). Zero limits are left
// as they are, as Docker's update does.
func (p podmanAPI) ContainerUpdate(ctx context.Context, id string, u container.UpdateConfig) (container.UpdateResponse, error) {
	type cpu struct {
		Quota  int64  `json:"quota,omitempty"`
		Period uint64 `json:"period,omitempty"`
	}
	type memory struct {
		Limit int64 `json:"limit,omitempty"`
		Swap  int64 `json:"swap,omitempty"`
	}
	var body struct {
		CPU    *cpu    `json:"cpu,omitempty"`
		Memory *memory `json:"memory,omitempty"`
	}
	if u.NanoCPUs > 0 {
		body.CPU = &cpu{Quota: u.NanoCPUs * cpuPeriod / 1e9, Period: cpuPeriod}
	}
	if u.Memory > 0 {
		body.Memory = &memory{Limit: u.Memory, Swap: u.MemorySwap}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return container.UpdateResponse{}, err
	}
	if err := p.libpod(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/update", b); err != nil {
		return container.UpdateResponse{}, err
	}
	return container.UpdateResponse{}, nil
}

// Info is the compat info with what it leaves out: whether the service is
// rootless, marked as Docker marks a rootless daemon ("name=rootless" in
// SecurityOptions), which decides whether resource limits hold on a
// cgroup v1 host.
func (p podmanAPI) Info(ctx context.Context) (system.Info, error) {
	info, err := p.Client.Info(ctx)
	if err != nil {
		return info, err
	}
	var li struct {
		Host struct {
			Security struct {
				Rootless bool `json:"rootless"`
			} `json:"security"`
		} `json:"host"`
	}
	if err := p.libpodGet(ctx, "/info", &li); err != nil {
		return info, err
	}
	if li.Host.Security.Rootless && !slices.Contains(info.SecurityOptions, "name=rootless") {
		info.SecurityOptions = append(info.SecurityOptions, "name=rootless")
	}
	return info, nil
}

// libpodGet reads one answer of Podman's own API into v.
func (p podmanAPI) libpodGet(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://podman/"+libpodVersion+"/libpod"+path, nil)
	if err != nil {
		return err
	}
	resp, err := p.HTTPClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("podman: GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(v)
}

// libpod makes one call to Podman's own API and fails with the service's
// message when it does not answer 2xx.
func (p podmanAPI) libpod(ctx context.Context, method, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://podman/"+libpodVersion+"/libpod"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.HTTPClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(msg, &e) == nil && e.Message != "" {
		return fmt.Errorf("podman: %s", e.Message)
	}
	return fmt.Errorf("podman: %s %s: %s", method, path, resp.Status)
}

// ContainerCommit commits through the compat API, which Podman 4.3 fails
// with "Decode(): EOF" when the request has no body: an empty config is
// sent, leaving the image's configuration to the changes.
func (p podmanAPI) ContainerCommit(ctx context.Context, id string, opts container.CommitOptions) (container.CommitResponse, error) {
	if opts.Config == nil {
		opts.Config = &container.Config{}
	}
	return p.Client.ContainerCommit(ctx, id, opts)
}

// ServerVersion reads Podman's version from its ping's headers: the
// compat /version runs conmon and the OCI runtime to ask theirs, which
// takes seconds on a busy host, where the ping answers at once.
func (p podmanAPI) ServerVersion(ctx context.Context) (types.Version, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://podman/_ping", nil)
	if err != nil {
		return types.Version{}, err
	}
	resp, err := p.HTTPClient().Do(req)
	if err != nil {
		return types.Version{}, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	v := resp.Header.Get("Libpod-Api-Version")
	if resp.StatusCode != http.StatusOK || v == "" {
		return types.Version{}, fmt.Errorf("podman: the service at %s does not look like Podman (ping: %s, no Libpod-Api-Version)", p.DaemonHost(), resp.Status)
	}
	return types.Version{
		Version:    v,
		APIVersion: resp.Header.Get("Api-Version"),
		Components: []types.ComponentVersion{{Name: "Podman Engine", Version: v}},
	}, nil
}
