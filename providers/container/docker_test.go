package container

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/crypto/ssh"

	"github.com/skyward-sh/skyward/providers"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	if err := e.p.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestCheckUnreachable(t *testing.T) {
	t.Parallel()
	p, err := New(Config{}, WithEndpoint("tcp://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	err = p.Check(context.Background())
	if err == nil {
		t.Fatal("Check succeeded against tcp://127.0.0.1:1")
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{"cannot reach the Docker daemon at tcp://127.0.0.1:1: ", "connection refused", "is it running?"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
}

func TestPoolNetwork(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	ctx := context.Background()
	r := e.poolResource("dev")
	o := e.create(r)

	wantName := "skyward-" + e.lineage[:8] + "-dev"
	if diff := cmp.Diff(map[string]string{"network": wantName, "network_id": o.ID, "shared": "false"}, o.Private); diff != "" {
		t.Errorf("attrs (-want +got):\n%s", diff)
	}
	if o.Kind != providers.KindPool || o.Address != "pool.dev" || o.Lineage != e.lineage {
		t.Errorf("object = %+v", o)
	}
	n, err := dockerCli.NetworkInspect(ctx, o.ID, network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Name != wantName || n.Driver != "bridge" {
		t.Errorf("network %s driver %s", n.Name, n.Driver)
	}
	for k, v := range r.Labels {
		if n.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, n.Labels[k], v)
		}
	}

	// A second create (state lost after the first) adopts the network.
	again := e.create(r)
	if again.ID != o.ID {
		t.Errorf("second create made network %s, want adoption of %s", again.ID, o.ID)
	}

	got, err := e.p.Read(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(o, got); diff != "" {
		t.Errorf("read (-create +read):\n%s", diff)
	}
	list, err := e.p.List(ctx, e.lineage)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]providers.Object{o}, list); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}

	for range 2 {
		if err := e.p.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.p.Read(ctx, o); !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("read after delete: %v, want ErrNotFound", err)
	}
}

func TestNodeCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	ctx := context.Background()
	pool := e.create(e.poolResource("dev"))
	r := e.nodeResource("dev", 0, pool, 1, 0.5)
	o := e.create(r)

	if !o.Running || o.Address != "pool.dev.node[0]" || o.Lineage != e.lineage || o.Kind != providers.KindNode {
		t.Errorf("object = %+v", o)
	}
	name := "skyward-" + e.lineage[:8] + "-dev-0"
	if o.Private["name"] != name || o.Private["network"] != pool.Private["network"] ||
		o.SSH.User != "root" || net.ParseIP(o.PrivateIP) == nil {
		t.Errorf("object = %+v", o)
	}
	if diff := cmp.Diff(map[string]string{"vcpus": "1", "memory_gb": "0.5", "base_image": baseImage}, o.Spec); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}

	c, err := dockerCli.ContainerInspect(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.HostConfig.NanoCPUs != 1e9 || c.HostConfig.Memory != 512<<20 || c.HostConfig.MemorySwap != 512<<20 {
		t.Errorf("NanoCPUs %d Memory %d MemorySwap %d", c.HostConfig.NanoCPUs, c.HostConfig.Memory, c.HostConfig.MemorySwap)
	}
	if c.Config.Hostname != "dev-0" {
		t.Errorf("hostname %q", c.Config.Hostname)
	}
	if c.HostConfig.Init != nil && *c.HostConfig.Init {
		t.Error("init is on; the agent is PID 1")
	}
	if len(c.Config.Cmd) != 0 {
		t.Errorf("cmd = %q", c.Config.Cmd)
	}
	wantLabels := e.labels(r.Address)
	wantLabels["skyward.pool"] = "dev"
	wantLabels["skyward.index"] = "0"
	for k, v := range wantLabels {
		if c.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Config.Labels[k], v)
		}
	}
	for k, v := range c.Config.Labels {
		if strings.Contains(v, "PRIVATE KEY") || strings.Contains(v, "ssh-ed25519") {
			t.Errorf("label %s carries a key", k)
		}
	}
	for _, v := range c.Config.Env {
		if strings.Contains(v, "PRIVATE KEY") || strings.Contains(v, "ssh-ed25519") {
			t.Errorf("env %q carries a key", v)
		}
	}
	checkEndpoint(t, o, c.NetworkSettings.Ports["22/tcp"])
	if ep := c.NetworkSettings.Networks[pool.Private["network"]]; ep == nil || ep.IPAddress != o.PrivateIP {
		t.Errorf("endpoint on %s = %+v", pool.Private["network"], ep)
	}

	t.Run("files", func(t *testing.T) {
		agent, err := os.ReadFile(agentBinary)
		if err != nil {
			t.Fatal(err)
		}
		sum := fmt.Sprintf("%x", sha256.Sum256(agent))
		// The binary is mounted read-only from a seed named by its
		// sha256, which PID 1 links where nodes look for it; the node's
		// keys are mounted read-only from a directory of its own.
		files, err := e.p.nodeFilesDir(e.lineage, name)
		if err != nil {
			t.Fatal(err)
		}
		wantBinds := []string{files + ":" + NodeFilesPath + ":ro", "/" + sum + "/skyward:" + SeedPath + ":ro"}
		if len(c.HostConfig.Binds) != 2 || c.HostConfig.Binds[0] != wantBinds[0] || !strings.HasSuffix(c.HostConfig.Binds[1], wantBinds[1]) {
			t.Errorf("binds = %q, want %s and the seed of the agent binary at %s", c.HostConfig.Binds, wantBinds[0], SeedPath)
		}
		var id string
		for _, a := range c.Config.Entrypoint {
			if v, ok := strings.CutPrefix(a, "-link-id="); ok {
				id = v
			}
		}
		if len(id) != 16 {
			t.Errorf("link id %q, want 16 hex digits of the container's own", id)
		}
		if diff := cmp.Diff(mountedEntrypoint(sum, id, 0), []string(c.Config.Entrypoint)); diff != "" {
			t.Errorf("entrypoint (-want +got):\n%s", diff)
		}
		checkFiles(t, o.ID, map[string]wantFile{
			"skyward/":                          {0o755, ""},
			"skyward/seed/":                     {0o755, ""},
			"skyward/seed/skyward":              {0o755, string(agent)},
			"skyward/node/":                     {0o700, ""},
			"skyward/node/ssh_host_ed25519_key": {0o600, string(e.hostKey)},
			"skyward/node/authorized_keys":      {0o600, e.pubKey + "\n"},
		})
		if fi, err := os.Stat(files); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("node files on this machine: %v (%v), want a directory only its owner reads", fi, err)
		}
	})

	t.Run("banner", func(t *testing.T) {
		if got := readBanner(t, sshAddr(o)); got != "SSH-2.0-fake" {
			t.Errorf("banner %q", got)
		}
	})

	t.Run("alias", func(t *testing.T) {
		// Another container on the pool network resolves the hostname.
		code := runOnNetwork(t, pool.Private["network"], e.labels("probe"), "getent", "hosts", "dev-0")
		if code != 0 {
			t.Errorf("getent hosts dev-0 exited %d", code)
		}
	})

	t.Run("read", func(t *testing.T) {
		got, err := e.p.Read(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(o, got); diff != "" {
			t.Errorf("read (-create +read):\n%s", diff)
		}
	})

	t.Run("delete", func(t *testing.T) {
		files, err := e.p.nodeFilesDir(e.lineage, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.p.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(files); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("node files after delete: %v, want them removed", err)
		}
	})
}

