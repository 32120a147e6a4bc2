package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/google/go-cmp/cmp"

	"github.com/skyward-sh/skyward/providers"
)

// recordedNerdctl answers nerdctl commands from testdata/nerdctl and
// records every command line it was given.
type recordedNerdctl struct {
	t       *testing.T
	mu      sync.Mutex
	calls   [][]string
	answers map[string]answer // by command prefix ("container inspect")
}

type answer struct {
	stdout string // a file in testdata/nerdctl (with @), or the text
	stderr string
	code   int
}

// exitError is a failed run's error, as *exec.ExitError is.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
func (e exitError) ExitCode() int { return int(e) }

func (r *recordedNerdctl) run(_ context.Context, args ...string) ([]byte, []byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, args)
	cmd := strings.Join(args, " ")
	best := ""
	for prefix := range r.answers {
		if strings.HasPrefix(cmd, prefix) && len(prefix) > len(best) {
			best = prefix
		}
	}
	if best == "" {
		r.t.Errorf("unexpected nerdctl %s", cmd)
		return nil, []byte("unexpected"), exitError(1)
	}
	a := r.answers[best]
	out := []byte(a.stdout)
	if name, ok := strings.CutPrefix(a.stdout, "@"); ok {
		b, err := os.ReadFile(filepath.Join("testdata", "nerdctl", name))
		if err != nil {
			r.t.Fatal(err)
		}
		out = b
	}
	var err error
	if a.code != 0 {
		err = exitError(a.code)
	}
	return out, []byte(a.stderr), err
}

// call returns the recorded command line that starts with prefix.
func (r *recordedNerdctl) call(prefix string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.calls {
		if strings.HasPrefix(strings.Join(c, " "), prefix) {
			return c
		}
	}
	r.t.Fatalf("no nerdctl %s among %q", prefix, r.calls)
	return nil
}

func newRecorded(t *testing.T, answers map[string]answer) (*Provider, *recordedNerdctl) {
	rec := &recordedNerdctl{t: t, answers: answers}
	n := newNerdctl("")
	n.run = rec.run
	p := newProvider(n, "nerdctl", Config{Image: "skyward-test-base:bookworm-ea549da5"})
	p.engine, p.binary = "containerd (through nerdctl)", RuntimeNerdctl
	p.ulimits = []*container.Ulimit{{Name: "nofile", Soft: 20000, Hard: 20000}, {Name: "nproc", Soft: 24137, Hard: 24137}}
	return p, rec
}

const recordedLineage = "6b3c1f0e-2a4d-4e8f-9b7a-1c2d3e4f5a6b"

