package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/skyward-sh/skyward/planner"
	"github.com/skyward-sh/skyward/providers"
)

// baseImageChecker is implemented by providers that can tell, without
// changing anything, whether nodes can start from a base image (the
// container provider: present in the engine, or served by a registry).
type baseImageChecker interface {
	CheckBaseImage(ctx context.Context, ref string) error
}

// imageLister is implemented by providers that keep images locally and
// can list them (the container provider), newest first.
type imageLister interface {
	LocalImages(ctx context.Context) ([]string, error)
}

// buildBaseImageHint says how to get a base image with no registry.
const buildBaseImageHint = "To build a Debian base image from this machine's apt mirror, run make base-image " +
	"(bash testdata/mkbaseimage.sh) in a skyward checkout; it prints the image's tag. Then set the provider's " +
	"image (or the base_image variable of the examples) to that tag, or docker load an image you have."

// baseImageWarnings checks the base image of every provider whose nodes
// the plan creates, once per provider, and returns a warning for each
// image that is neither present nor pullable: apply would fail on it.
func (m *Meta) baseImageWarnings(p *planner.Plan, provs map[string]providers.Provider) []warning {
	seen := map[string]bool{}
	var out []warning
	for _, c := range p.Changes {
		if c.Type != string(providers.KindNode) || (c.Action != planner.Create && c.Action != planner.DeleteThenCreate) {
			continue
		}
		if seen[c.Provider] {
			continue
		}
		seen[c.Provider] = true
		ch, ok := provs[c.Provider].(baseImageChecker)
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(m.Ctx, 10*time.Second)
		err := ch.CheckBaseImage(ctx, "")
		cancel()
		if err != nil {
			out = append(out, warning{
				summary: "Base image not available",
				detail: fmt.Sprintf("provider %s: %v. Apply will fail before creating anything. %s",
					c.Provider, err, buildBaseImageHint),
			})
		}
	}
	return out
}

// pickBaseImage chooses the base image init writes into a new
// configuration from the images present locally (newest first): the test
// base image that testdata/mkbaseimage.sh builds, else an Ubuntu or Debian
// image. "" when there is none.
func pickBaseImage(local []string) string {
	for _, pref := range []func(string) bool{
		func(t string) bool { return strings.HasPrefix(t, "skyward-test-base:") },
		func(t string) bool { return t == "ubuntu:24.04" },
		func(t string) bool { return strings.HasPrefix(t, "ubuntu:") || strings.HasPrefix(t, "debian:") },
	} {
		for _, t := range local {
			if pref(t) {
				return t
			}
		}
	}
	return ""
}
