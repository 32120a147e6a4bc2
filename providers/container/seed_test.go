package container

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"golang.org/x/crypto/ssh"

	"github.com/skyward-sh/skyward/agent"
	"github.com/skyward-sh/skyward/cluster"
	"github.com/skyward-sh/skyward/internal/dockertest"
)

func TestAgentSeed(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SKYWARD_SEED_DIR", dir)
	bin := filepath.Join(t.TempDir(), "skyward")
	if err := os.WriteFile(bin, []byte("build one"), 0o755); err != nil {
		t.Fatal(err)
	}
	first, sum, err := agentSeed(bin, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, sum, "skyward"); first != want {
		t.Errorf("seed at %s, want %s", first, want)
	}
	if data, _ := os.ReadFile(first); string(data) != "build one" {
		t.Errorf("seed holds %q", data)
	}
	if fi, err := os.Stat(first); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("seed mode: %v %v", fi.Mode(), err)
	}
	again, _, err := agentSeed(bin, nil)
	if err != nil || again != first {
		t.Errorf("second seed %s (%v), want the first, %s", again, err, first)
	}

	// An old, unused seed goes when a new one is made; the seed in use
	// stays whatever its age.
	old := time.Now().Add(-2 * seedTTL)
	if err := os.Chtimes(filepath.Dir(first), old, old); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, strings.Repeat("0", 64))
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	// A new build: written after a moment so that its modification time
	// differs, as a rebuild's does.
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(bin, []byte("build two"), 0o755); err != nil {
		t.Fatal(err)
	}
	second, sum2, err := agentSeed(bin, nil)
	if err != nil {
		t.Fatal(err)
	}
	if second == first || sum2 == sum {
		t.Fatalf("a new build got the old seed %s", second)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale seed still there: %v", err)
	}
	if _, err := os.Stat(first); !os.IsNotExist(err) {
		t.Errorf("unused old seed still there: %v", err)
	}
	// A stale seed that a (stopped) container still mounts stays; one
	// that cannot be checked stays too.
	mounted := filepath.Join(dir, strings.Repeat("1", 64))
	unknown := filepath.Join(dir, strings.Repeat("2", 64))
	for _, d := range []string{mounted, unknown} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(d, old, old); err != nil {
			t.Fatal(err)
		}
	}
	pruneSeeds(dir, sum2, time.Now(), func() (map[string]bool, error) { return nil, errors.New("engine down") })
	for _, d := range []string{mounted, unknown} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("a seed was removed although the containers could not be listed: %v", err)
		}
	}
	pruneSeeds(dir, sum2, time.Now(), func() (map[string]bool, error) { return map[string]bool{filepath.Base(mounted): true}, nil })
	if _, err := os.Stat(mounted); err != nil {
		t.Errorf("a seed a container mounts was removed: %v", err)
	}
	if _, err := os.Stat(unknown); !os.IsNotExist(err) {
		t.Errorf("a stale seed no container mounts is still there: %v", err)
	}

	// The old seed is made again when a node needs it.
	if err := os.WriteFile(bin, []byte("build one"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, _, err := agentSeed(bin, nil); err != nil || p != first {
		t.Errorf("seed of build one at %s (%v), want %s", p, err, first)
	}
}

// TestAgentUpgradeOverSeed: a node whose agent binary is the mounted seed
// takes a new binary over SSH, which replaces the link and leaves the
// seed on this machine untouched.
func TestAgentUpgradeOverSeed(t *testing.T) {
	seeds := t.TempDir()
	t.Setenv("SKYWARD_SEED_DIR", seeds)
	real := dockertest.AgentBinary(t)
	e := newEnv(t, Config{})
	pool := e.create(e.poolResource("dev"))
	r := e.nodeResource("dev", 0, pool, 0, 0)
	r.Node.AgentBinary = real
	o := e.create(r)

	signer, err := ssh.ParsePrivateKey(e.hostKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := cluster.WaitDial(ctx, cluster.Endpoint{Address: r.Address, Host: o.SSH.Host, Port: o.SSH.Port,
		User: o.SSH.User, HostKey: e.pubKey, Signer: signer}, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, err := c.Output(ctx, "readlink "+AgentPath)
	if err != nil || strings.TrimSpace(string(out)) != "../seed/skyward" {
		t.Fatalf("readlink %s = %q (%v), want the seed", AgentPath, out, err)
	}
	if installed, err := cluster.EnsureAgent(ctx, c, real); err != nil || installed {
		t.Fatalf("EnsureAgent of the seeded binary: installed %v, %v; want nothing to do", installed, err)
	}

	// A new build: the same binary with a byte more, which still runs.
	data, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	next := filepath.Join(t.TempDir(), "skyward")
	if err := os.WriteFile(next, append(data, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	if installed, err := cluster.EnsureAgent(ctx, c, next); err != nil || !installed {
		t.Fatalf("EnsureAgent of a new build: installed %v, %v", installed, err)
	}
	sum, err := agent.FileSum(next)
	if err != nil {
		t.Fatal(err)
	}
	out, err = c.Output(ctx, "test -L "+AgentPath+" && echo link; sha256sum "+AgentPath+" "+SeedPath+" | cut -d' ' -f1")
	if err != nil {
		t.Fatal(err)
	}
	seedSum, err := agent.FileSum(real)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Fields(string(out)), []string{sum, seedSum}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("on the node: %q, want the new binary in place of the link and the seed unchanged %q", got, want)
	}
	if host, _ := agent.FileSum(filepath.Join(seeds, seedSum, "skyward")); host != seedSum {
		t.Errorf("the seed on this machine changed: sha256 %s", host)
	}
	// The engine says which seed the node mounts, so pruning spares it.
	mounted, err := e.p.mountedSeeds(seeds)()
	if err != nil || !mounted[seedSum] {
		t.Errorf("mounted seeds %v (%v), want %s among them", mounted, err, seedSum)
	}

	// A restart keeps the upgrade, and PID 1 (started from the seed)
	// hands over to it.
	c.Close()
	if err := dockerCli.ContainerRestart(ctx, o.ID, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	up, err := e.p.Wait(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	c, err = cluster.WaitDial(ctx, cluster.Endpoint{Address: r.Address, Host: up.SSH.Host, Port: up.SSH.Port,
		User: up.SSH.User, HostKey: e.pubKey, Signer: signer}, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, err = c.Output(ctx, "readlink /proc/1/exe; test -L "+AgentPath+" && echo link; cat "+agent.BinarySumPath)
	if got, want := strings.Fields(string(out)), []string{AgentPath, sum}; err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("after a restart: %q (%v), want PID 1 running the upgrade, kept with its sum: %q", got, err, want)
	}
}
