package container

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/skyward-sh/skyward/agent"
	"github.com/skyward-sh/skyward/providers"
)

// NodeFilesPath is where a node whose agent binary is mounted (see
// SeedPath) finds its SSH host key and authorized keys: a read-only bind
// mount of a directory that the provider writes on this machine for that
// container alone, and removes with it. Copying the files in instead
// makes the engine mount the container's file system before its first
// start, which costs 60 to 100 ms on fuse-overlayfs. A restart finds
// them in place, and a bake never commits them.
const NodeFilesPath = agent.Root + "/node"

// The node files, as a mounted node sees them: the authorized keys, and
// in agent mode the host key, in OpenSSH mode the start script.
const (
	nodeHostKeyPath        = NodeFilesPath + "/ssh_host_ed25519_key"
	nodeAuthorizedKeysPath = NodeFilesPath + "/authorized_keys"
	nodeOpenSSHInitPath    = NodeFilesPath + "/openssh-init.sh"
)

// nodeFilesTTL is the age after which a directory of node files that no
// container mounts is removed: its container was removed outside
// skyward. Younger ones may belong to a node being created.
const nodeFilesTTL = 24 * time.Hour

// mountedEntrypoint starts the mounted agent binary as PID 1, which links
// it at AgentPath (with its sha256, sum) before serving SSH with the node
// files; id is the container's own (see agent.LinkBinary); see entrypoint.
func mountedEntrypoint(sum, id string, ttl time.Duration) []string {
	e := []string{
		SeedPath, "agent", "sshd",
		"-listen=:22",
		"-host-key=" + nodeHostKeyPath,
		"-authorized-keys=" + nodeAuthorizedKeysPath,
		"-link=" + AgentPath,
		"-link-sum=" + sum,
		"-link-id=" + id,
	}
	if ttl > 0 {
		e = append(e, "-ttl="+ttl.String())
	}
	return e
}

// newLinkID returns a new container's id for agent.LinkBinary.
func newLinkID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// nodeFilesBase holds the node files of every engine, beside the seeds.
func nodeFilesBase() (string, error) {
	seeds, err := seedDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(seeds), "nodes"), nil
}

// nodeFilesRoot holds the node files of this provider's engine: one
// directory per lineage, one in it per container.
func (p *Provider) nodeFilesRoot() (string, error) {
	base, err := nodeFilesBase()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, p.binary), nil
}

// nodeFilesDir is the directory of the files of the container called
// name, of lineage.
func (p *Provider) nodeFilesDir(lineage, name string) (string, error) {
	if lineage == "" || name == "" || filepath.Base(lineage) != lineage || filepath.Base(name) != name {
		return "", fmt.Errorf("node files: bad lineage %q or container name %q", lineage, name)
	}
	root, err := p.nodeFilesRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, lineage, name), nil
}

// writeNodeFilesDir writes the files of a node of mode into dir, readable
// by its owner only: the nodes' root reads them as the engine's root (or,
// rootless, as this user).
func writeNodeFilesDir(dir, mode string, spec *providers.NodeSpec) error {
	// A prune elsewhere may remove the lineage's empty directory between
	// the steps of MkdirAll: try again.
	err := os.MkdirAll(dir, 0o700)
	for i := 0; errors.Is(err, fs.ErrNotExist) && i < 3; i++ {
		err = os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return fmt.Errorf("node files: %w", err)
	}
	files := map[string][]byte{nodeAuthorizedKeysPath: []byte(spec.AuthorizedKey + "\n")}
	if mode == ModeOpenSSH {
		files[nodeOpenSSHInitPath] = []byte(openSSHInit)
	} else {
		files[nodeHostKeyPath] = spec.HostKey
	}
	for name, data := range files {
		path := filepath.Join(dir, filepath.Base(name))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return fmt.Errorf("node files: %w", err)
		}
		// An existing file (a create tried again) keeps its mode otherwise.
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("node files: %w", err)
		}
	}
	return nil
}

// removeNodeFiles removes the files of the container called name, of
// lineage. The lineage's directory stays (another node of it may be
// being created); pruneNodeFiles removes it once it has been empty for a
// while.
func (p *Provider) removeNodeFiles(lineage, name string) error {
	dir, err := p.nodeFilesDir(lineage, name)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("node files: %w", err)
	}
	return nil
}

// pruneNodeFiles removes the node files under root older than
// nodeFilesTTL before now that no container mounts (inUse: mount
// sources). When inUse fails, nothing is removed.
func pruneNodeFiles(root string, now time.Time, inUse func() (map[string]bool, error)) {
	lineages, err := os.ReadDir(root)
	if err != nil {
		return
	}
	var stale []string
	for _, l := range lineages {
		if !l.IsDir() {
			continue
		}
		nodes, err := os.ReadDir(filepath.Join(root, l.Name()))
		if err != nil {
			continue
		}
		if fi, err := l.Info(); err == nil && len(nodes) == 0 && now.Sub(fi.ModTime()) > nodeFilesTTL {
			_ = os.Remove(filepath.Join(root, l.Name()))
		}
		for _, n := range nodes {
			if fi, err := n.Info(); err == nil && n.IsDir() && now.Sub(fi.ModTime()) > nodeFilesTTL {
				stale = append(stale, filepath.Join(root, l.Name(), n.Name()))
			}
		}
	}
	if len(stale) == 0 {
		return
	}
	mounted, err := inUse()
	if err != nil {
		return
	}
	for _, dir := range stale {
		if !mounted[dir] {
			os.RemoveAll(dir)
		}
	}
}