// TestNodeCreateCopied: where the binary cannot be mounted (a remote
// engine, nerdctl, SKYWARD_CONTAINER_COPY_AGENT), it and the node's
// files are copied in before the start.
func TestNodeCreateCopied(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	e.p.copyAgent = true
	pool := e.create(e.poolResource("dev"))
	o := e.create(e.nodeResource("dev", 0, pool, 0, 0))
	c, err := dockerCli.ContainerInspect(context.Background(), o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.HostConfig.Binds) != 0 {
		t.Errorf("binds = %q, want none", c.HostConfig.Binds)
	}
	if diff := cmp.Diff(entrypoint(0), []string(c.Config.Entrypoint)); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}
	agent, err := os.ReadFile(agentBinary)
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, o.ID, map[string]wantFile{
		"skyward/":                     {0o755, ""},
		"skyward/bin/":                 {0o755, ""},
		"skyward/bin/skyward":          {0o755, string(agent)},
		"skyward/bin/skyward.sha256":   {0o600, fmt.Sprintf("%x\n", sha256.Sum256(agent))},
		"skyward/ssh_host_ed25519_key": {0o600, string(e.hostKey)},
		"skyward/authorized_keys":      {0o600, e.pubKey + "\n"},
	})
	if got := readBanner(t, sshAddr(o)); got != "SSH-2.0-fake" {
		t.Errorf("banner %q", got)
	}
}

