package agent

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// maxSetup bounds what SetupFromArchive reads: a node's files are keys,
// a link and a sum, never the binary.
const maxSetup = 1 << 20

// SetupFromArchive writes the node files in the tar archive r under root:
// directories, regular files and symbolic links below opt/skyward/ only,
// each file written whole (through a temporary name) with the archive's
// mode. It is how the container provider hands a node its host key,
// authorized keys and agent link on its standard input, when copying them
// into the container would cost a mount of its file system.
func SetupFromArchive(root string, r io.Reader) error {
	tr := tar.NewReader(io.LimitReader(r, maxSetup))
	n := 0
	var links []string // nothing is written through a link of the archive
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("node files: %w", err)
		}
		name := path.Clean(h.Name)
		if !strings.HasPrefix(name, "opt/skyward/") && name != "opt/skyward" {
			return fmt.Errorf("node files: %q is not under /opt/skyward", h.Name)
		}
		for _, l := range links {
			if strings.HasPrefix(name, l+"/") {
				return fmt.Errorf("node files: %q lies below the link %q", h.Name, l)
			}
		}
		dst := filepath.Join(root, filepath.FromSlash(name))
		mode := os.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, mode); err != nil {
				return fmt.Errorf("node files: %w", err)
			}
		case tar.TypeReg:
			if err := writeWhole(dst, tr, mode); err != nil {
				return fmt.Errorf("node files: %s: %w", name, err)
			}
		case tar.TypeSymlink:
			os.Remove(dst)
			if err := os.Symlink(h.Linkname, dst); err != nil {
				return fmt.Errorf("node files: %w", err)
			}
			links = append(links, name)
		default:
			return fmt.Errorf("node files: %q has an unsupported type %q", h.Name, h.Typeflag)
		}
		n++
	}
	if n == 0 {
		return errors.New("node files: the archive is empty")
	}
	return nil
}

// writeWhole writes r to path through a temporary file in its directory.
func writeWhole(path string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".setup-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
