package container

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"

	"github.com/skyward-sh/skyward/providers"
)

// Set up by TestMain for the tests that need Podman.
var (
	podmanCli *client.Client // the tests' own view of the Podman service
	podmanErr error          // why Podman cannot be used, if it cannot
)

// setUpPodman reaches the Podman service of this user (starting it as the
// provider would) and checks that it has the base image.
func setUpPodman() error {
	p, err := New(Config{Binary: RuntimePodman})
	if err != nil {
		return err
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Check(ctx); err != nil {
		return err
	}
	cli, err := client.NewClientWithOpts(client.WithHost(p.Endpoint()), client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	if baseImage == "" {
		cli.Close()
		return fmt.Errorf("no base image to load into Podman")
	}
	if _, err := cli.ImageInspect(ctx, baseImage); err != nil {
		cli.Close()
		return fmt.Errorf("base image %s is not in Podman (load it with testdata/mkbaseimage.sh --podman): %w", baseImage, err)
	}
	podmanCli = cli
	return nil
}

// needPodman fails the test in CI and skips it elsewhere when Podman or
// the base image in it is missing.
func needPodman(t testing.TB) {
	t.Helper()
	needDocker(t) // the base image comes from Docker
	if podmanErr == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("Podman is required in CI: %v", podmanErr)
	}
	t.Skipf("Podman not usable: %v", podmanErr)
}

// cleanupPodmanLineage removes every container and network of lineage
// from Podman when the test ends.
func cleanupPodmanLineage(t testing.TB, lineage string) { cleanupLineageOn(t, podmanCli, lineage) }

// TestPodmanConformance runs the provider suite on Podman in both node
// modes.
func TestPodmanConformance(t *testing.T) {
	needPodman(t)
	runConformance(t, RuntimePodman, podmanCli)
}

// TestPodmanPipeline takes a pool through apply, run and destroy on
// Podman in both node modes.
func TestPodmanPipeline(t *testing.T) {
	needPodman(t)
	runPipeline(t, cty.StringVal(RuntimePodman))
}

func newPodmanEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	needPodman(t)
	cfg.Binary = RuntimePodman
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
	cleanupPodmanLineage(t, e.lineage)
	return e
}