type wantFile struct {
	mode int64
	data string // a link's target
}

// checkFiles compares /opt/skyward in the container id, owners included,
// with want (paths relative to /opt).
func checkFiles(t *testing.T, id string, want map[string]wantFile) {
	t.Helper()
	rc, _, err := dockerCli.CopyFromContainer(context.Background(), id, "/opt/skyward")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	seen := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		w, ok := want[h.Name]
		if !ok {
			t.Errorf("unexpected file %s", h.Name)
			continue
		}
		seen++
		if h.Mode&0o7777 != w.mode || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: mode %o owner %d:%d, want %o root", h.Name, h.Mode&0o7777, h.Uid, h.Gid, w.mode)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			data, _ := io.ReadAll(tr)
			if string(data) != w.data {
				t.Errorf("%s: content differs (%d bytes, want %d)", h.Name, len(data), len(w.data))
			}
		case tar.TypeSymlink:
			if h.Linkname != w.data {
				t.Errorf("%s: links to %q, want %q", h.Name, h.Linkname, w.data)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("saw %d of %d files", seen, len(want))
	}
}

// readBanner reads the first line the node's SSH server at addr
// (host:port) sends, retrying until it answers.
func readBanner(t testing.TB, addr string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		line, err := tryBanner(addr)
		if err == nil {
			return line
		}
		if time.Now().After(deadline) {
			t.Fatalf("no banner on %s: %v", addr, err)
		}
		time.Sleep(time.Millisecond)
	}
}

func tryBanner(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

// sshAddr is the host:port of a node's SSH endpoint.
func sshAddr(o providers.Object) string {
	return net.JoinHostPort(o.SSH.Host, strconv.Itoa(o.SSH.Port))
}

// checkEndpoint checks a running node's SSH endpoint against its 22/tcp
// bindings: the port is published on 127.0.0.1 only, and the endpoint is
// that port, or the container's own address and port 22 where this
// machine reaches it (tried here: an answer, even a refusal, says it
// does).
func checkEndpoint(t testing.TB, o providers.Object, bindings []nat.PortBinding) {
	t.Helper()
	if len(bindings) != 1 || bindings[0].HostIP != "127.0.0.1" || bindings[0].HostPort == "" {
		t.Fatalf("22/tcp bindings = %+v, want one on 127.0.0.1", bindings)
	}
	port, _ := strconv.Atoi(bindings[0].HostPort)
	want := providers.SSHEndpoint{Host: "127.0.0.1", Port: port, User: o.SSH.User}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(o.PrivateIP, "22"), 2*time.Second)
	if err == nil {
		c.Close()
	}
	if err == nil || errors.Is(err, syscall.ECONNREFUSED) {
		want.Host, want.Port = o.PrivateIP, 22
	}
	if o.SSH != want {
		t.Errorf("SSH endpoint %+v, want %+v", o.SSH, want)
	}
}

// runOnNetwork runs cmd in a throwaway container of the base image on net
// and returns its exit code.
func runOnNetwork(t *testing.T, net string, labels map[string]string, cmd ...string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := dockerCli.ContainerCreate(ctx, &container.Config{Image: baseImage, Cmd: cmd, Labels: labels},
		&container.HostConfig{NetworkMode: container.NetworkMode(net)}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer dockerCli.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
	waitC, errC := dockerCli.ContainerWait(ctx, c.ID, container.WaitConditionNextExit)
	if err := dockerCli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-waitC:
		return w.StatusCode
	case err := <-errC:
		t.Fatal(err)
	}
	return -1
}

