package container

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/network"
)

// flakyNetworks fails the first failures network creates with err.
type flakyNetworks struct {
	dockerAPI
	err      error
	failures int
	creates  int
}

func (f *flakyNetworks) NetworkCreate(ctx context.Context, name string, o network.CreateOptions) (network.CreateResponse, error) {
	f.creates++
	if f.creates <= f.failures {
		return network.CreateResponse{}, f.err
	}
	return network.CreateResponse{ID: "net-" + name}, nil
}

func (f *flakyNetworks) NetworkInspect(ctx context.Context, name string, o network.InspectOptions) (network.Inspect, error) {
	return network.Inspect{}, errors.New("no such network")
}

// TestEnsureNetworkRetriesVanishedInterface: Podman's subnet pick fails
// when a host bridge goes away meanwhile; that create is tried again, and
// other failures are not.
func TestEnsureNetworkRetriesVanishedInterface(t *testing.T) {
	vanished := errors.New("Error response from daemon: route ip+net: no such network interface")
	f := &flakyNetworks{err: vanished, failures: 2}
	p := newProvider(f, "fake://", Config{})
	id, err := p.ensureNetwork(context.Background(), "skyward-x-dev", nil, func(network.Inspect) bool { return true })
	if err != nil || id != "net-skyward-x-dev" || f.creates != 3 {
		t.Errorf("id %q, err %v after %d creates; want the third create's network", id, err, f.creates)
	}

	f = &flakyNetworks{err: vanished, failures: 10}
	p = newProvider(f, "fake://", Config{})
	if _, err := p.ensureNetwork(context.Background(), "skyward-x-dev", nil, func(network.Inspect) bool { return true }); err == nil || !strings.Contains(err.Error(), "no such network interface") || f.creates != 4 {
		t.Errorf("a create that keeps failing: %v after %d creates; want its error after 4", err, f.creates)
	}

	f = &flakyNetworks{err: errors.New("pool overlaps with other one on this address space"), failures: 1}
	p = newProvider(f, "fake://", Config{})
	if _, err := p.ensureNetwork(context.Background(), "skyward-x-dev", nil, func(network.Inspect) bool { return true }); err == nil || f.creates != 1 {
		t.Errorf("another failure: %v after %d creates; want it at once", err, f.creates)
	}
}
