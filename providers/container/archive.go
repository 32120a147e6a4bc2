package container

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/skyward-sh/skyward/agent"
	"github.com/skyward-sh/skyward/providers"
)

// writeNodeFiles writes the tar archive that CopyToContainer unpacks at "/"
// before a node starts: the agent binary and its sha256, the SSH host key
// and the authorized key, owned by root. A node whose binary is mounted
// instead (SeedPath) gets no archive: its files are mounted too
// (NodeFilesPath).
func writeNodeFiles(w io.Writer, spec *providers.NodeSpec) error {
	now := time.Now()
	tw := tar.NewWriter(w)
	for _, d := range []string{"opt/skyward/", "opt/skyward/bin/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: now}); err != nil {
			return err
		}
	}
	sum, err := writeBinary(tw, spec.AgentBinary, now)
	if err != nil {
		return err
	}
	files := []struct {
		path string
		data []byte
	}{
		{agent.BinarySumPath[1:], []byte(sum + "\n")},
		{HostKeyPath[1:], spec.HostKey},
		{AuthorizedKeysPath[1:], []byte(spec.AuthorizedKey + "\n")},
	}
	for _, file := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: file.path, Mode: 0o600, Size: int64(len(file.data)), ModTime: now}); err != nil {
			return err
		}
		if _, err := tw.Write(file.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// writeBinary writes the agent binary at bin into tw as AgentPath and
// returns its sha256.
func writeBinary(tw *tar.Writer, bin string, now time.Time) (string, error) {
	f, err := os.Open(bin)
	if err != nil {
		return "", fmt.Errorf("agent binary: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("agent binary: %w", err)
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: AgentPath[1:], Mode: 0o755, Size: fi.Size(), ModTime: now}); err != nil {
		return "", err
	}
	if n, err := io.Copy(tw, f); err != nil {
		return "", fmt.Errorf("agent binary: %w", err)
	} else if n != fi.Size() {
		return "", fmt.Errorf("agent binary %s changed size while being copied", bin)
	}
	sum, err := agent.FileSum(bin)
	if err != nil {
		return "", fmt.Errorf("agent binary: %w", err)
	}
	return sum, nil
}

// writeOpenSSHFiles writes the tar archive a ModeOpenSSH node starts with:
// its start script and the pool's authorized key. The agent binary comes
// later, over SSH, as on a cloud VM; no host key is copied.
func writeOpenSSHFiles(w io.Writer, spec *providers.NodeSpec) error {
	now := time.Now()
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "opt/skyward/", Mode: 0o755, ModTime: now}); err != nil {
		return err
	}
	files := []struct {
		path string
		mode int64
		data []byte
	}{
		{OpenSSHInitPath[1:], 0o700, []byte(openSSHInit)},
		{AuthorizedKeysPath[1:], 0o600, []byte(spec.AuthorizedKey + "\n")},
	}
	for _, file := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: file.path, Mode: file.mode, Size: int64(len(file.data)), ModTime: now}); err != nil {
			return err
		}
		if _, err := tw.Write(file.data); err != nil {
			return err
		}
	}
	return tw.Close()
}