func TestNodeUpdate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	ctx := context.Background()
	pool := e.create(e.poolResource("dev"))
	o := e.create(e.nodeResource("dev", 0, pool, 1, 0.5))

	up, err := e.p.Update(ctx, o, e.nodeResource("dev", 0, pool, 2, 1))
	if err != nil {
		t.Fatal(err)
	}
	if up.ID != o.ID {
		t.Errorf("update replaced the container: %s -> %s", o.ID, up.ID)
	}
	c, err := dockerCli.ContainerInspect(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.HostConfig.NanoCPUs != 2e9 || c.HostConfig.Memory != 1<<30 || c.HostConfig.MemorySwap != 1<<30 {
		t.Errorf("NanoCPUs %d Memory %d MemorySwap %d", c.HostConfig.NanoCPUs, c.HostConfig.Memory, c.HostConfig.MemorySwap)
	}
	if up.Spec["vcpus"] != "2" || up.Spec["memory_gb"] != "1" {
		t.Errorf("spec %v", up.Spec)
	}

	// A stopped node is started again by Update.
	timeout := 0
	if err := dockerCli.ContainerStop(ctx, o.ID, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.p.Read(ctx, o); err != nil || got.Running {
		t.Fatalf("read of stopped node: running=%v err=%v", got.Running, err)
	}
	up, err = e.p.Update(ctx, o, e.nodeResource("dev", 0, pool, 2, 0.75))
	if err != nil {
		t.Fatal(err)
	}
	if !up.Running || up.ID != o.ID || up.Spec["memory_gb"] != "0.75" {
		t.Errorf("after update of stopped node: %+v", up)
	}
	if got := readBanner(t, sshAddr(up)); got != "SSH-2.0-fake" {
		t.Errorf("banner %q", got)
	}

	// Lifting a limit cannot be done in place.
	if _, err := e.p.Update(ctx, o, e.nodeResource("dev", 0, pool, 0, 0.75)); err == nil || !strings.Contains(err.Error(), "replace the node") {
		t.Errorf("update to no CPU limit: %v", err)
	}

	// Pool update is a no-op.
	if got, err := e.p.Update(ctx, pool, e.poolResource("dev")); err != nil || got.ID != pool.ID {
		t.Errorf("pool update: %+v, %v", got, err)
	}
}

func TestNodeRemovedByHand(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	ctx := context.Background()
	pool := e.create(e.poolResource("dev"))
	o := e.create(e.nodeResource("dev", 0, pool, 0, 0))
	if o.Spec["vcpus"] != "0" || o.Spec["memory_gb"] != "0" {
		t.Errorf("spec of unlimited node: %v", o.Spec)
	}
	if err := dockerCli.ContainerRemove(ctx, o.ID, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.Read(ctx, o); !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("read: %v, want ErrNotFound", err)
	}
	if _, err := e.p.Update(ctx, o, e.nodeResource("dev", 0, pool, 1, 1)); !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("update: %v, want ErrNotFound", err)
	}
	for range 2 {
		if err := e.p.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNodeDeleteTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	ctx := context.Background()
	pool := e.create(e.poolResource("dev"))
	o := e.create(e.nodeResource("dev", 0, pool, 0, 0))
	for range 2 {
		if err := e.p.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dockerCli.ContainerInspect(ctx, o.ID); err == nil {
		t.Error("container still exists")
	}
}

func TestCreateReplacesUnknownContainer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	ctx := context.Background()
	pool := e.create(e.poolResource("dev"))
	r := e.nodeResource("dev", 0, pool, 0, 0)
	first := e.create(r)
	// The state never recorded first: creating again replaces it.
	second := e.create(r)
	if second.ID == first.ID {
		t.Fatal("second create returned the same container")
	}
	if _, err := dockerCli.ContainerInspect(ctx, first.ID); err == nil {
		t.Error("the unknown container was left")
	}

	// A container of the same name that is not this node's is not touched.
	other := e.nodeResource("dev", 0, pool, 0, 0)
	other.Address = "pool.other.node[0]"
	other.Labels = e.labels(other.Address)
	if _, err := e.p.Create(ctx, other); err == nil || !strings.Contains(err.Error(), "not create") {
		t.Errorf("create over a foreign container: %v", err)
	}
	if _, err := dockerCli.ContainerInspect(ctx, second.ID); err != nil {
		t.Errorf("foreign container removed: %v", err)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	a := newEnv(t, Config{})
	b := newEnv(t, Config{})
	ctx := context.Background()

	poolA := a.create(a.poolResource("dev"))
	want := []providers.Object{poolA, a.create(a.nodeResource("dev", 0, poolA, 0, 0)), a.create(a.nodeResource("dev", 1, poolA, 0, 0))}
	poolB := b.create(b.poolResource("dev"))
	b.create(b.nodeResource("dev", 0, poolB, 0, 0))

	// Stopped nodes are listed too, not running.
	timeout := 0
	if err := dockerCli.ContainerStop(ctx, want[2].ID, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	want[2].Running = false
	want[2].PrivateIP = ""
	want[2].SSH = providers.SSHEndpoint{}
	for i := range want {
		if want[i].Kind == providers.KindNode {
			want[i].Spec = map[string]string{"base_image": baseImage}
		}
	}

	got, err := a.p.List(ctx, a.lineage)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Address < got[j].Address })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
}

func TestMissingImage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	ctx := context.Background()
	pool := e.create(e.poolResource("dev"))
	r := e.nodeResource("dev", 0, pool, 0, 0)
	r.Node.BaseImage = "127.0.0.1:1/skyward-test-missing:never"
	_, err := e.p.Create(ctx, r)
	if err == nil {
		t.Fatal("create with a missing image succeeded")
	}
	want := `create: base image "127.0.0.1:1/skyward-test-missing:never" is not present locally and could not be pulled: `
	t.Log(err)
	if !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "build or load it first (docker load, docker import, or testdata/mkbaseimage.sh for the test image)") {
		t.Errorf("error = %q", err)
	}
	cs, lerr := dockerCli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", providers.LabelLineage+"="+e.lineage))})
	if lerr != nil {
		t.Fatal(lerr)
	}
	if len(cs) != 0 {
		t.Errorf("%d containers left behind", len(cs))
	}
}

