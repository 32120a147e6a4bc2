package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skyward-sh/skyward/cli"
)

// benchEnv returns the agent binary and base image for benchmarks, or
// skips when Docker is not there (benchmarks run only from make bench).
func benchEnv(b *testing.B) (image string) {
	b.Helper()
	if !dockerUp() {
		b.Skip("needs Docker")
	}
	if os.Getenv("SKYWARD_AGENT_BINARY") == "" || os.Getenv("SKYWARD_TEST_IMAGE") == "" {
		b.Skip("run through make bench (needs SKYWARD_AGENT_BINARY and SKYWARD_TEST_IMAGE)")
	}
	return os.Getenv("SKYWARD_TEST_IMAGE")
}

// floorStart starts n containers of image with `CLI run` (docker or
// podman), each running OpenSSH with a single ed25519 host key made at
// start (the cheapest key to make), and waits for every SSH banner: the
// floor a provider can reach on that runtime.
func floorStart(b *testing.B, cli, image string, n int) time.Duration {
	label := fmt.Sprintf("skyward.bench=%d", time.Now().UnixNano())
	defer func() {
		out, _ := exec.Command(cli, "ps", "-aq", "--filter", "label="+label).Output()
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			exec.Command(cli, append([]string{"rm", "-f"}, ids...)...).Run()
		}
	}()
	run := []string{"run", "-d", "-l", label, "-p", "127.0.0.1::22"}
	if cli == "podman" {
		// The limits skyward gives Podman's nodes: its defaults fail here.
		var nofile syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile); err != nil {
			b.Fatal(err)
		}
		run = append(run, "--ulimit", fmt.Sprintf("nofile=%d:%d", nofile.Cur, nofile.Max), "--ulimit", "nproc=2048:2048")
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := exec.Command(cli, append(run, image,
				"sh", "-c", "mkdir -p /run/sshd && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key && exec /usr/sbin/sshd -D -h /etc/ssh/ssh_host_ed25519_key")...).Output()
			if err != nil {
				errs <- fmt.Errorf("%s run: %w", cli, err)
				return
			}
			id := strings.TrimSpace(string(out))
			pb, err := exec.Command(cli, "port", id, "22/tcp").Output()
			if err != nil {
				errs <- fmt.Errorf("%s port: %w", cli, err)
				return
			}
			addr := strings.TrimSpace(strings.Split(string(pb), "\n")[0])
			errs <- waitBanner(addr, 60*time.Second)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

