package container

import (
	"context"
	"fmt"
	"strconv"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/skyward-sh/skyward/providers"
)

// List returns the containers and networks labelled with lineage, with one
// container list and one network list. A shared network belongs to no
// lineage and is not returned.
func (p *Provider) List(ctx context.Context, lineage string) ([]providers.Object, error) {
	if lineage == "" {
		return nil, fmt.Errorf("list: no lineage given")
	}
	f := filters.NewArgs(filters.Arg("label", providers.LabelLineage+"="+lineage))
	nets, err := p.api.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list: networks: %w", err)
	}
	cs, err := p.api.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list: containers: %w", err)
	}
	out := make([]providers.Object, 0, len(nets)+len(cs))
	for _, n := range nets {
		out = append(out, poolObject(n, providers.Object{}))
		p.noteDriver(n.Name, n.Driver)
	}
	for _, c := range cs {
		out = append(out, p.reach(ctx, summaryObject(c)))
	}
	return out, nil
}

// summaryObject maps a listed container to a node object without an
// inspect: the list carries the addresses and ports of running containers.
func summaryObject(c container.Summary) providers.Object {
	running := c.State == container.StateRunning
	netName := c.HostConfig.NetworkMode
	privateIP, port := "", ""
	if c.NetworkSettings != nil {
		netName = pickNetwork(netName, c.NetworkSettings.Networks)
		if ep := c.NetworkSettings.Networks[netName]; ep != nil && running {
			privateIP = ep.IPAddress
		}
	}
	if running {
		for _, pt := range c.Ports {
			if pt.PrivatePort == 22 && pt.Type == "tcp" && pt.PublicPort != 0 && (pt.IP == "127.0.0.1" || port == "") {
				port = strconv.Itoa(int(pt.PublicPort))
			}
		}
	}
	o := node(c.Labels, c.ID, containerName(c.Names), netName, privateIP, port, running)
	o.Spec = map[string]string{"base_image": c.Image}
	return o
}

func containerName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	n := names[0]
	if len(n) > 0 && n[0] == '/' {
		n = n[1:]
	}
	return n
}