// TestPodmanNode checks what a node is on Podman: labels, CPU and memory
// limits, the host's process limits, SSH published on 127.0.0.1 only, a
// private address on the pool's network; then an update of its limits
// and a bake.
func TestPodmanNode(t *testing.T) {
	t.Parallel()
	e := newPodmanEnv(t, Config{})
	ctx := context.Background()
	if err := e.p.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if rt := e.p.Runtime(); !strings.HasPrefix(rt, "Podman 4.") || !strings.Contains(rt, e.p.Endpoint()) {
		t.Errorf("Runtime() = %q, want Podman 4.x at %s", rt, e.p.Endpoint())
	}
	pool := e.create(e.poolResource("dev"))
	n, err := podmanCli.NetworkInspect(ctx, pool.ID, network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Labels[providers.LabelLineage] != e.lineage || n.Labels[providers.LabelManaged] != "true" {
		t.Errorf("network labels %v", n.Labels)
	}
	r := e.nodeResource("dev", 0, pool, 1, 0.5)
	o := e.create(r)
	if !o.Running || net.ParseIP(o.PrivateIP) == nil {
		t.Errorf("object = %+v", o)
	}
	c, err := podmanCli.ContainerInspect(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.Labels {
		if c.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Config.Labels[k], v)
		}
	}
	if c.HostConfig.NanoCPUs != 1e9 || c.HostConfig.Memory != 512<<20 {
		t.Errorf("NanoCPUs %d Memory %d", c.HostConfig.NanoCPUs, c.HostConfig.Memory)
	}
	// Podman names the limits as the kernel does (RLIMIT_NOFILE).
	got := map[string]string{}
	for _, u := range c.HostConfig.Ulimits {
		got[strings.ToLower(strings.TrimPrefix(u.Name, "RLIMIT_"))] = fmt.Sprintf("%d:%d", u.Soft, u.Hard)
	}
	want := map[string]string{}
	for _, u := range hostUlimits() {
		want[u.Name] = fmt.Sprintf("%d:%d", u.Soft, u.Hard)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ulimits (-want +got):\n%s", diff)
	}
	checkEndpoint(t, o, c.NetworkSettings.Ports["22/tcp"])
	// The limits as the node's processes see them.
	out := podmanExec(t, o.ID, "ulimit -n; ulimit -Hn; cat /proc/self/limits | grep 'Max processes'")
	if f := strings.Fields(out); len(f) < 6 || f[0]+":"+f[1] != want["nofile"] || f[4]+":"+f[5] != want["nproc"] {
		t.Errorf("limits in the node:\n%s\nwant nofile %s, nproc %s", out, want["nofile"], want["nproc"])
	}

	t.Run("update", func(t *testing.T) {
		r.Node.VCPUs, r.Node.MemoryGB = 0.5, 0.75
		if _, err := e.p.Update(ctx, o, r); err != nil {
			t.Fatal(err)
		}
		// cgroup v1 or v2, whichever the host has.
		out := podmanExec(t, o.ID, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max")
		if f := strings.Fields(out); len(f) < 2 || f[0] != strconv.Itoa(768<<20) || f[1] != "50000" {
			t.Errorf("cgroup limits after update: %q, want memory %d and a quota of 50000", out, 768<<20)
		}
	})

	t.Run("bake", func(t *testing.T) {
		ref, err := e.p.Bake(ctx, o, "recipe-"+e.lineage)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if _, err := podmanCli.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true}); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
		got, ok, err := e.p.BakedImage(ctx, "recipe-"+e.lineage)
		if err != nil || !ok || !strings.HasSuffix(got, ref) {
			t.Fatalf("BakedImage = %q, %v, %v; want %s", got, ok, err, ref)
		}
		img, err := podmanCli.ImageInspect(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		if img.Config == nil || img.Config.Labels[LabelBake] == "" || !slices.ContainsFunc(img.Config.Env, func(s string) bool { return strings.HasPrefix(s, "PATH=") }) {
			t.Errorf("baked image config %+v: want the bake label and the base image's PATH", img.Config)
		}
		// The node's keys (mounted, so never part of a commit) are still
		// there after it, and the image holds none of them.
		podmanExec(t, o.ID, "test -s "+nodeHostKeyPath+" && test -s "+nodeAuthorizedKeysPath)
		var nofile syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile); err != nil {
			t.Fatal(err)
		}
		// The limits skyward gives Podman's nodes: its defaults fail here.
		if out, err := exec.Command("podman", "run", "--rm", "--ulimit", fmt.Sprintf("nofile=%d:%d", nofile.Cur, nofile.Max), "--ulimit", "nproc=2048:2048",
			"--entrypoint", "/bin/sh", ref, "-c",
			"ls -A "+NodeFilesPath+" 2>/dev/null; ls "+HostKeyPath+" "+AuthorizedKeysPath+" 2>/dev/null; true").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("the baked image holds node keys: %q (%v)", out, err)
		}
	})
}

// TestPodmanSharedNetwork: pools of two states share a named network on
// Podman, which goes with its last node.
func TestPodmanSharedNetwork(t *testing.T) {
	t.Parallel()
	needPodman(t)
	testSharedNetwork(t, podmanCli, newPodmanEnv)
}

// podmanExec runs a shell script in a container through the podman CLI and
// returns its output; it fails the test when the script fails.
func podmanExec(t *testing.T, id, script string) string {
	t.Helper()
	out, err := exec.Command("podman", "exec", id, "/bin/sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("podman exec %s: %v\n%s", script, err, out)
	}
	return string(out)
}