func waitBanner(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil && strings.HasPrefix(line, "SSH-") {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no SSH banner from %s within %s", addr, timeout)
}

// skyward runs the CLI in dir and returns its output.
func skyward(b *testing.B, dir string, args ...string) string {
	b.Helper()
	var out strings.Builder
	if code := cli.Run(append([]string{"-chdir=" + dir}, args...), strings.NewReader(""), &out, &out); code != 0 {
		b.Fatalf("skyward %s: exit %d\n%s", strings.Join(args, " "), code, out.String())
	}
	return out.String()
}

// BenchmarkApply3Nodes applies a 3-node container pool whose image needs
// no package installs (env and setup only) until every node has joined the
// head, and compares it with the floor: 3 parallel `docker run`s waiting
// for their SSH banners, measured in the same iteration. Target: x-floor
// <= 2.
func BenchmarkApply3Nodes(b *testing.B) {
	image := benchEnv(b)
	benchApply(b, image, benchConfig(image, "bench", 3, `env = { GREETING = "hi" }
  setup = ["echo ready > /tmp/ready"]`), nil)
}

// BenchmarkApply3NodesPodman is BenchmarkApply3Nodes with binary =
// "podman" (its Docker-compatible service), against the floor of 3
// parallel `podman run`s waiting for their SSH banners, same iteration.
func BenchmarkApply3NodesPodman(b *testing.B) {
	image := benchEnv(b)
	if err := podmanUp(image); err != nil {
		b.Skip(err)
	}
	cfg := benchConfig(image, "bench", 3, `env = { GREETING = "hi" }
  setup = ["echo ready > /tmp/ready"]`)
	cfg = strings.Replace(cfg, "provider \"container\" {\n", "provider \"container\" {\n  binary = \"podman\"\n", 1)
	benchApplyOn(b, "podman", image, cfg, nil)
}

// BenchmarkApply3NodesPodmanOpenSSH is BenchmarkApply3NodesPodman with the
// nodes on the image's own OpenSSH as user ubuntu; same floor.
func BenchmarkApply3NodesPodmanOpenSSH(b *testing.B) {
	image := benchEnv(b)
	if err := podmanUp(image); err != nil {
		b.Skip(err)
	}
	cfg := benchConfig(image, "bench", 3, `env = { GREETING = "hi" }
  setup = ["echo ready > /tmp/ready"]`)
	cfg = strings.Replace(cfg, "provider \"container\" {\n", "provider \"container\" {\n  binary = \"podman\"\n  ssh    = \"openssh\"\n  user   = \"ubuntu\"\n", 1)
	benchApplyOn(b, "podman", image, cfg, func(out string) {
		if !strings.Contains(out, "at first contact") {
			b.Fatalf("the nodes were not on OpenSSH:\n%s", out)
		}
	})
}

// BenchmarkApply3NodesOpenSSH is BenchmarkApply3Nodes with every node on
// the image's own OpenSSH as user ubuntu (ssh = "openssh"), as on a cloud
// VM: host keys made on the node and pinned at first contact, the agent
// uploaded over SFTP, every step through sudo. Same floor; target: x-floor
// <= 2.5.
func BenchmarkApply3NodesOpenSSH(b *testing.B) {
	image := benchEnv(b)
	cfg := benchConfig(image, "bench", 3, `env = { GREETING = "hi" }
  setup = ["echo ready > /tmp/ready"]`)
	cfg = strings.Replace(cfg, "provider \"container\" {\n", "provider \"container\" {\n  ssh  = \"openssh\"\n  user = \"ubuntu\"\n", 1)
	benchApply(b, image, cfg, func(out string) {
		if !strings.Contains(out, "at first contact") {
			b.Fatalf("the nodes were not on OpenSSH:\n%s", out)
		}
	})
}

// BenchmarkApply3NodesPrebaked applies a 3-node pool whose recipe (apt)
// was baked by an earlier pool, so no node runs apt; same floor and target
// as BenchmarkApply3Nodes.
func BenchmarkApply3NodesPrebaked(b *testing.B) {
	image := benchEnv(b)
	recipe := `apt = ["dc"]`
	// Bake the recipe once, outside the timings: a 1-node pool bootstraps
	// it and its node 0 is committed as the prebaked image.
	bakeDir := b.TempDir()
	writeConfig(b, bakeDir, benchConfig(image, "bake", 1, recipe))
	skyward(b, bakeDir, "apply", "-auto-approve")
	skyward(b, bakeDir, "destroy", "-auto-approve")
	b.Cleanup(func() {
		out, _ := exec.Command("docker", "images", "-q", "--filter", "label=skyward.bake").Output()
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			exec.Command("docker", append([]string{"rmi", "-f"}, ids...)...).Run()
		}
	})
	benchApply(b, image, benchConfig(image, "bench", 3, recipe), func(out string) {
		if !strings.Contains(out, "apt unchanged, skipped") {
			b.Fatalf("the prebaked pool ran apt:\n%s", out)
		}
	})
}

// benchConfig is a config with one pool of n nodes on image, with an image
// recipe made of the given arguments.
func benchConfig(image, pool string, n int, recipe string) string {
	return fmt.Sprintf("provider \"container\" {\n  image = %q\n}\n\nimage \"bench\" {\n  %s\n}\n\npool %q {\n  nodes = %d\n  image = image.bench\n}\n",
		image, recipe, pool, n)
}

