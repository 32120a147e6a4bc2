package container

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/skyward-sh/skyward/providers"
)

// Labels of a baked image.
const (
	LabelBake = "skyward.bake" // the key the image was baked for: base and recipe
	LabelBase = "skyward.base" // the base image it was baked from
)

// BakedRepository is the repository baked images are tagged in:
// skyward-baked:<first 16 hex digits of the key>.
const BakedRepository = "skyward-baked"

// secretPaths are the files of a node that no baked image may hold: host
// keys (skyward's and OpenSSH's), authorized keys, the agent's
// configuration (the pool token), the image env, logs and the work of
// task executions. Shell globs, expanded on the node.
var secretPaths = []string{
	HostKeyPath, AuthorizedKeysPath,
	"/opt/skyward/agent.json", "/opt/skyward/env.json", "/opt/skyward/agent.log", "/opt/skyward/agent.pid",
	"/opt/skyward/exec", "/etc/ssh/ssh_host_*", "/root/.ssh/authorized_keys", "/home/*/.ssh/authorized_keys",
}

var _ providers.Baker = (*Provider)(nil)

// bakeKey combines the provider's base image with a recipe key.
func (p *Provider) bakeKey(recipe string) string {
	sum := sha256.Sum256([]byte(p.image + "\x00" + recipe))
	return hex.EncodeToString(sum[:])
}

// BakedImage implements providers.Baker: the local image baked for recipe
// on this provider's base image.
func (p *Provider) BakedImage(ctx context.Context, recipe string) (string, bool, error) {
	key := p.bakeKey(recipe)
	if p.binary == RuntimeNerdctl {
		// nerdctl cannot label a commit: its baked images are known by
		// their tag, which holds the key.
		ref := BakedRepository + ":" + key[:16]
		if _, err := p.api.ImageInspect(ctx, ref); err != nil {
			if cerrdefs.IsNotFound(err) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("look up baked image %s: %w", ref, err)
		}
		return ref, true, nil
	}
	imgs, err := p.api.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelBake+"="+key))})
	if err != nil {
		return "", false, fmt.Errorf("list baked images: %w", err)
	}
	for _, img := range imgs {
		// The tag as Bake wrote it (Podman lists it under docker.io/library/).
		want := BakedRepository + ":" + key[:16]
		for _, t := range img.RepoTags {
			if t == want || strings.HasSuffix(t, "/"+want) {
				return want, true, nil
			}
		}
		if len(img.RepoTags) > 0 {
			return img.RepoTags[0], true, nil
		}
		return img.ID, true, nil
	}
	return "", false, nil
}

// Bake implements providers.Baker: it commits the node's container as
// skyward-baked:<key16>, labelled with the key, the base image and the
// lineage that baked it. The node's secrets are moved to a tmpfs (which a
// commit leaves out) while the commit runs, and back afterwards. Baked
// images outlive the pool (that is their point); `docker rmi` removes them.
func (p *Provider) Bake(ctx context.Context, o providers.Object, recipe string) (string, error) {
	key := p.bakeKey(recipe)
	ref := BakedRepository + ":" + key[:16]
	// Each path moved is listed, so that exactly those go back (the
	// stash's own directories keep their modes out of the node's tree).
	stash := "set -e; for f in " + strings.Join(secretPaths, " ") + `; do [ -e "$f" ] || continue; d=` + bakeStash + `/files$(dirname "$f"); mkdir -p -m 0700 "$d"; mv "$f" "$d/"; echo "$f" >>` + bakeStash + `/moved; done`
	restore := `set -e; [ -f ` + bakeStash + `/moved ] || exit 0; while read -r f; do mv "` + bakeStash + `/files$f" "$f"; done <` + bakeStash + `/moved; rm -rf ` + bakeStash + `/files ` + bakeStash + `/moved`
	if err := p.exec(ctx, o.ID, stash); err != nil {
		// Whatever was moved goes back before giving up.
		rerr := p.exec(context.WithoutCancel(ctx), o.ID, restore)
		if rerr != nil {
			return "", fmt.Errorf("bake: set secrets aside: %w (and restoring them failed: %v)", err, rerr)
		}
		return "", fmt.Errorf("bake: set secrets aside: %w", err)
	}
	commit := container.CommitOptions{
		Reference: ref,
		Comment:   "skyward prebaked image for recipe " + recipe,
		Changes: []string{
			"LABEL " + providers.LabelManaged + "=true",
			"LABEL " + providers.LabelLineage + "=" + o.Lineage,
			"LABEL " + LabelBake + "=" + key,
			"LABEL " + LabelBase + "=" + strconv.Quote(p.image),
		},
	}
	if p.binary == RuntimeNerdctl {
		commit.Changes = nil // nerdctl's commit cannot set labels
	}
	_, err := p.api.ContainerCommit(ctx, o.ID, commit)
	if rerr := p.exec(context.WithoutCancel(ctx), o.ID, restore); rerr != nil {
		return "", fmt.Errorf("bake: restore the node's secrets: %w", rerr)
	}
	if err != nil {
		return "", fmt.Errorf("bake: commit %s: %w", shortRef(o.ID), err)
	}
	return ref, nil
}

// exec runs a shell script as root in a running container and fails with
// its output when it exits non-zero.
func (p *Provider) exec(ctx context.Context, id, script string) error {
	ex, err := p.api.ContainerExecCreate(ctx, id, container.ExecOptions{
		User: "0", Cmd: []string{"/bin/sh", "-c", script}, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return err
	}
	att, err := p.api.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return err
	}
	defer att.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, att.Reader); err != nil {
		return err
	}
	st, err := p.api.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		return err
	}
	if st.ExitCode != 0 {
		return fmt.Errorf("exit status %d: %s", st.ExitCode, strings.TrimSpace(out.String()))
	}
	return nil
}

func shortRef(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
