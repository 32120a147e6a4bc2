// Package dockertest connects tests to the Docker daemon and finds the
// test base image (testdata/mkbaseimage.sh) for the tests that run real
// containers. A test that needs them fails when CI is set and skips
// elsewhere.
package dockertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// ImageRepo is the repository of the test base image.
const ImageRepo = "skyward-test-base"

// Connect returns a client of the Docker daemon (DOCKER_HOST) once it
// answers, and the test base image: SKYWARD_TEST_IMAGE, else the newest
// skyward-test-base:* image. The client is returned with the error when
// only the image is missing.
func Connect() (*client.Client, string, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		return nil, "", fmt.Errorf("docker daemon at %s: %w", cli.DaemonHost(), err)
	}
	if tag := os.Getenv("SKYWARD_TEST_IMAGE"); tag != "" {
		if _, err := cli.ImageInspect(ctx, tag); err != nil {
			return cli, "", fmt.Errorf("SKYWARD_TEST_IMAGE %s: %w", tag, err)
		}
		return cli, tag, nil
	}
	imgs, err := cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", ImageRepo))})
	if err != nil {
		return cli, "", err
	}
	sort.Slice(imgs, func(i, j int) bool { return imgs[i].Created > imgs[j].Created })
	for _, img := range imgs {
		for _, tag := range img.RepoTags {
			if strings.HasPrefix(tag, ImageRepo+":") {
				return cli, tag, nil
			}
		}
	}
	return cli, "", fmt.Errorf("no %s image; build it with testdata/mkbaseimage.sh", ImageRepo)
}

// Require fails t when CI is set, and skips it elsewhere, if err (from
// Connect) says Docker or the base image cannot be used.
func Require(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("Docker is required in CI: %v", err)
	}
	t.Skipf("Docker not usable: %v", err)
}

var (
	agentOnce sync.Once
	agentPath string
	agentErr  error
)

// AgentBinary returns the static skyward binary that tests put on nodes:
// SKYWARD_AGENT_BINARY (make test sets it), else one built once for the
// test process.
func AgentBinary(t testing.TB) string {
	t.Helper()
	agentOnce.Do(func() {
		if p := os.Getenv("SKYWARD_AGENT_BINARY"); p != "" {
			agentPath = p
			return
		}
		dir, err := os.MkdirTemp("", "skyward-agent-")
		if err != nil {
			agentErr = err
			return
		}
		agentPath = filepath.Join(dir, "skyward")
		build := exec.Command("go", "build", "-o", agentPath, "github.com/skyward-sh/skyward")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			agentErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if agentErr != nil {
		t.Fatalf("build the agent binary: %v", agentErr)
	}
	return agentPath
}
