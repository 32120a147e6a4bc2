package container

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/skyward-sh/skyward/internal/hostnet"
	"github.com/skyward-sh/skyward/providers"
)

func TestReach(t *testing.T) {
	host := func() ([]net.Addr, error) { return hostnet.Addrs("127.0.0.1/8", "172.28.0.1/16"), nil }
	published := providers.SSHEndpoint{Host: "127.0.0.1", Port: 32768, User: "root"}
	node := func(ip string, running bool) providers.Object {
		return providers.Object{Kind: providers.KindNode, Running: running, PrivateIP: ip, SSH: published,
			Private: map[string]string{"network": "skyward-1234abcd-dev"}}
	}
	tests := map[string]struct {
		endpoint string
		binary   string // default docker
		driver   string // the network's, default bridge
		uid      int
		addrs    func() ([]net.Addr, error)
		o        providers.Object
		want     providers.SSHEndpoint
	}{
		"bridge of this machine": {endpoint: "unix:///var/run/docker.sock", uid: 1000, addrs: host, o: node("172.28.0.3", true),
			want: providers.SSHEndpoint{Host: "172.28.0.3", Port: 22, User: "root"}},
		"rootful podman": {endpoint: "unix:///run/podman/podman.sock", binary: RuntimePodman, addrs: host, o: node("172.28.0.3", true),
			want: providers.SSHEndpoint{Host: "172.28.0.3", Port: 22, User: "root"}},
		// Its network's subnet may be a rootful bridge's of this machine.
		"rootless podman":       {endpoint: "unix:///run/user/1000/podman/podman.sock", binary: RuntimePodman, uid: 1000, addrs: host, o: node("172.28.0.3", true), want: published},
		"rootless podman, root": {endpoint: "unix:///run/user/1000/podman/podman.sock", binary: RuntimePodman, addrs: host, o: node("172.28.0.3", true), want: published},
		"podman as a user":      {endpoint: "unix:///tmp/podman.sock", binary: RuntimePodman, uid: 1000, addrs: host, o: node("172.28.0.3", true), want: published},
		"nerdctl as root": {endpoint: "nerdctl", binary: RuntimeNerdctl, addrs: host, o: node("172.28.0.3", true),
			want: providers.SSHEndpoint{Host: "172.28.0.3", Port: 22, User: "root"}},
		"nerdctl as a user": {endpoint: "nerdctl", binary: RuntimeNerdctl, uid: 1000, addrs: host, o: node("172.28.0.3", true), want: published},
		// Its containers are not reachable from the host of its parent
		// interface, though their subnet is that interface's.
		"macvlan network": {endpoint: "unix:///var/run/docker.sock", driver: "macvlan", addrs: host, o: node("172.28.0.3", true), want: published},
		"rootless docker": {endpoint: "unix:///run/user/1000/docker.sock", uid: 1000, addrs: host, o: node("172.28.0.3", true), want: published},
		"network this machine lacks (a VM, a rootless namespace)": {endpoint: "unix:///var/run/docker.sock", addrs: host, o: node("10.88.0.3", true), want: published},
		"engine elsewhere":   {endpoint: "tcp://10.0.0.5:2376", addrs: host, o: node("172.28.0.3", true), want: published},
		"stopped":            {endpoint: "unix:///var/run/docker.sock", addrs: host, o: node("172.28.0.3", false), want: published},
		"no address":         {endpoint: "unix:///var/run/docker.sock", addrs: host, o: node("", true), want: published},
		"interfaces unknown": {endpoint: "unix:///var/run/docker.sock", addrs: func() ([]net.Addr, error) { return nil, errors.New("netlink") }, o: node("172.28.0.3", true), want: published},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := newProvider(nil, tc.endpoint, Config{})
			if tc.binary != "" {
				p.binary = tc.binary
			}
			p.direct.addrs, p.direct.uid = tc.addrs, func() int { return tc.uid }
			drv := tc.driver
			if drv == "" {
				drv = "bridge"
			}
			p.direct.driver = func(context.Context, string) (string, error) { return drv, nil }
			if got := p.reach(context.Background(), tc.o).SSH; got != tc.want {
				t.Errorf("endpoint %+v, want %+v", got, tc.want)
			}
		})
	}
}

// The answer is kept per network: this machine's interfaces are listed
// once for all the nodes of a network, and again for another network.
func TestReachListsInterfacesOncePerNetwork(t *testing.T) {
	calls := 0
	p := newProvider(nil, "unix:///var/run/docker.sock", Config{})
	p.direct.addrs = func() ([]net.Addr, error) { calls++; return hostnet.Addrs("172.28.0.1/16"), nil }
	p.direct.driver = func(context.Context, string) (string, error) { return "bridge", nil }
	for i, netName := range []string{"a", "a", "a", "b"} {
		o := providers.Object{Running: true, PrivateIP: "172.28.0.9", SSH: providers.SSHEndpoint{Host: "127.0.0.1", Port: 40000},
			Private: map[string]string{"network": netName}}
		if got := p.reach(context.Background(), o).SSH; got.Host != "172.28.0.9" || got.Port != 22 {
			t.Errorf("node %d: endpoint %+v", i, got)
		}
	}
	if calls != 2 {
		t.Errorf("interfaces listed %d times for 2 networks", calls)
	}
}

// A network that a list of networks named is not inspected again.
func TestReachUsesListedDrivers(t *testing.T) {
	p := newProvider(nil, "unix:///var/run/docker.sock", Config{})
	p.direct.addrs = func() ([]net.Addr, error) { return hostnet.Addrs("172.28.0.1/16"), nil }
	inspected := 0
	p.direct.driver = func(context.Context, string) (string, error) { inspected++; return "bridge", nil }
	p.noteDriver("listed-bridge", "bridge")
	p.noteDriver("listed-macvlan", "macvlan")
	for netName, want := range map[string]string{"listed-bridge": "172.28.0.9", "listed-macvlan": "127.0.0.1"} {
		o := providers.Object{Running: true, PrivateIP: "172.28.0.9", SSH: providers.SSHEndpoint{Host: "127.0.0.1", Port: 40000},
			Private: map[string]string{"network": netName}}
		if got := p.reach(context.Background(), o).SSH.Host; got != want {
			t.Errorf("%s: endpoint host %s, want %s", netName, got, want)
		}
	}
	if inspected != 0 {
		t.Errorf("%d inspects of networks a list named", inspected)
	}
}