func TestSharedNetwork(t *testing.T) {
	t.Parallel()
	needDocker(t)
	testSharedNetwork(t, dockerCli, newEnv)
}

// testSharedNetwork checks a shared network on the engine cli reaches,
// with providers made by newE.
func testSharedNetwork(t *testing.T, cli *client.Client, newE func(testing.TB, Config) *env) {
	shared := "skyward-test-shared-" + newLineage(t)[:8]
	t.Cleanup(func() { cli.NetworkRemove(context.Background(), shared) })
	a := newE(t, Config{Network: shared})
	b := newE(t, Config{Network: shared})
	ctx := context.Background()

	// Pools created in parallel share one network.
	var poolA, poolX providers.Object
	var wg sync.WaitGroup
	var errA, errX error
	wg.Go(func() { poolA, errA = a.p.Create(ctx, a.poolResource("dev")) })
	wg.Go(func() { poolX, errX = a.p.Create(ctx, a.poolResource("x")) })
	wg.Wait()
	if errA != nil || errX != nil {
		t.Fatal(errA, errX)
	}
	if poolA.ID == "" || poolA.ID != poolX.ID {
		t.Fatalf("parallel pools on networks %q and %q", poolA.ID, poolX.ID)
	}
	poolB := b.create(b.poolResource("dev"))
	if poolA.ID != poolB.ID || poolA.Private["network"] != shared || poolA.Private["shared"] != "true" {
		t.Fatalf("pools %+v and %+v", poolA, poolB)
	}
	n, err := cli.NetworkInspect(ctx, poolA.ID, network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"skyward.managed": "true", "skyward.shared": "true"}, n.Labels); diff != "" {
		t.Errorf("shared network labels (-want +got):\n%s", diff)
	}
	node := a.create(a.nodeResource("dev", 0, poolA, 0, 0))
	if node.Private["network"] != shared {
		t.Errorf("node network %q", node.Private["network"])
	}
	list, err := a.p.List(ctx, a.lineage)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != node.ID {
		t.Errorf("list of lineage = %+v, want the node only", list)
	}

	// B goes first: A's node still uses the network.
	if err := b.p.Delete(ctx, poolB); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.NetworkInspect(ctx, shared, network.InspectOptions{}); err != nil {
		t.Fatalf("shared network removed while in use: %v", err)
	}
	// A stopped node also holds it.
	timeout := 0
	if err := cli.ContainerStop(ctx, node.ID, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	if err := b.p.Delete(ctx, poolB); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.NetworkInspect(ctx, shared, network.InspectOptions{}); err != nil {
		t.Fatalf("shared network removed while a stopped node is on it: %v", err)
	}
	if err := a.p.Delete(ctx, node); err != nil {
		t.Fatal(err)
	}
	if err := a.p.Delete(ctx, poolA); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.NetworkInspect(ctx, shared, network.InspectOptions{}); err == nil {
		t.Error("shared network left after its last node")
	}
}

func TestPoolDeleteRemovesAttachedNodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	ctx := context.Background()
	pool := e.create(e.poolResource("dev"))
	node := e.create(e.nodeResource("dev", 0, pool, 0, 0))
	if err := e.p.Delete(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := dockerCli.ContainerInspect(ctx, node.ID); err == nil {
		t.Error("node of the deleted pool left")
	}
	if _, err := e.p.Read(ctx, pool); !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("read: %v, want ErrNotFound", err)
	}
}

