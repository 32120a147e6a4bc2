package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// TestPodmanRootless applies a 2-node pool on rootless Podman: skyward
// runs as an ordinary user (SKYWARD_TEST_ROOTLESS_USER, which .ci/run
// creates with subordinate ids and the base image in its Podman), starts
// that user's Podman service itself, runs a broadcast and destroys the
// pool. The test runs as root, to become that user.
func TestPodmanRootless(t *testing.T) {
	name := os.Getenv("SKYWARD_TEST_ROOTLESS_USER")
	if name == "" || os.Getuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("rootless Podman is tested in CI: run as root with SKYWARD_TEST_ROOTLESS_USER set (.ci/run does)")
		}
		t.Skip("needs root and SKYWARD_TEST_ROOTLESS_USER, a user with rootless Podman")
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	agent, image := testEnv(t)
	runtimeDir := "/run/user/" + u.Uid
	as := func(args ...string) *exec.Cmd {
		env := []string{"env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + u.HomeDir, "XDG_RUNTIME_DIR=" + runtimeDir, "NO_COLOR=1"}
		return exec.Command("runuser", append(append([]string{"-u", name, "--"}, env...), args...)...)
	}
	if out, err := as("podman", "image", "exists", image).CombinedOutput(); err != nil {
		t.Fatalf("%s's Podman lacks %s (testdata/mkbaseimage.sh --podman as that user): %v %s", name, image, err, out)
	}

	// A directory of the user's, with a copy of the agent it can read.
	dir, err := os.MkdirTemp("", "skyward-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "skyward")
	data, err := os.ReadFile(agent)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := `provider "container" {
  binary = "podman"
  image  = "` + image + `"
}

pool "dev" {
  nodes = 2
}

task "hello" {
  pool = pool.dev
  mode = "broadcast"
  run  = "hostname; id -u; ulimit -n"
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.sky.hcl"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "-R", name+":", dir).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	run := func(args ...string) (string, error) {
		out, err := as(append([]string{"env", "SKYWARD_AGENT_BINARY=" + bin, bin, "-chdir=" + dir}, args...)...).CombinedOutput()
		return string(out), err
	}
	skyward := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("skyward %s as %s: %v\n%s", strings.Join(args, " "), name, err, out)
		}
		return out
	}
	t.Cleanup(func() {
		// Whatever the test left: destroy, then anything of the lineage.
		as("env", "SKYWARD_AGENT_BINARY="+bin, bin, "-chdir="+dir, "destroy", "-auto-approve").Run()
		if lin := lineageOf(dir); lin != "" {
			out, _ := as("podman", "ps", "-aq", "--filter", "label=skyward.lineage="+lin).Output()
			if ids := strings.Fields(string(out)); len(ids) > 0 {
				as(append([]string{"podman", "rm", "-f"}, ids...)...).Run()
			}
			out, _ = as("podman", "network", "ls", "-q", "--filter", "label=skyward.lineage="+lin).Output()
			if ids := strings.Fields(string(out)); len(ids) > 0 {
				as(append([]string{"podman", "network", "rm"}, ids...)...).Run()
			}
		}
	})

	out := skyward("init")
	if want := "reachable: Podman 4."; !strings.Contains(out, want) || !strings.Contains(out, "at unix://"+runtimeDir+"/podman/podman.sock") {
		t.Errorf("init output lacks %q at the user's socket:\n%s", want, out)
	}
	// Rootless Podman on cgroup v1 ignores CPU and memory limits: a pool
	// that asks for them is refused at plan, changing nothing.
	if err := os.WriteFile(filepath.Join(dir, "limited.sky.hcl"), []byte("pool \"limited\" {\n  nodes = 1\n  vcpus = 1\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if cgroupV1() {
		out, err := run("plan")
		if err == nil || !strings.Contains(out, "vcpus and memory_gb cannot be enforced: the Podman service is rootless on a cgroup v1 host") {
			t.Errorf("plan of a pool with limits on rootless Podman on cgroup v1: %v\n%s", err, out)
		}
	}
	if err := os.Remove(filepath.Join(dir, "limited.sky.hcl")); err != nil {
		t.Fatal(err)
	}
	if out := skyward("apply", "-auto-approve"); !strings.Contains(out, "Apply complete! Resources: 3 added") {
		t.Fatalf("apply:\n%s", out)
	}
	var res struct {
		OK         bool
		Executions []struct {
			Node   int
			Stdout string
		}
	}
	if err := json.Unmarshal([]byte(skyward("run", "hello", "-json")), &res); err != nil {
		t.Fatal(err)
	}
	if !res.OK || len(res.Executions) != 2 {
		t.Fatalf("run: %+v", res)
	}
	for i, e := range res.Executions {
		// Root in the node's user namespace, the host's file limit.
		if f := strings.Fields(e.Stdout); len(f) != 3 || f[0] != "dev-"+string(rune('0'+i)) || f[1] != "0" {
			t.Errorf("node %d printed %q, want its hostname, uid 0 and its file limit", i, e.Stdout)
		}
	}
	if out := skyward("destroy", "-auto-approve"); !strings.Contains(out, "Destroy complete! Resources: 3 destroyed.") {
		t.Fatalf("destroy:\n%s", out)
	}
	lin := lineageOf(dir)
	if out, err := as("podman", "ps", "-aq", "--filter", "label=skyward.lineage="+lin).Output(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("containers left after destroy: %q (%v)", out, err)
	}
}

// cgroupV1 reports whether this host has cgroup v1 (no unified hierarchy
// at /sys/fs/cgroup).
func cgroupV1() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err != nil
}