// TestPodmanStartsService checks that Check starts a Podman service on a
// socket where none listens, and that the service then serves.
func TestPodmanStartsService(t *testing.T) {
	needPodman(t)
	dir, err := os.MkdirTemp("", "skyward-podman-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	endpoint := "unix://" + dir + "/podman.sock"
	t.Setenv("CONTAINER_HOST", endpoint)
	p, err := New(Config{Binary: RuntimePodman})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	t.Cleanup(func() { stopService(t, endpoint) })
	if err := p.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rt := p.Runtime(); !strings.HasPrefix(rt, "Podman 4.") || !strings.HasSuffix(rt, " at "+endpoint) {
		t.Errorf("Runtime() = %q, want Podman 4.x at %s", rt, endpoint)
	}
	if _, err := os.Stat(dir + "/podman-service.log"); err != nil {
		t.Errorf("the service's log: %v", err)
	}
	// A second Check finds it running.
	if err := p.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// stopService ends the podman service this test started on endpoint,
// found by its command line, which names the test's own socket.
func stopService(t *testing.T, endpoint string) {
	procs, _ := os.ReadDir("/proc")
	for _, d := range procs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmdline), "system\x00service\x00--time=0\x00"+endpoint+"\x00") {
			continue
		}
		proc, err := os.FindProcess(pid)
		if err == nil {
			err = proc.Signal(syscall.SIGTERM)
		}
		if err != nil {
			t.Errorf("stop the podman service %d: %v", pid, err)
		}
		return
	}
	t.Errorf("no podman service on %s to stop", endpoint)
}

// TestPodmanNotInstalled checks the message when no service answers and
// podman is not on PATH, and when a service that skyward cannot start is
// down.
func TestPodmanNotInstalled(t *testing.T) {
	tests := map[string]struct {
		host     string
		noPath   bool
		fakePath bool // a podman on PATH that does nothing
		want     []string
	}{
		"no socket, no binary": {noPath: true, host: "unix://" + t.TempDir() + "/podman.sock",
			want: []string{`binary "podman" is not installed (not found on PATH) and no Podman service answers at unix://`, "apt-get install podman"}},
		"tcp service down": {host: "tcp://127.0.0.1:1", fakePath: true,
			want: []string{"cannot reach the Podman service at tcp://127.0.0.1:1: ", "connection refused", "podman system service --time=0 tcp://127.0.0.1:1"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv("CONTAINER_HOST", tc.host)
			if tc.noPath {
				t.Setenv("PATH", t.TempDir())
			}
			if tc.fakePath {
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "podman"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
					t.Fatal(err)
				}
				t.Setenv("PATH", dir)
			}
			p, err := New(Config{Binary: RuntimePodman})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			err = p.Check(context.Background())
			if err == nil {
				t.Fatal("Check succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

// TestPodmanRlimitRefused asks Podman for a file limit above this host's
// hard limit: on a host that does not let it be raised (this project's
// machines) the start fails with one line saying what to change, and no
// container is left; on one that does, the node gets that limit.
func TestPodmanRlimitRefused(t *testing.T) {
	t.Parallel()
	e := newPodmanEnv(t, Config{})
	e.p.ulimits = []*container.Ulimit{{Name: "nofile", Soft: maxNofile, Hard: maxNofile}, {Name: "nproc", Soft: minNproc, Hard: minNproc}}
	ctx := context.Background()
	pool := e.create(e.poolResource("dev"))
	o, err := e.p.Create(ctx, e.nodeResource("dev", 0, pool, 0, 0))
	if err == nil {
		if o, err = e.p.Wait(ctx, o); err != nil {
			t.Fatal(err)
		}
		if out := podmanExec(t, o.ID, "ulimit -n"); strings.TrimSpace(out) != strconv.Itoa(maxNofile) {
			t.Errorf("the host granted nofile=%d, but the node has %s", maxNofile, out)
		}
		return
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{"the Podman service may not set the container's resource limits to nofile=1048576:1048576 nproc=256:256 (from skyward's own limits) on this host: ",
		"error setting rlimit", "lower skyward's limits (ulimit -n, ulimit -u)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	cs, err := podmanCli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", providers.LabelLineage+"="+e.lineage))})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Errorf("%d containers left after the refused start", len(cs))
	}
}
