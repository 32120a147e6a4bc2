package container

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/skyward-sh/skyward/providers"
)

// NetworkName is the name of the network of a pool that has no shared
// network.
func NetworkName(lineage, pool string) string {
	return fmt.Sprintf("skyward-%s-%s", short(lineage), pool)
}

func (p *Provider) createPool(ctx context.Context, r providers.Resource) (providers.Object, error) {
	if r.Lineage == "" || r.Pool == "" {
		return providers.Object{}, fmt.Errorf("create: pool resource needs a lineage and a pool name")
	}
	name := NetworkName(r.Lineage, r.Pool)
	labels := labelsFor(r)
	shared := p.network != ""
	if shared {
		name = p.network
		// A shared network belongs to no lineage: List of a lineage must
		// not return it and no lineage's destroy may take it away from
		// another.
		labels = map[string]string{providers.LabelManaged: "true", LabelShared: "true"}
		p.sharedMu.Lock()
		defer p.sharedMu.Unlock()
	}
	id, err := p.ensureNetwork(ctx, name, labels, func(n network.Inspect) bool {
		if shared {
			return true // use a shared network whoever made it
		}
		return n.Labels[providers.LabelLineage] == r.Lineage && n.Labels[providers.LabelManaged] == "true"
	})
	if err != nil {
		return providers.Object{}, fmt.Errorf("create: %w", err)
	}
	return providers.Object{
		Kind:    providers.KindPool,
		Address: r.Address,
		ID:      id,
		Lineage: r.Lineage,
		Running: true,
		Private: poolAttrs(name, id, shared),
	}, nil
}

// ensureNetwork creates the bridge network name, or adopts an existing one
// that adopt accepts (a crash between create and state write, or a
// concurrent create of a shared network).
func (p *Provider) ensureNetwork(ctx context.Context, name string, labels map[string]string, adopt func(network.Inspect) bool) (string, error) {
	resp, err := p.api.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Labels: labels})
	for try := 1; err != nil && try < 4 && vanishedInterface(err); try++ {
		// Podman picks a free subnet by reading the host's interfaces
		// and their addresses; a bridge removed in between (another
		// pool's network going away) fails that pick, and a retry makes
		// a fresh one.
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("network %q: %w", name, ctx.Err())
		case <-time.After(time.Duration(try) * 50 * time.Millisecond):
		}
		resp, err = p.api.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Labels: labels})
	}
	if err == nil {
		return resp.ID, nil
	}
	n, ierr := p.api.NetworkInspect(ctx, name, network.InspectOptions{})
	if ierr != nil {
		return "", fmt.Errorf("network %q: %w", name, err)
	}
	if n.Name != name || !adopt(n) {
		return "", fmt.Errorf("network %q exists and was not created by skyward for this state (lineage %q)", name, n.Labels[providers.LabelLineage])
	}
	return n.ID, nil
}

func poolAttrs(name, id string, shared bool) map[string]string {
	return map[string]string{
		"network":    name,
		"network_id": id,
		"shared":     strconv.FormatBool(shared),
	}
}

func (p *Provider) readPool(ctx context.Context, o providers.Object) (providers.Object, error) {
	n, err := p.api.NetworkInspect(ctx, o.ID, network.InspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return providers.Object{}, fmt.Errorf("read: network %s: %w", o.ID, providers.ErrNotFound)
		}
		return providers.Object{}, fmt.Errorf("read: network %s: %w", o.ID, err)
	}
	return poolObject(n, o), nil
}

// poolObject maps a network to a pool object; prev fills what the labels
// of a shared network do not carry.
func poolObject(n network.Inspect, prev providers.Object) providers.Object {
	o := providers.Object{
		Kind:    providers.KindPool,
		Address: n.Labels[providers.LabelAddress],
		ID:      n.ID,
		Lineage: n.Labels[providers.LabelLineage],
		Running: true,
		Private: poolAttrs(n.Name, n.ID, n.Labels[LabelShared] == "true"),
	}
	if o.Address == "" {
		o.Address = prev.Address
	}
	if o.Lineage == "" {
		o.Lineage = prev.Lineage
	}
	return o
}

func (p *Provider) deletePool(ctx context.Context, o providers.Object) error {
	if o.ID == "" {
		return fmt.Errorf("delete: pool object has no network id")
	}
	n, err := p.api.NetworkInspect(ctx, o.ID, network.InspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("delete: network %s: %w", o.ID, err)
	}
	if n.Labels[LabelShared] == "true" || o.Private["shared"] == "true" {
		return p.deleteShared(ctx, n)
	}

	err = p.api.NetworkRemove(ctx, n.ID)
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	// Containers of this lineage still attached (nodes whose delete failed
	// or that the state never knew): they go with their pool.
	lineage := n.Labels[providers.LabelLineage]
	if lineage == "" {
		lineage = o.Lineage
	}
	if lineage == "" {
		return fmt.Errorf("delete: network %s: %w", n.Name, err)
	}
	cs, lerr := p.api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", providers.LabelLineage+"="+lineage),
		filters.Arg("network", n.ID),
	)})
	if lerr != nil {
		return fmt.Errorf("delete: network %s: %w (listing its containers: %v)", n.Name, err, lerr)
	}
	if len(cs) == 0 {
		return fmt.Errorf("delete: network %s: %w", n.Name, err)
	}
	for _, c := range cs {
		if rerr := p.api.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); rerr != nil && !cerrdefs.IsNotFound(rerr) {
			return fmt.Errorf("delete: network %s: removing attached container %s: %w", n.Name, containerName(c.Names), rerr)
		}
	}
	if err := p.api.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("delete: network %s: %w", n.Name, err)
	}
	return nil
}

// deleteShared removes a shared network once no skyward container uses it.
// One that skyward did not create, or that anything still uses, is left.
func (p *Provider) deleteShared(ctx context.Context, n network.Inspect) error {
	if n.Labels[providers.LabelManaged] != "true" || len(n.Containers) > 0 {
		return nil
	}
	// n.Containers holds running containers only: created or stopped nodes
	// still belong to the network.
	cs, err := p.api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", providers.LabelManaged+"=true"),
		filters.Arg("network", n.ID),
	)})
	if err != nil {
		return fmt.Errorf("delete: shared network %s: %w", n.Name, err)
	}
	if len(cs) > 0 {
		return nil
	}
	err = p.api.NetworkRemove(ctx, n.ID)
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	// Something attached meanwhile: a shared network is left while in use.
	if again, ierr := p.api.NetworkInspect(ctx, n.ID, network.InspectOptions{}); ierr == nil && len(again.Containers) > 0 {
		return nil
	}
	return fmt.Errorf("delete: shared network %s: %w", n.Name, err)
}

// vanishedInterface reports a network create that failed because a host
// interface went away while the engine chose a subnet.
func vanishedInterface(err error) bool {
	return strings.Contains(err.Error(), "no such network interface")
}