// BenchmarkCreateNode measures Create of one node (image check, create,
// copy of the agent and keys, start, inspect) and, in "ready", Create plus
// the wait for the node's SSH banner.
func BenchmarkCreateNode(b *testing.B) {
	e := newEnv(b, Config{})
	ctx := context.Background()
	pool := e.create(e.poolResource("bench"))
	r := e.nodeResource("bench", 0, pool, 1, 0.5)
	for _, ready := range []bool{false, true} {
		name := "create"
		if ready {
			name = "ready"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				o, err := e.p.Create(ctx, r)
				if err != nil {
					b.Fatal(err)
				}
				if ready {
					readBanner(b, sshAddr(o))
				}
				b.StopTimer()
				if err := e.p.Delete(ctx, o); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// An OpenSSH node gets its start script and the pool's key mounted from a
// directory of its own on an engine of this machine, copied in elsewhere;
// either way its user logs in with the key.
func TestOpenSSHNodeFiles(t *testing.T) {
	t.Parallel()
	for _, copied := range []bool{false, true} {
		t.Run(map[bool]string{false: "mounted", true: "copied"}[copied], func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Config{SSH: ModeOpenSSH, User: "ubuntu"})
			e.p.copyAgent = copied
			pool := e.create(e.poolResource("dev"))
			o := e.create(e.nodeResource("dev", 0, pool, 0, 0))
			ctx := context.Background()
			c, err := dockerCli.ContainerInspect(ctx, o.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(openSSHEntrypoint("ubuntu", 0, !copied), []string(c.Config.Entrypoint)); diff != "" {
				t.Errorf("entrypoint (-want +got):\n%s", diff)
			}
			files, err := e.p.nodeFilesDir(e.lineage, o.Private["name"])
			if err != nil {
				t.Fatal(err)
			}
			var wantBinds []string
			if !copied {
				// The uploaded binary's directory too, on this machine's disk.
				wantBinds = []string{files + ":" + NodeFilesPath + ":ro", filepath.Join(files, "bin") + ":" + path.Dir(AgentPath)}
			}
			if diff := cmp.Diff(wantBinds, c.HostConfig.Binds, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("binds (-want +got):\n%s", diff)
			}
			if !copied {
				if out, err := exec.Command("docker", "exec", o.ID, "sh", "-c", "echo upload > "+path.Dir(AgentPath)+"/x").CombinedOutput(); err != nil {
					t.Fatalf("write into %s: %v\n%s", path.Dir(AgentPath), err, out)
				}
				if got, err := os.ReadFile(filepath.Join(files, "bin", "x")); err != nil || string(got) != "upload\n" {
					t.Errorf("a file written to %s is %q (%v) on this machine", path.Dir(AgentPath), got, err)
				}
			}
			// Running, the node serves SSH once its start script is done.
			readBanner(t, sshAddr(o))
			out, err := exec.Command("docker", "exec", o.ID, "cat", "/home/ubuntu/.ssh/authorized_keys").CombinedOutput()
			if err != nil || string(out) != e.pubKey+"\n" {
				t.Errorf("ubuntu's authorized_keys: %q (%v), want the pool's key", out, err)
			}
			if err := e.p.Delete(ctx, o); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(files); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("node files after delete: %v", err)
			}
		})
	}
}

// The OpenSSH start script logs in root, a user it creates and a user the
// image has (whose ~/.ssh is too open and holds another key), each with
// the pool's key only and sudo for the others, and does it again when the
// container starts a second time.
func TestOpenSSHInit(t *testing.T) {
	t.Parallel()
	needDocker(t)
	tests := map[string]struct {
		user, prep, home string
	}{
		"root":          {user: "root", home: "/root"},
		"new user":      {user: "ubuntu", home: "/home/ubuntu"},
		"existing user": {user: "dev", home: "/srv/dev", prep: "id dev >/dev/null 2>&1 || { useradd -m -d /srv/dev dev && mkdir -m 0777 /srv/dev/.ssh && echo old-key > /srv/dev/.ssh/authorized_keys; } && "},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			hostKey, pubKey := newKeys(t)
			signer, err := ssh.ParsePrivateKey(hostKey)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "init"), []byte(openSSHInit), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "keys"), []byte(pubKey+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			lineage := newLineage(t)
			cleanupLineage(t, lineage)
			out, err := exec.Command("docker", "run", "-d", "-l", providers.LabelLineage+"="+lineage, "-p", "127.0.0.1::22",
				"-v", dir+":/t:ro", "--entrypoint", "/bin/sh", baseImage,
				"-c", tc.prep+"exec /bin/sh /t/init "+tc.user+" 0 /t/keys").CombinedOutput()
			if err != nil {
				t.Fatalf("docker run: %v\n%s", err, out)
			}
			id := strings.TrimSpace(string(out))
			for start := 1; start <= 2; start++ {
				out, err := exec.Command("docker", "port", id, "22/tcp").Output()
				if err != nil {
					t.Fatalf("start %d: docker port: %v", start, err)
				}
				_, port, _ := net.SplitHostPort(strings.TrimSpace(strings.Split(string(out), "\n")[0]))
				readBanner(t, "127.0.0.1:"+port)
				c, err := ssh.Dial("tcp", "127.0.0.1:"+port, &ssh.ClientConfig{User: tc.user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
					HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
				if err != nil {
					logs, _ := exec.Command("docker", "logs", id).CombinedOutput()
					t.Fatalf("start %d: login as %s: %v\n%s", start, tc.user, err, logs)
				}
				s, err := c.NewSession()
				if err != nil {
					t.Fatal(err)
				}
				got, err := s.CombinedOutput("sudo -n id -u; cat ~/.ssh/authorized_keys; stat -c '%a %U %n' /run/sshd ~/.ssh ~/.ssh/authorized_keys")
				c.Close()
				if err != nil {
					t.Fatalf("start %d: %v\n%s", start, err, got)
				}
				want := fmt.Sprintf("0\n%s\n700 root /run/sshd\n700 %[2]s %[3]s/.ssh\n600 %[2]s %[3]s/.ssh/authorized_keys\n", pubKey, tc.user, tc.home)
				if diff := cmp.Diff(want, string(got)); diff != "" {
					t.Errorf("start %d (-want +got):\n%s", start, diff)
				}
				if tc.user != "root" {
					out, err := exec.Command("docker", "exec", id, "stat", "-c", "%a %U", "/etc/sudoers.d/skyward-"+tc.user).CombinedOutput()
					if err != nil || string(out) != "440 root\n" {
						t.Errorf("start %d: sudoers file: %q (%v)", start, out, err)
					}
				}
				if start == 1 {
					if out, err := exec.Command("docker", "restart", "-t", "1", id).CombinedOutput(); err != nil {
						t.Fatalf("docker restart: %v\n%s", err, out)
					}
				}
			}
		})
	}
}