func writeConfig(b *testing.B, dir, cfg string) {
	b.Helper()
	if err := os.WriteFile(filepath.Join(dir, "main.sky.hcl"), []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
}

// benchApply times `skyward apply` of cfg against the floor of starting
// as many bare containers, each iteration measuring both; check, when set,
// is given the apply's -verbose output.
func benchApply(b *testing.B, image, cfg string, check func(out string)) {
	benchApplyOn(b, "docker", image, cfg, check)
}

// benchApplyOn is benchApply with the floor measured on the runtime's CLI.
func benchApplyOn(b *testing.B, cli, image, cfg string, check func(out string)) {
	var floor, apply time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		writeConfig(b, dir, cfg)
		floor += floorStart(b, cli, image, 3)
		b.StartTimer()
		start := time.Now()
		out := skyward(b, dir, "apply", "-auto-approve", "-verbose")
		apply += time.Since(start)
		b.StopTimer()
		skyward(b, dir, "destroy", "-auto-approve")
		if check != nil {
			check(out)
		}
	}
	b.ReportMetric(floor.Seconds()/float64(b.N), "floor-s")
	b.ReportMetric(apply.Seconds()/float64(b.N), "apply-s")
	b.ReportMetric(apply.Seconds()/floor.Seconds(), "x-floor")
}

// applyPool applies cfg in a new directory for a benchmark and destroys it
// when the benchmark ends.
func applyPool(b *testing.B, cfg string) string {
	dir := b.TempDir()
	writeConfig(b, dir, cfg)
	skyward(b, dir, "apply", "-auto-approve")
	b.Cleanup(func() { skyward(b, dir, "destroy", "-auto-approve") })
	return dir
}

// poolContainers returns the ids of the containers of the state in dir.
func poolContainers(b *testing.B, dir string) []string {
	b.Helper()
	data, err := os.ReadFile(filepath.Join(dir, ".skyward", "state.json"))
	if err != nil {
		b.Fatal(err)
	}
	var st struct{ Lineage string }
	if err := json.Unmarshal(data, &st); err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command("docker", "ps", "-q", "--filter", "label=skyward.lineage="+st.Lineage).Output()
	if err != nil {
		b.Fatal(err)
	}
	return strings.Fields(string(out))
}

// BenchmarkRunBroadcast runs a trivial broadcast task on a ready 3-node
// pool with `skyward run` as a fresh process, against the floor of running
// the same command with `docker exec` on the 3 containers in parallel,
// measured in the same iteration. Target: x-floor <= 1.5.
func BenchmarkRunBroadcast(b *testing.B) {
	image := benchEnv(b)
	dir := applyPool(b, fmt.Sprintf(`provider "container" {
  image = %q
}

pool "bench" {
  nodes = 3
}

task "hello" {
  pool = pool.bench
  mode = "broadcast"
  run  = "echo hello"
}
`, image))
	ids := poolContainers(b, dir)
	if len(ids) != 3 {
		b.Fatalf("%d containers, want 3", len(ids))
	}
	bin := os.Getenv("SKYWARD_AGENT_BINARY")
	var floor, run time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if out, err := exec.Command("docker", "exec", id, "sh", "-c", "echo hello").CombinedOutput(); err != nil {
					b.Errorf("docker exec: %v\n%s", err, out)
				}
			}()
		}
		wg.Wait()
		floor += time.Since(start)
		b.StartTimer()
		start = time.Now()
		if out, err := exec.Command(bin, "-chdir="+dir, "run", "hello").CombinedOutput(); err != nil {
			b.Fatalf("skyward run: %v\n%s", err, out)
		}
		run += time.Since(start)
	}
	b.ReportMetric(floor.Seconds()/float64(b.N), "floor-s")
	b.ReportMetric(run.Seconds()/float64(b.N), "run-s")
	b.ReportMetric(run.Seconds()/floor.Seconds(), "x-floor")
}

// BenchmarkRunCount1000 runs 1000 executions of `true` (count = 1000) on a
// ready 3-node pool with 4 slots a node, end to end. Target: at least 300
// executions a second.
func BenchmarkRunCount1000(b *testing.B) {
	image := benchEnv(b)
	dir := applyPool(b, fmt.Sprintf(`provider "container" {
  image = %q
}

pool "bench" {
  nodes       = 3
  concurrency = 4
}

task "many" {
  pool  = pool.bench
  count = 1000
  run   = "true"
}
`, image))
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		out := skyward(b, dir, "run", "many", "-json")
		total += time.Since(start)
		if !strings.Contains(out, `"ok": true`) {
			b.Fatalf("run failed:\n%.2000s", out)
		}
	}
	b.ReportMetric(1000*float64(b.N)/total.Seconds(), "execs/s")
}
