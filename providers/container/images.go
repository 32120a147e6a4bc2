package container

import (
	"context"
	"fmt"
	"sort"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
)

// registryTimeout bounds the registry look-up of CheckBaseImage, which
// has no answer at all on a machine without network.
const registryTimeout = 5 * time.Second

// distributionInspector is the engine call that asks a registry about an
// image without pulling it. The real client has it; test fakes need not.
type distributionInspector interface {
	DistributionInspect(ctx context.Context, imageRef, encodedRegistryAuth string) (registry.DistributionInspect, error)
}

// LocalImages returns the references (repository:tag) of the images present
// in the engine, newest first. Untagged images are left out.
func (p *Provider) LocalImages(ctx context.Context) ([]string, error) {
	list, err := p.api.ImageList(ctx, image.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].Created > list[j].Created })
	var out []string
	for _, img := range list {
		for _, t := range img.RepoTags {
			if t != "<none>:<none>" {
				out = append(out, t)
			}
		}
	}
	return out, nil
}

// CheckBaseImage tells, without changing anything, whether new nodes can
// start from ref ("" is the provider's image): nil when the image is
// present in the engine or a registry serves it, otherwise why not.
// Nothing is pulled; when the engine cannot ask a registry, the answer is
// nil and Prepare finds out at apply.
func (p *Provider) CheckBaseImage(ctx context.Context, ref string) error {
	if ref == "" {
		ref = p.image
	}
	_, err := p.api.ImageInspect(ctx, ref)
	switch {
	case err == nil:
		return nil
	case !cerrdefs.IsNotFound(err):
		return fmt.Errorf("base image %q: %w", ref, err)
	}
	d, ok := p.api.(distributionInspector)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, registryTimeout)
	defer cancel()
	if _, err := d.DistributionInspect(ctx, ref, ""); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("no answer from the registry in %s", registryTimeout)
		}
		return fmt.Errorf("base image %q is not present locally and cannot be pulled: %v", ref, err)
	}
	return nil
}
