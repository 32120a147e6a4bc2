package container

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/system"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/skyward-sh/skyward/providers"
)

func TestPodmanHost(t *testing.T) {
	tests := map[string]struct {
		uid  int
		env  map[string]string
		want string
	}{
		"CONTAINER_HOST wins":     {uid: 1000, env: map[string]string{"CONTAINER_HOST": "unix:///tmp/podman-test.sock", "XDG_RUNTIME_DIR": "/run/user/7"}, want: "unix:///tmp/podman-test.sock"},
		"root: the system socket": {uid: 0, env: map[string]string{"CONTAINER_HOST": "", "XDG_RUNTIME_DIR": "/run/user/0"}, want: "unix:///run/podman/podman.sock"},
		"rootless: XDG_RUNTIME_DIR": {uid: 1000, env: map[string]string{"CONTAINER_HOST": "", "XDG_RUNTIME_DIR": "/run/user/7"},
			want: "unix:///run/user/7/podman/podman.sock"},
		"rootless without XDG_RUNTIME_DIR": {uid: 1000, env: map[string]string{"CONTAINER_HOST": "", "XDG_RUNTIME_DIR": ""},
			want: "unix:///run/user/1000/podman/podman.sock"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			if got := podmanHost(tc.uid); got != tc.want {
				t.Errorf("podmanHost(%d) = %q, want %q", tc.uid, got, tc.want)
			}
		})
	}
}

// TestHostUlimits checks that the limits asked for stay within this
// process's own: nofile as granted, nproc well below the host's.
func TestHostUlimits(t *testing.T) {
	var nofile, nproc unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
		t.Fatal(err)
	}
	if err := unix.Getrlimit(unix.RLIMIT_NPROC, &nproc); err != nil {
		t.Fatal(err)
	}
	got := map[string]*container.Ulimit{}
	for _, u := range hostUlimits() {
		got[u.Name] = u
	}
	if len(got) != 2 || got["nofile"] == nil || got["nproc"] == nil {
		t.Fatalf("ulimits %s, want nofile and nproc", ulimitText(hostUlimits()))
	}
	if f := got["nofile"]; uint64(f.Hard) > nofile.Max || uint64(f.Soft) > nofile.Cur || f.Soft > f.Hard || f.Soft < 1 {
		t.Errorf("nofile %d:%d is not within this process's %d:%d", f.Soft, f.Hard, nofile.Cur, nofile.Max)
	}
	p := got["nproc"]
	if p.Soft != p.Hard || p.Soft < minNproc || p.Soft > maxNproc {
		t.Errorf("nproc %d:%d, want equal soft and hard in [%d, %d]", p.Soft, p.Hard, minNproc, maxNproc)
	}
	if nproc.Cur != unix.RLIM_INFINITY && nproc.Cur >= 4*minNproc && uint64(p.Soft) > nproc.Cur/4 {
		t.Errorf("nproc %d is not well below the host's %d", p.Soft, nproc.Cur)
	}
}

func TestExplainRlimit(t *testing.T) {
	p := newProvider(nil, "unix:///run/podman/podman.sock", Config{})
	p.engine = "Podman service"
	p.ulimits = []*container.Ulimit{{Name: "nofile", Soft: 20000, Hard: 20000}, {Name: "nproc", Soft: 2000, Hard: 2000}}
	// Podman 4.3.1's answer on a host that does not let limits be raised.
	refused := errors.New("Error response from daemon: runc: runc create failed: unable to start container process: error during container init: error setting rlimits for ready process: error setting rlimit type 7: operation not permitted: OCI permission denied")
	msg := p.explainRlimit(refused).Error()
	for _, want := range []string{"the Podman service may not set the container's resource limits to nofile=20000:20000 nproc=2000:2000 (from skyward's own limits) on this host",
		"error setting rlimit type 7: operation not permitted", "ulimit -n, ulimit -u", "LimitNOFILE"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("message is not one line: %q", msg)
	}
	other := errors.New("no such image")
	if got := p.explainRlimit(other); got != other {
		t.Errorf("explainRlimit changed an unrelated error: %v", got)
	}
}

func TestDescribeVersion(t *testing.T) {
	tests := map[string]struct {
		v    types.Version
		want string
	}{
		"docker": {v: types.Version{Version: "28.5.2", APIVersion: "1.51", Components: []types.ComponentVersion{{Name: "Engine", Version: "28.5.2"}}},
			want: "Docker 28.5.2 (API 1.51) at unix:///sock"},
		// What Podman 4.3.1's compat /version answers (abridged).
		"podman": {v: types.Version{Version: "4.3.1", APIVersion: "1.41", Components: []types.ComponentVersion{{Name: "Podman Engine", Version: "4.3.1"}, {Name: "Conmon", Version: "conmon version 2.1.6"}}},
			want: "Podman 4.3.1 (API 1.41) at unix:///sock"},
		"nothing": {want: "Docker (version unknown) at unix:///sock"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, describeVersion(tc.v, "unix:///sock")); diff != "" {
				t.Error(diff)
			}
		})
	}
}

// infoAPI answers Info with info and fails every other call.
type infoAPI struct {
	dockerAPI
	info system.Info
}

func (f infoAPI) Info(context.Context) (system.Info, error) { return f.info, nil }

// TestValidateRootlessCgroupV1 checks that limits a rootless engine on
// cgroup v1 would ignore are refused, and only there.
func TestValidateRootlessCgroupV1(t *testing.T) {
	rootless := []string{"name=seccomp,profile=default", "name=rootless"}
	tests := map[string]struct {
		info  system.Info
		node  providers.NodeSpec
		error string
	}{
		"rootless v1 with a limit": {info: system.Info{NCPU: 2, MemTotal: 8 << 30, CgroupVersion: "1", SecurityOptions: rootless},
			node: providers.NodeSpec{Hostname: "dev-0", VCPUs: 1}, error: "node dev-0: vcpus and memory_gb cannot be enforced: the Podman service is rootless on a cgroup v1 host"},
		"rootless v1 without limits": {info: system.Info{NCPU: 2, CgroupVersion: "1", SecurityOptions: rootless}, node: providers.NodeSpec{Hostname: "dev-0"}},
		"rootless v2":                {info: system.Info{NCPU: 2, MemTotal: 8 << 30, CgroupVersion: "2", SecurityOptions: rootless}, node: providers.NodeSpec{Hostname: "dev-0", VCPUs: 1}},
		"rootful v1":                 {info: system.Info{NCPU: 2, MemTotal: 8 << 30, CgroupVersion: "1"}, node: providers.NodeSpec{Hostname: "dev-0", MemoryGB: 1}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := newProvider(infoAPI{info: tc.info}, "unix:///sock", Config{})
			p.engine = "Podman service"
			err := p.ValidateNodes(context.Background(), []providers.NodeSpec{tc.node})
			if tc.error == "" && err != nil || tc.error != "" && (err == nil || !strings.Contains(err.Error(), tc.error)) {
				t.Errorf("ValidateNodes = %v, want %q", err, tc.error)
			}
		})
	}
}