// An OpenSSH node whose image has no sshd stops at once, and Wait says so
// with the script's reason, as ErrStopped: the controller, dialling it,
// learns why from Wait rather than waiting out its SSH timeout.
func TestOpenSSHNodeWithoutServer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{SSH: ModeOpenSSH, User: "ubuntu"})
	img := "skyward-test-nosshd:" + e.lineage[:8]
	out, err := exec.Command("docker", "run", "-d", "-l", providers.LabelLineage+"="+e.lineage, "--entrypoint", "rm", baseImage, "/usr/sbin/sshd").CombinedOutput()
	if err != nil {
		t.Fatalf("docker run: %v\n%s", err, out)
	}
	id := strings.TrimSpace(string(out))
	if out, err := exec.Command("docker", "wait", id).CombinedOutput(); err != nil {
		t.Fatalf("docker wait: %v\n%s", err, out)
	}
	if out, err := exec.Command("docker", "commit", id, img).CombinedOutput(); err != nil {
		t.Fatalf("docker commit: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", img).Run() })

	pool := e.create(e.poolResource("dev"))
	r := e.nodeResource("dev", 0, pool, 0, 0)
	r.Node.BaseImage = img
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o, err := e.p.Create(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	// It may be seen running for a moment; then it has stopped for good.
	for {
		_, err = e.p.Wait(ctx, o)
		if err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !errors.Is(err, providers.ErrStopped) || !strings.Contains(err.Error(), "exited with status 78") ||
		!strings.Contains(err.Error(), "the image has no OpenSSH server (/usr/sbin/sshd)") {
		t.Errorf("Wait: %v, want ErrStopped with the script's reason", err)
	}
}
