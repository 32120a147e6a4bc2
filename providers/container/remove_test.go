package container

import (
	"context"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/skyward-sh/skyward/providers"
)

// removingAPI answers as Docker does while an earlier removal of a
// container is still going on: removes conflict, and the container is
// there for the next inspects inspects, then gone.
type removingAPI struct {
	fakeAPI
	inspects int
	removes  int
}

func (f *removingAPI) ContainerRemove(ctx context.Context, id string, o container.RemoveOptions) error {
	f.removes++
	return cerrdefs.ErrConflict.WithMessage("removal of container " + id + " is already in progress")
}

func (f *removingAPI) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	if f.inspects == 0 {
		return container.InspectResponse{}, cerrdefs.ErrNotFound.WithMessage("No such container: " + id)
	}
	f.inspects--
	return container.InspectResponse{}, nil
}

// TestDeleteWaitsForRemovalInProgress: a destroy right after a killed one
// waits for the removal Docker is still doing, and succeeds.
func TestDeleteWaitsForRemovalInProgress(t *testing.T) {
	defer func(d time.Duration) { removalPoll = d }(removalPoll)
	removalPoll = time.Millisecond
	f := &removingAPI{inspects: 3}
	p := newProvider(f, "fake://", Config{})
	if err := p.Delete(context.Background(), providers.Object{Kind: providers.KindNode, ID: "c1"}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if f.removes != 4 || f.inspects != 0 {
		t.Errorf("%d removes, %d inspects left; want 4 and 0", f.removes, f.inspects)
	}

	// It gives up when the context ends, saying why.
	f = &removingAPI{inspects: 1 << 30}
	p = newProvider(f, "fake://", Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := p.Delete(ctx, providers.Object{Kind: providers.KindNode, ID: "c1"})
	if err == nil || !strings.Contains(err.Error(), "removal already in progress") {
		t.Errorf("err = %v", err)
	}
}
