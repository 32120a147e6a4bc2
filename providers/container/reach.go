package container

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/docker/docker/api/types/network"

	"github.com/skyward-sh/skyward/internal/hostnet"
	"github.com/skyward-sh/skyward/providers"
)

// directSSHPort is the port a node's SSH server listens on inside its
// container, where the controller reaches it directly.
const directSSHPort = 22

// directNets remembers, per network name, whether this machine reaches
// that network's containers at their own addresses.
type directNets struct {
	mu   sync.Mutex
	nets map[string]bool
	// drivers holds the drivers of networks a list has already told
	// (noteDriver), sparing an inspect each.
	drivers map[string]string
	// addrs lists this machine's interface networks; tests replace it.
	addrs func() ([]net.Addr, error)
	// uid is the user this process runs as; tests replace it.
	uid func() int
	// driver names a network's driver; tests replace it.
	driver func(ctx context.Context, name string) (string, error)
}

func (p *Provider) uid() int {
	if p.direct.uid != nil {
		return p.direct.uid()
	}
	return os.Getuid()
}

// reach gives a running node the SSH endpoint the controller should use:
// the container's own address and port when this machine reaches it
// directly, else the port published on 127.0.0.1. The published port is
// always there (for users, for engines whose networks this machine cannot
// reach); the direct way spares every byte a userland proxy
// (docker-proxy, rootlessport) and a second TCP hop, which cost a 3-node
// OpenSSH apply 0.12 s here.
func (p *Provider) reach(ctx context.Context, o providers.Object) providers.Object {
	if o.SSH.IsZero() || !o.Running || o.PrivateIP == "" || !p.reachesDirectly(ctx, o.Private["network"], o.PrivateIP) {
		return o
	}
	o.SSH.Host, o.SSH.Port = o.PrivateIP, directSSHPort
	return o
}

// reachesDirectly reports whether this machine reaches ip, a container's
// address on network netName, without a published port: the engine runs
// on this machine, the network is a bridge (not a macvlan or ipvlan
// network, whose containers their parent interface's host cannot reach)
// and the bridge is one of this machine's interfaces. That holds for
// rootful Docker and Podman on Linux; not for Docker Desktop, whose
// networks are in a VM, nor for rootless engines, whose networks are in a
// namespace of their own, nor for an engine elsewhere. The answer is kept
// per network: a network's bridge exists once one of its containers runs.
func (p *Provider) reachesDirectly(ctx context.Context, netName, ip string) bool {
	if !p.engineHere() {
		return false
	}
	addr := net.ParseIP(ip)
	if addr == nil {
		return false
	}
	d := &p.direct
	d.mu.Lock()
	defer d.mu.Unlock()
	if v, ok := d.nets[netName]; ok {
		return v
	}
	drv, ok := d.drivers[netName]
	if !ok {
		driver := d.driver
		if driver == nil {
			driver = func(ctx context.Context, name string) (string, error) {
				n, err := p.api.NetworkInspect(ctx, name, network.InspectOptions{})
				return n.Driver, err
			}
		}
		var err error
		if drv, err = driver(ctx, netName); err != nil {
			return false
		}
	}
	list := d.addrs
	if list == nil {
		list = net.InterfaceAddrs
	}
	addrs, err := list()
	if err != nil {
		return false
	}
	v := drv == "bridge" && hostnet.OnLink(addr, addrs)
	if d.nets == nil {
		d.nets = map[string]bool{}
	}
	d.nets[netName] = v
	return v
}

// noteDriver records the driver of network name, as a list of networks
// told it, for reachesDirectly.
func (p *Provider) noteDriver(name, driver string) {
	d := &p.direct
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.drivers == nil {
		d.drivers = map[string]string{}
	}
	d.drivers[name] = driver
}

// engineHere reports whether the engine runs on this machine, rootful:
// a local socket, or nerdctl (which drives this machine's containerd). A
// rootless engine's networks live in a namespace of their own, whose
// subnets may be those of a rootful engine's bridges on this machine
// (Podman's default 10.88.0.0/16 in both): its containers are never
// reached directly. Rootless is a socket in a user's runtime directory,
// or Podman or nerdctl run by a user other than root.
func (p *Provider) engineHere() bool {
	if p.binary != RuntimeNerdctl && !strings.HasPrefix(p.endpoint, "unix://") {
		return false
	}
	if strings.HasPrefix(strings.TrimPrefix(p.endpoint, "unix://"), "/run/user/") {
		return false
	}
	return p.binary == RuntimeDocker || p.uid() == 0
}