// TestNerdctlRecorded takes a pool and a node through the nerdctl driver
// against recorded nerdctl output: the command lines it builds (labels,
// limits, 127.0.0.1 port, entrypoint) and what it reads back.
func TestNerdctlRecorded(t *testing.T) {
	const nodeID = "5d2c7f1e9a0b4c3d8e6f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"
	const netID = "0b8e1d4a3f2c5e6d7c8b9a0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5"
	p, rec := newRecorded(t, map[string]answer{
		"version":                {stdout: "@version-issue2593.json"},
		"network create":         {stdout: netID + "\n"},
		"image inspect":          {stdout: `[{"Id":"sha256:419b45eca2b3","RepoTags":["skyward-test-base:bookworm-ea549da5"]}]`},
		"create":                 {stdout: nodeID + "\n"},
		"cp":                     {},
		"start":                  {},
		"container inspect":      {stdout: "@inspect-node.json"},
		"ps":                     {stdout: `{"Command":"\"/opt/skyward/bin/skyward agent sshd\"","CreatedAt":"2026-11-30 10:00:00 +0000 UTC","ID":"` + nodeID + `","Image":"docker.io/library/skyward-test-base:bookworm-ea549da5","Platform":"linux/amd64","Names":"skyward-6b3c1f0e-dev-0","Ports":"127.0.0.1:49153->22/tcp","Status":"Up","Runtime":"io.containerd.runc.v2","Size":"","Labels":"skyward.managed=true"}` + "\n"},
		"network ls":             {stdout: `{"ID":"0b8e1d4a3f2c","Name":"skyward-6b3c1f0e-dev","Labels":"skyward.lineage=` + recordedLineage + `"}` + "\n"},
		"network inspect":        {stdout: "@network-inspect.json"},
		"rm":                     {},
		"update":                 {},
		"--log-level=error exec": {stdout: "", stderr: "mv: cannot stat\n", code: 3},
	})
	ctx := context.Background()

	if err := p.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("nerdctl v1.6.2-29-g35966845 (containerd v1.7.1) (nerdctl)", p.Runtime()); diff != "" {
		t.Errorf("Runtime (-want +got):\n%s", diff)
	}

	pool := providers.Resource{Kind: providers.KindPool, Address: "pool.dev", Pool: "dev", Index: -1, Lineage: recordedLineage}
	po, err := p.Create(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if po.ID != netID || po.Private["network"] != "skyward-6b3c1f0e-dev" {
		t.Errorf("pool object %+v", po)
	}
	if diff := cmp.Diff([]string{"network", "create", "--driver", "bridge", "--label", "skyward.address=pool.dev",
		"--label", "skyward.lineage=" + recordedLineage, "--label", "skyward.managed=true", "skyward-6b3c1f0e-dev"}, rec.call("network create")); diff != "" {
		t.Errorf("network create (-want +got):\n%s", diff)
	}

	bin := filepath.Join(t.TempDir(), "skyward")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	hostKey, pub := newKeys(t)
	node := providers.Resource{Kind: providers.KindNode, Address: "pool.dev.node[0]", Pool: "dev", Index: 0, Lineage: recordedLineage, PoolObject: &po,
		Node: &providers.NodeSpec{Hostname: "dev-0", VCPUs: 1, MemoryGB: 0.5, AuthorizedKey: pub, HostKey: hostKey, AgentBinary: bin}}
	o, err := p.Create(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	if o.ID != nodeID {
		t.Errorf("node id %q", o.ID)
	}
	want := []string{"create", "--name", "skyward-6b3c1f0e-dev-0", "--hostname", "dev-0", "--network", "skyward-6b3c1f0e-dev",
		"--label", "skyward.address=pool.dev.node[0]", "--label", "skyward.index=0", "--label", "skyward.lineage=" + recordedLineage,
		"--label", "skyward.managed=true", "--label", "skyward.pool=dev", "--label", "skyward.user=root",
		"--publish", "127.0.0.1::22/tcp", "--cpus", "1", "--memory", "536870912b", "--memory-swap", "536870912b",
		"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=24137:24137", "--tmpfs", "/run/skyward-bake:mode=0700",
		"--entrypoint", "/opt/skyward/bin/skyward", "skyward-test-base:bookworm-ea549da5",
		"agent", "sshd", "-listen=:22", "-host-key=/opt/skyward/ssh_host_ed25519_key", "-authorized-keys=/opt/skyward/authorized_keys"}
	if diff := cmp.Diff(want, rec.call("create ")); diff != "" {
		t.Errorf("create (-want +got):\n%s", diff)
	}
	if cp := rec.call("cp "); len(cp) != 3 || !strings.HasSuffix(cp[1], "/.") || cp[2] != nodeID+":/" {
		t.Errorf("cp %q", cp)
	}
	rec.call("start " + nodeID)

	o, err = p.Wait(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	wantObj := providers.Object{Kind: providers.KindNode, Address: "pool.dev.node[0]", ID: nodeID, Lineage: recordedLineage, Running: true,
		PrivateIP: "10.4.1.2", SSH: providers.SSHEndpoint{Host: "127.0.0.1", Port: 49153, User: "root"},
		Private: map[string]string{"name": "skyward-6b3c1f0e-dev-0", "network": "skyward-6b3c1f0e-dev"},
		Spec:    map[string]string{"vcpus": "1", "memory_gb": "0.5", "base_image": "docker.io/library/skyward-test-base:bookworm-ea549da5"}}
	if diff := cmp.Diff(wantObj, o); diff != "" {
		t.Errorf("node after Wait (-want +got):\n%s", diff)
	}

	list, err := p.List(ctx, recordedLineage)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Kind != providers.KindPool || list[0].ID != netID || list[1].ID != nodeID || list[1].SSH.Port != 49153 || list[1].PrivateIP != "10.4.1.2" {
		t.Errorf("List = %+v", list)
	}
	if ps := rec.call("ps"); !slicesContains(ps, "label=skyward.lineage="+recordedLineage) || !slicesContains(ps, "--all") {
		t.Errorf("ps %q", ps)
	}

	node.Node.VCPUs, node.Node.MemoryGB = 0.5, 1
	if _, err := p.Update(ctx, o, node); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"update", "--cpus", "0.5", "--memory", "1073741824b", "--memory-swap", "1073741824b", nodeID}, rec.call("update")); diff != "" {
		t.Errorf("update (-want +got):\n%s", diff)
	}

	// A bake whose stash step fails reports the command's exit status
	// and output.
	if _, err := p.Bake(ctx, o, "recipe"); err == nil || !strings.Contains(err.Error(), "exit status 3: mv: cannot stat") {
		t.Errorf("bake error %v, want the exec's exit status and output", err)
	}

	if err := p.Delete(ctx, o); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"rm", "--force", "--volumes", nodeID}, rec.call("rm")); diff != "" {
		t.Errorf("rm (-want +got):\n%s", diff)
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestNerdctlRecordedReal reads nerdctl's verbatim output of older
// versions: a container without Config and HostConfig, ps lines.
func TestNerdctlRecordedReal(t *testing.T) {
	p, _ := newRecorded(t, map[string]answer{
		"container inspect": {stdout: "@inspect-issue483.json"},
	})
	o, err := p.Read(context.Background(), providers.Object{Kind: providers.KindNode, ID: "42a02c24a458"})
	if err != nil {
		t.Fatal(err)
	}
	// No published port (the container had none): no SSH endpoint.
	if !o.Running || o.ID != "42a02c24a4588bc9bd909e5df956f480e21e246e0fe6ffa9ad1b03653e339706" || o.PrivateIP != "10.244.2.2" || o.SSH.Port != 0 {
		t.Errorf("object %+v", o)
	}
	b, err := os.ReadFile("testdata/nerdctl/ps-pr1260.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	items, err := jsonLines[psItem](b)
	if err != nil || len(items) != 1 || items[0].ID != "bf6dda95ce71" {
		t.Errorf("ps lines %+v, %v", items, err)
	}
}

func TestNerdctlErrors(t *testing.T) {
	tests := map[string]struct {
		stderr   string
		notFound bool
		conflict bool
		want     string
	}{
		"container":  {stderr: `time="2026-11-30T10:00:00Z" level=fatal msg="no such container: skyward-x"`, notFound: true, want: "nerdctl container inspect: no such container: skyward-x"},
		"object":     {stderr: "time=\"2026-11-30T10:00:00Z\" level=fatal msg=\"1 errors: [no such object abc]\"", notFound: true},
		"network":    {stderr: `FATA[0000] no network found matching: skyward-x`, notFound: true, want: "no network found matching: skyward-x"},
		"name taken": {stderr: `time="2026-11-30T10:00:00Z" level=fatal msg="name \"skyward-x\" is already used by ID \"5d2c\""`, conflict: true},
		"other":      {stderr: "time=\"2026-11-30T10:00:00Z\" level=fatal msg=\"failed to create shim task\"", want: "nerdctl container inspect: failed to create shim task"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := nerdctlError([]string{"container", "inspect", "--mode=dockercompat", "x"}, tc.stderr, exitError(1))
			if cerrdefs.IsNotFound(err) != tc.notFound || cerrdefs.IsConflict(err) != tc.conflict {
				t.Errorf("%v: not found %v, conflict %v", err, cerrdefs.IsNotFound(err), cerrdefs.IsConflict(err))
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
}

// TestNerdctlMissing checks the messages when nerdctl is not installed
// (as on the machine these tests run on) or containerd does not answer.
func TestNerdctlMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	p, err := New(Config{Binary: RuntimeNerdctl})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), `binary "nerdctl" is not installed (not found on PATH)`) {
		t.Errorf("Check = %v, want that nerdctl is not installed", err)
	}

	p, _ = newRecorded(t, map[string]answer{
		"version": {stderr: `time="2026-11-30T10:00:00Z" level=fatal msg="cannot access containerd socket \"/run/containerd/containerd.sock\": no such file or directory"`, code: 1},
	})
	err = p.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), `cannot reach containerd through nerdctl: nerdctl version: cannot access containerd socket "/run/containerd/containerd.sock": no such file or directory; is containerd running`) ||
		strings.Contains(err.Error(), "\n") {
		t.Errorf("Check = %v", err)
	}
	if errors.Is(err, errNerdctlMissing) {
		t.Error("a down containerd reads as a missing binary")
	}
}
