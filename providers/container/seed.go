package container

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/skyward-sh/skyward/agent"
	"github.com/skyward-sh/skyward/providers"
)

// SeedPath is where a node in agent mode finds its agent binary when the
// engine runs on this machine: a read-only bind mount of a copy of the
// controller's binary. AgentPath is then a symlink to it, so that an
// upgrade over SSH (EnsureAgent) replaces the link with a file of its own
// and never writes through the mount.
//
// Mounting instead of copying the binary into each container keeps a
// node's start independent of the binary's size; a remote engine (tcp://,
// ssh://) and nerdctl still get a copy.
const SeedPath = agent.Root + "/seed/skyward"

// seedTTL is how long an unused seed stays in the cache. A stopped node
// whose seed is gone cannot start again, so seeds outlive any pool that a
// user keeps around for a while.
const seedTTL = 30 * 24 * time.Hour

// mountsFiles reports whether this provider bind-mounts the node's files
// (NodeFilesPath) into its nodes rather than copying them in: an engine on
// this machine (a unix socket), but nerdctl.
func (p *Provider) mountsFiles() bool {
	return p.binary != RuntimeNerdctl && strings.HasPrefix(p.endpoint, "unix://") && !p.copyAgent
}

// mountsAgent reports whether this provider bind-mounts the agent binary
// into its nodes (agent mode, with mountsFiles) rather than copying it in.
func (p *Provider) mountsAgent() bool {
	return p.mode == ModeAgent && p.mountsFiles()
}

var seedMu sync.Mutex

// seedDir is where seeds are kept: one directory per binary's sha256.
func seedDir() (string, error) {
	if d := os.Getenv("SKYWARD_SEED_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("agent seed: %w", err)
	}
	return filepath.Join(d, "skyward", "agent"), nil
}

// agentSeed returns the path of a copy of the binary at bin, named by its
// sha256, that nothing rewrites while nodes mount it: a new build of
// skyward gets a new seed. Seeds not used for seedTTL are removed, unless
// inUse (nil: none) says a container still mounts them: a stopped node
// whose seed is gone could not start again.
func agentSeed(bin string, inUse func() (map[string]bool, error)) (path, sum string, err error) {
	sum, err = agent.FileSum(bin)
	if err != nil {
		return "", "", fmt.Errorf("agent binary: %w", err)
	}
	dir, err := seedDir()
	if err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, sum, "skyward")
	seedMu.Lock()
	defer seedMu.Unlock()
	now := time.Now()
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		_ = os.Chtimes(filepath.Dir(path), now, now)
		return path, sum, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", "", fmt.Errorf("agent seed: %w", err)
	}
	// The cache directory is the user's; the seed must be readable by
	// the engine and by the nodes' root, as the binary itself is.
	for _, d := range []string{filepath.Dir(filepath.Dir(path)), filepath.Dir(path)} {
		_ = os.Chmod(d, 0o755)
	}
	if err := copyFile(bin, path); err != nil {
		return "", "", fmt.Errorf("agent seed: %w", err)
	}
	if got, err := agent.FileSum(path); err != nil || got != sum {
		os.Remove(path)
		return "", "", fmt.Errorf("agent seed: %s changed while being copied", bin)
	}
	pruneSeeds(dir, sum, now, inUse)
	return path, sum, nil
}

// copyFile copies src to dst through a temporary file and a rename, so
// that dst is either absent or whole.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".seed-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// pruneSeeds removes the seeds of dir other than keep that were last used
// longer than seedTTL before now and that no container mounts (inUse, by
// sum). When inUse fails, nothing is removed.
func pruneSeeds(dir, keep string, now time.Time, inUse func() (map[string]bool, error)) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var stale []string
	for _, e := range entries {
		if !e.IsDir() || e.Name() == keep {
			continue
		}
		fi, err := e.Info()
		if err == nil && now.Sub(fi.ModTime()) > seedTTL {
			stale = append(stale, e.Name())
		}
	}
	if len(stale) == 0 {
		return
	}
	mounted := map[string]bool{}
	if inUse != nil {
		if mounted, err = inUse(); err != nil {
			return
		}
	}
	for _, name := range stale {
		if !mounted[name] {
			os.RemoveAll(filepath.Join(dir, name))
		}
	}
}

// mountedSeeds lists the sums of the seeds in dir that the engine's
// containers of any skyward state, running or not, mount.
func (p *Provider) mountedSeeds(dir string) func() (map[string]bool, error) {
	return func() (map[string]bool, error) {
		sources, err := p.mountSources()
		if err != nil {
			return nil, err
		}
		sums := map[string]bool{}
		for src := range sources {
			// dir/SUM/skyward
			rel, err := filepath.Rel(dir, src)
			if parts := strings.Split(filepath.ToSlash(rel), "/"); err == nil && len(parts) == 2 && parts[0] != ".." && parts[1] == "skyward" {
				sums[parts[0]] = true
			}
		}
		return sums, nil
	}
}

// mountSources lists the host paths that the engine's containers of any
// skyward state, running or not, mount.
func (p *Provider) mountSources() (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	cs, err := p.api.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", providers.LabelLineage))})
	if err != nil {
		return nil, err
	}
	sources := map[string]bool{}
	for _, c := range cs {
		for _, m := range c.Mounts {
			sources[filepath.Clean(m.Source)] = true
		}
	}
	return sources, nil
}
