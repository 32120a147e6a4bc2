package container

import (
	"context"
	"fmt"
	"strconv"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"

	"github.com/skyward-sh/skyward/providers"
)

// Labels of a baked image.
const (
	LabelBake = "skyward.bake" // the recipe key the image was baked for
	LabelBase = "skyward.base" // the base image it was baked from
)

// BakedRepository is the repository baked images are tagged in:
// skyward-baked:<first 16 hex digits of the key>.
const BakedRepository = "skyward-baked"

var _ providers.Baker = (*Provider)(nil)

// BakedImage implements providers.Baker: the local image baked for key.
func (p *Provider) BakedImage(ctx context.Context, key string) (string, bool, error) {
	imgs, err := p.api.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelBake+"="+key))})
	if err != nil {
		return "", false, fmt.Errorf("list baked images: %w", err)
	}
	for _, img := range imgs {
		if len(img.RepoTags) > 0 {
			return img.RepoTags[0], true, nil
		}
		return img.ID, true, nil
	}
	return "", false, nil
}

// Bake implements providers.Baker: it commits the node's container as
// skyward-baked:<key16>, labelled with the key, the base image and the
// lineage that baked it. Baked images outlive the pool (that is their
// point); `docker rmi` removes them.
func (p *Provider) Bake(ctx context.Context, o providers.Object, key, base string) (string, error) {
	if len(key) < 16 {
		return "", fmt.Errorf("bake: key %q too short", key)
	}
	ref := BakedRepository + ":" + key[:16]
	_, err := p.api.ContainerCommit(ctx, o.ID, container.CommitOptions{
		Reference: ref,
		Comment:   "skyward prebaked image for recipe " + key,
		Changes: []string{
			"LABEL " + providers.LabelManaged + "=true",
			"LABEL " + providers.LabelLineage + "=" + o.Lineage,
			"LABEL " + LabelBake + "=" + key,
			"LABEL " + LabelBase + "=" + strconv.Quote(base),
		},
	})
	if err != nil {
		return "", fmt.Errorf("bake: commit %s: %w", shortRef(o.ID), err)
	}
	return ref, nil
}

func shortRef(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
