package container

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"golang.org/x/crypto/ssh"

	"github.com/skyward-sh/skyward/internal/dockertest"
	"github.com/skyward-sh/skyward/providers"
)

// Set up by TestMain for the tests that need Docker.
var (
	agentBinary string         // static fake agent
	baseImage   string         // skyward-test-base:*
	dockerCli   *client.Client // the tests' own view of the daemon
	dockerErr   error          // why Docker cannot be used, if it cannot
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "skyward-fakeagent-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	agentBinary = filepath.Join(dir, "skyward")
	build := exec.Command("go", "build", "-o", agentBinary, "./testdata/fakeagent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the fake agent: %v\n%s", err, out)
		return 1
	}
	dockerErr = setUpDocker()
	podmanErr = setUpPodman()
	code := m.Run()
	if dockerCli != nil {
		dockerCli.Close()
	}
	if podmanCli != nil {
		podmanCli.Close()
	}
	return code
}

func setUpDocker() error {
	var err error
	dockerCli, baseImage, err = dockertest.Connect()
	return err
}

// needDocker fails the test in CI and skips it elsewhere when Docker or the
// test base image is missing.
func needDocker(t testing.TB) {
	t.Helper()
	dockertest.Require(t, dockerErr)
}

// env is one test's view: a provider, a lineage of its own and cleanup of
// everything labelled with that lineage.
type env struct {
	t       testing.TB
	p       *Provider
	lineage string
	hostKey []byte
	pubKey  string
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	needDocker(t)
	if cfg.Image == "" {
		cfg.Image = baseImage
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	e := &env{t: t, p: p, lineage: newLineage(t)}
	e.hostKey, e.pubKey = newKeys(t)
	cleanupLineage(t, e.lineage)
	return e
}

func newLineage(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// cleanupLineage removes every container and network of lineage when the
// test ends.
func cleanupLineage(t testing.TB, lineage string) { cleanupLineageOn(t, dockerCli, lineage) }

// cleanupLineageOn removes every container and network of lineage from
// the engine cli when the test ends.
func cleanupLineageOn(t testing.TB, cli *client.Client, lineage string) {
	t.Cleanup(func() {
		ctx := context.Background()
		f := filters.NewArgs(filters.Arg("label", providers.LabelLineage+"="+lineage))
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, c := range cs {
			if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, n := range ns {
			if err := cli.NetworkRemove(ctx, n.ID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		// The node files of the containers removed above.
		base, err := nodeFilesBase()
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		dirs, _ := filepath.Glob(filepath.Join(base, "*", lineage))
		for _, d := range dirs {
			if err := os.RemoveAll(d); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
}

func newKeys(t testing.TB) ([]byte, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
}

func (e *env) labels(addr string) map[string]string {
	return map[string]string{
		providers.LabelManaged: "true",
		providers.LabelLineage: e.lineage,
		providers.LabelAddress: addr,
		"skyward.test":         strings.ReplaceAll(e.t.Name(), "/", "_"),
	}
}

func (e *env) poolResource(pool string) providers.Resource {
	addr := providers.PoolAddress(pool)
	return providers.Resource{Kind: providers.KindPool, Address: addr, Pool: pool, Index: -1, Lineage: e.lineage, Labels: e.labels(addr)}
}

func (e *env) nodeResource(pool string, index int, poolObj providers.Object, vcpus, memGB float64) providers.Resource {
	addr := providers.NodeAddress(pool, index)
	return providers.Resource{
		Kind: providers.KindNode, Address: addr, Pool: pool, Index: index, Lineage: e.lineage,
		Labels: e.labels(addr), PoolObject: &poolObj,
		Node: &providers.NodeSpec{
			Hostname:      fmt.Sprintf("%s-%d", pool, index),
			VCPUs:         vcpus,
			MemoryGB:      memGB,
			AuthorizedKey: e.pubKey,
			HostKey:       e.hostKey,
			AgentBinary:   agentBinary,
		},
	}
}

func (e *env) create(r providers.Resource) providers.Object {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o, err := e.p.Create(ctx, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if r.Kind == providers.KindNode {
		if o, err = e.p.Wait(ctx, o); err != nil {
			e.t.Fatal(err)
		}
	}
	return o
}
