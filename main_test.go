package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/joshdk/go-junit"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/zclconf/go-cty/cty"

	"github.com/skyward-sh/skyward/cli"
	"github.com/skyward-sh/skyward/internal/mototest"
	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/providers/container"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"skyward": func() { os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
		// skyward-slowcreate is skyward whose container nodes take
		// $SKYWARD_TEST_CREATE_DELAY longer to come up after Create has
		// returned their id, as a cloud's instances do.
		"skyward-slowcreate": func() {
			delay, err := time.ParseDuration(os.Getenv("SKYWARD_TEST_CREATE_DELAY"))
			if err != nil {
				fmt.Fprintln(os.Stderr, "skyward-slowcreate: SKYWARD_TEST_CREATE_DELAY:", err)
				os.Exit(2)
			}
			reg := cli.DefaultRegistry()
			f := container.Factory()
			build := f.New
			f.New = func(cfg cty.Value) (providers.Provider, error) {
				p, err := build(cfg)
				return slowCreate{p, delay}, err
			}
			reg.Register(container.Type, f)
			os.Exit(cli.RunRegistry(reg, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
		},
		"skyward-slowrun": skywardSlowRun,
	})
}

// slowCreate is a provider whose nodes are not running when Create
// returns: Wait takes delay longer than the provider's own.
type slowCreate struct {
	providers.Provider
	delay time.Duration
}

func (s slowCreate) Create(ctx context.Context, r providers.Resource) (providers.Object, error) {
	o, err := s.Provider.Create(ctx, r)
	o.Running, o.SSH = false, providers.SSHEndpoint{}
	return o, err
}

func (s slowCreate) Wait(ctx context.Context, o providers.Object) (providers.Object, error) {
	select {
	case <-ctx.Done():
		return providers.Object{}, ctx.Err()
	case <-time.After(s.delay):
	}
	return s.Provider.(providers.Waiter).Wait(ctx, o)
}

// dockerUp reports whether a Docker daemon answers.
func dockerUp() bool {
	return exec.Command("docker", "info").Run() == nil
}

// podmanUp reports whether Podman can run nodes from image: the podman
// CLI works and has the image (testdata/mkbaseimage.sh --podman loads it).
func podmanUp(image string) error {
	if image == "" {
		return fmt.Errorf("no base image")
	}
	if out, err := exec.Command("podman", "image", "exists", image).CombinedOutput(); err != nil {
		return fmt.Errorf("podman image exists %s: %v %s (load it with testdata/mkbaseimage.sh --podman)", image, err, out)
	}
	return nil
}

// testEnv finds (or builds) the static agent binary and the base image the
// scripts give the container provider.
func testEnv(t *testing.T) (agent, image string) {
	t.Helper()
	agent = os.Getenv("SKYWARD_AGENT_BINARY")
	if agent == "" {
		agent = filepath.Join(t.TempDir(), "skyward")
		cmd := exec.Command("go", "build", "-o", agent, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build static skyward: %v\n%s", err, out)
		}
	}
	image = os.Getenv("SKYWARD_TEST_IMAGE")
	if image == "" && dockerUp() {
		out, err := exec.Command("bash", "testdata/mkbaseimage.sh").Output()
		if err != nil {
			t.Fatalf("build base image: %v", err)
		}
		image = strings.TrimSpace(string(out))
	}
	return agent, image
}

func TestScripts(t *testing.T) {
	testscript.Run(t, scriptParams(t, "testdata/script", variant{}))
}

// variant is how a run of the scripts differs from the plain one.
type variant struct {
	openssh bool   // nodes on the image's OpenSSH
	runtime string // the container runtime's CLI: "docker" (default) or "podman"
}

// rewriteScripts writes each named script into a new directory with
// every provider "container" block given the extra lines; a name with the
// suffix _openssh also puts the nodes on OpenSSH as ubuntu.
func rewriteScripts(t *testing.T, names []string, extra string) string {
	dir := t.TempDir()
	for _, name := range names {
		src, add := name, extra
		if base, ok := strings.CutSuffix(name, "_openssh"); ok {
			src, add = base, extra+"  ssh  = \"openssh\"\n  user = \"ubuntu\"\n"
		}
		a, err := txtar.ParseFile(filepath.Join("testdata/script", src+".txtar"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for i, f := range a.Files {
			if !strings.HasSuffix(f.Name, ".hcl") {
				continue
			}
			data := strings.ReplaceAll(string(f.Data), "provider \"container\" {\n", "provider \"container\" {\n"+add)
			if data != string(f.Data) {
				n++
			}
			a.Files[i].Data = []byte(data)
		}
		if n == 0 {
			t.Fatalf("%s: no provider \"container\" block to rewrite", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".txtar"), txtar.Format(a), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// openSSHScripts run a second time with every container node on the
// image's own OpenSSH server, logging in as ubuntu, as on a cloud VM: host
// keys pinned at first contact, the agent uploaded over SSH, every
// bootstrap step through sudo.
var openSSHScripts = []string{
	"apply_fresh_pool", "apply_bootstrap", "apply_bootstrap_failure", "apply_killed", "apply_ttl",
	"apply_prebaked", "plan_drift", "run_executions", "run_failures", "run_lost", "run_stream_interrupt",
	"apply_killed_setup",
}

func TestScriptsOpenSSH(t *testing.T) {
	testscript.Run(t, scriptParams(t, rewriteScripts(t, openSSHScripts, "  ssh  = \"openssh\"\n  user = \"ubuntu\"\n"), variant{openssh: true}))
}

// podmanScripts run again with binary = "podman": apply, bootstrap, a
// broadcast run, destroy, an apply killed with SIGKILL, a prebaked image,
// drift, a node lost mid-run, a ttl, resizing, interrupts, the session
// guard, a changed host key; those with the suffix _openssh on the
// image's OpenSSH as ubuntu. (ssh_live_endpoint is Docker's: Podman keeps
// a container's host port when it starts again.)
var podmanScripts = []string{
	"apply_fresh_pool", "apply_bootstrap", "apply_bootstrap_failure", "apply_killed", "apply_prebaked",
	"plan_drift", "run_executions", "run_failures", "run_lost", "apply_ttl", "apply_pool_resize", "run_summary", "apply_killed_waiting", "apply_interrupted", "run_stream_interrupt", "ssh_session_guard", "ssh_host_key_changed", "apply_join_checked",
	"apply_fresh_pool_openssh", "run_executions_openssh",
}

// TestScriptsPodman runs the core scripts on Podman, whose service the
// provider starts when it is not running. In CI, Podman must be there.
func TestScriptsPodman(t *testing.T) {
	testscript.Run(t, scriptParams(t, rewriteScripts(t, podmanScripts, "  binary = \"podman\"\n"), variant{runtime: "podman"}))
}

// scriptParams are the testscript parameters of the scripts in dir.
func scriptParams(t *testing.T, dir string, v variant) testscript.Params {
	agent, image := testEnv(t)
	docker := dockerUp()
	if v.runtime == "" {
		v.runtime = "docker"
	}
	// podman: scripts may also use Podman (the plain run's condition
	// podman); in CI it must be there.
	podman := false
	if docker {
		err := podmanUp(image)
		if err != nil && os.Getenv("CI") != "" {
			t.Fatalf("Podman is required in CI: %v", err)
		}
		podman = err == nil
	}
	if v.runtime == "podman" {
		// The scripts' condition docker means: the runtime can run nodes.
		docker = podman
	}
	examples, err := filepath.Abs("examples")
	if err != nil {
		t.Fatal(err)
	}
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	repo, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	// Scripts that build skyward (make install, go install) share this
	// process's Go caches instead of filling new ones under $HOME.
	goEnv := map[string]string{}
	if out, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOFLAGS").Output(); err == nil {
		vals := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
		for i, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOFLAGS"} {
			if i < len(vals) && vals[i] != "" {
				goEnv[k] = vals[i]
			}
		}
	}
	if !docker && os.Getenv("CI") != "" {
		t.Fatal("Docker is not reachable, and CI is set: the Docker scripts must run in CI")
	}
	// One moto server for every script that needs S3; each script gets
	// its own bucket name.
	moto, motoOK := startMoto(t)
	var bucketN int
	return testscript.Params{
		Dir:                 dir,
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("SKYWARD_AGENT_BINARY", agent)
			env.Setenv("BASE_IMAGE", image)
			env.Setenv("SKYWARD_VAR_base_image", image)
			env.Setenv("HOME", env.WorkDir)
			env.Setenv("EXAMPLES", examples)
			env.Setenv("TESTDATA", testdata)
			env.Setenv("REPO", repo)
			env.Setenv("SKYWARD_TEST_RUNTIME", v.runtime)
			for k, v := range goEnv {
				env.Setenv(k, v)
			}
			for _, k := range []string{"DOCKER_HOST", "CONTAINER_HOST", "XDG_RUNTIME_DIR", "PATH"} {
				if v := os.Getenv(k); v != "" {
					env.Setenv(k, v)
				}
			}
			if motoOK {
				for _, kv := range mototest.Env {
					k, v, _ := strings.Cut(kv, "=")
					env.Setenv(k, v)
				}
				bucketN++
				env.Setenv("MOTO_ENDPOINT", moto.Endpoint)
				env.Setenv("BUCKET", fmt.Sprintf("skyward-script-%d-%d", time.Now().UnixNano()%1e8, bucketN))
				env.Setenv("SKYWARD_STATE_KEY", "a passphrase for the scripts only")
			}
			work := env.WorkDir
			env.Defer(func() { sweep(v.runtime, work) })
			if isAWSScript(work) && docker {
				return awsSetup(t, env, image)
			}
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "docker":
				return docker, nil
			case "openssh":
				return v.openssh, nil
			case "podman":
				return podman, nil
			case "moto":
				return motoOK, nil
			case "aws":
				return motoOK && docker && image != "", nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"objects":       cmdObjects,
			"rm-node":       cmdRmNode,
			"stop-node":     cmdStopNode,
			"node-inspect":  cmdNodeInspect,
			"wait-objects":  cmdWaitObjects,
			"wait-file":     cmdWaitFile,
			"node-wait":     cmdNodeWait,
			"kill-node":     cmdKillNode,
			"mkbucket":      cmdMkbucket,
			"s3-get":        cmdS3Get,
			"wait-s3":       cmdWaitS3,
			"lock-id":       cmdLockID,
			"expand":        cmdExpand,
			"junit":         cmdJUnit,
			"junit-failure": cmdJUnitFailure,
			"node-exec":     cmdNodeExec,
			"start-node":    cmdStartNode,
			"baked-clean":   cmdBakedClean,
			"wait-state":    cmdWaitState,
			"runpod":        cmdRunPod,
			"ec2-count":     cmdEC2Count,
			"ec2-wait":      cmdEC2Wait,
			"ec2-terminate": cmdEC2Terminate,
		},
	}
}

// lineageOf reads the lineage of the state in dir: the local one, or the
// one in moto's bucket when the directory was initialized with s3.
func lineageOf(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, ".skyward", "state.json"))
	if err != nil {
		b, err = remoteState(dir)
	}
	if err != nil {
		return ""
	}
	var st struct{ Lineage string }
	json.Unmarshal(b, &st)
	return st.Lineage
}

// runtimeCLI is the container runtime's CLI the script's nodes run on:
// docker or podman.
func runtimeCLI(ts *testscript.TestScript) string {
	if r := ts.Getenv("SKYWARD_TEST_RUNTIME"); r != "" {
		return r
	}
	return "docker"
}

// dockerIDs lists, through the runtime's CLI (docker or podman), the
// containers or networks carrying a lineage (and, optionally, an address)
// label.
func dockerIDs(cli, kind, lineage, addr string) ([]string, error) {
	args := []string{kind, "ls", "-q", "--filter", "label=skyward.lineage=" + lineage}
	if kind == "image" {
		args = []string{"images", "-q", "--filter", "label=skyward.lineage=" + lineage}
	}
	if kind == "container" {
		args = append(args, "-a")
	}
	if addr != "" {
		args = append(args, "--filter", "label=skyward.address="+addr)
	}
	out, err := exec.Command(cli, args...).Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", cli, strings.Join(args, " "), err)
	}
	return strings.Fields(string(out)), nil
}

// sweep removes every container and network of the lineages in dir and
// its subdirectories, so that a failed script leaks nothing.
func sweep(cli, dir string) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() || d.Name() != ".skyward" {
			return nil
		}
		lin := lineageOf(filepath.Dir(p))
		if lin == "" {
			return nil
		}
		if ids, _ := dockerIDs(cli, "container", lin, ""); len(ids) > 0 {
			exec.Command(cli, append([]string{"rm", "-f", "-v"}, ids...)...).Run()
		}
		if ids, _ := dockerIDs(cli, "network", lin, ""); len(ids) > 0 {
			exec.Command(cli, append([]string{"network", "rm"}, ids...)...).Run()
		}
		if ids, _ := dockerIDs(cli, "image", lin, ""); len(ids) > 0 {
			exec.Command(cli, append([]string{"rmi", "-f"}, ids...)...).Run()
		}
		return filepath.SkipDir
	})
}

// objects KIND N: the working directory's lineage has N containers or
// networks.
func cmdObjects(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 || (args[0] != "container" && args[0] != "network" && args[0] != "image") {
		ts.Fatalf("usage: objects container|network|image N")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	lin := lineageOf(ts.Getenv("WORK"))
	if lin == "" {
		ts.Fatalf("no state with a lineage in $WORK")
	}
	ids, err := dockerIDs(runtimeCLI(ts), args[0], lin, "")
	ts.Check(err)
	if (len(ids) == want) == neg {
		ts.Fatalf("%d %ss of lineage %s, want %s%d", len(ids), args[0], lin, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// wait-objects KIND N: wait (up to 60s) until the lineage has N objects.
func cmdWaitObjects(ts *testscript.TestScript, neg bool, args []string) {
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if lin := lineageOf(ts.Getenv("WORK")); lin != "" {
			if ids, _ := dockerIDs(runtimeCLI(ts), args[0], lin, ""); len(ids) >= want {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("timed out waiting for %d %ss", want, args[0])
}

// wait-file PATH [REGEXP]: wait (up to 60s) until PATH exists and, with
// REGEXP, until its content matches it.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: wait-file PATH [REGEXP]")
	}
	var re *regexp.Regexp
	if len(args) == 2 {
		re = regexp.MustCompile(args[1])
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(ts.MkAbs(args[0])); err == nil && (re == nil || re.Match(b)) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("timed out waiting for %s", strings.Join(args, " "))
}

// node-wait ADDRESS PATH: wait (up to 60s) until PATH exists in a node's
// container.
func cmdNodeWait(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: node-wait ADDRESS PATH")
	}
	id := nodeContainer(ts, args[0])
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if exec.Command(runtimeCLI(ts), "exec", id, "test", "-e", args[1]).Run() == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("timed out waiting for %s on %s", args[1], args[0])
}

// kill-node ADDRESS: kill a node's container, as a crashed machine.
func cmdKillNode(ts *testscript.TestScript, neg bool, args []string) {
	ts.Check(exec.Command(runtimeCLI(ts), "kill", nodeContainer(ts, args[0])).Run())
}

// rm-node ADDRESS: remove a node's container by hand.
func cmdRmNode(ts *testscript.TestScript, neg bool, args []string) {
	ts.Check(exec.Command(runtimeCLI(ts), "rm", "-f", nodeContainer(ts, args[0])).Run())
}

// start-node ADDRESS: start a stopped node's container by hand.
func cmdStartNode(ts *testscript.TestScript, neg bool, args []string) {
	ts.Check(exec.Command(runtimeCLI(ts), "start", nodeContainer(ts, args[0])).Run())
}

// stop-node ADDRESS: stop a node's container by hand.
func cmdStopNode(ts *testscript.TestScript, neg bool, args []string) {
	ts.Check(exec.Command(runtimeCLI(ts), "stop", "-t", "1", nodeContainer(ts, args[0])).Run())
}

// nodeContainer returns the id of the container of a node address.
func nodeContainer(ts *testscript.TestScript, addr string) string {
	ids, err := dockerIDs(runtimeCLI(ts), "container", lineageOf(ts.Getenv("WORK")), addr)
	ts.Check(err)
	if len(ids) != 1 {
		ts.Fatalf("%d containers for %s, want 1", len(ids), addr)
	}
	return ids[0]
}

// node-inspect ADDRESS FORMAT: print `docker inspect -f FORMAT` of a node's
// container to stdout.
func cmdNodeInspect(ts *testscript.TestScript, neg bool, args []string) {
	var out bytes.Buffer
	format := args[1]
	if runtimeCLI(ts) == "podman" {
		// podman's templates see Go field names where docker's see JSON.
		format = strings.ReplaceAll(format, ".HostIp", ".HostIP")
	}
	cmd := exec.Command(runtimeCLI(ts), "inspect", "-f", format, nodeContainer(ts, args[0]))
	cmd.Stdout = &out
	ts.Check(cmd.Run())
	ts.Stdout().Write(out.Bytes())
}

// node-exec ADDRESS COMMAND...: run a command as root in a node's
// container, behind skyward's back.
func cmdNodeExec(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: node-exec ADDRESS COMMAND...")
	}
	out, err := exec.Command(runtimeCLI(ts), append([]string{"exec", "-u", "0", nodeContainer(ts, args[0])}, args[1:]...)...).CombinedOutput()
	ts.Stdout().Write(out)
	if (err != nil) != neg {
		ts.Fatalf("node-exec %s: %v", strings.Join(args, " "), err)
	}
}

// wait-state STATUS N: wait (up to 60s) until the state in $WORK has N
// nodes with that status.
func cmdWaitState(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: wait-state STATUS N")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var st struct {
			Resources []struct{ Type, Status string }
		}
		if b, err := os.ReadFile(filepath.Join(ts.Getenv("WORK"), ".skyward", "state.json")); err == nil && json.Unmarshal(b, &st) == nil {
			n := 0
			for _, r := range st.Resources {
				if r.Type == "node" && r.Status == args[0] {
					n++
				}
			}
			if n == want {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("timed out waiting for %d nodes %s in the state", want, args[0])
}

// motoServer is the moto server of this test binary's scripts, if any.
var motoServer *mototest.Server

// startMoto starts moto for the scripts that need S3. Without python3 and
// moto those scripts skip, except in CI, where the test fails.
func startMoto(t *testing.T) (*mototest.Server, bool) {
	if ok, why := mototest.Available(); !ok {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s, and CI=true: the S3 scripts must run in CI (.ci/run installs moto)", why)
		}
		t.Logf("S3 scripts skip: %s", why)
		return nil, false
	}
	s, err := mototest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	motoServer = s
	return s, true
}

// remoteState reads the state object of a directory initialized with the
// s3 backend, from moto.
func remoteState(dir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, ".skyward", "backend.json"))
	if err != nil || motoServer == nil {
		return nil, fmt.Errorf("no remote state")
	}
	var rec struct{ Type, Bucket, Key string }
	if err := json.Unmarshal(b, &rec); err != nil || rec.Type != "s3" {
		return nil, fmt.Errorf("no remote state")
	}
	return s3Object(rec.Bucket, rec.Key)
}

func s3Object(bucket, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := motoServer.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// mkbucket [versioned]: create the script's bucket $BUCKET in moto.
func cmdMkbucket(ts *testscript.TestScript, neg bool, args []string) {
	ts.Check(motoServer.CreateBucket(ts.Getenv("BUCKET"), len(args) == 1 && args[0] == "versioned"))
}

// s3-get KEY: print an object of $BUCKET to stdout; with !, it must not
// exist.
func cmdS3Get(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: s3-get KEY")
	}
	b, err := s3Object(ts.Getenv("BUCKET"), args[0])
	if neg {
		if err == nil {
			ts.Fatalf("s3://%s/%s exists", ts.Getenv("BUCKET"), args[0])
		}
		return
	}
	ts.Check(err)
	ts.Stdout().Write(b)
}

// wait-s3 KEY: wait (up to 60s) until an object of $BUCKET exists.
func cmdWaitS3(ts *testscript.TestScript, neg bool, args []string) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := s3Object(ts.Getenv("BUCKET"), args[0]); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("timed out waiting for s3://%s/%s", ts.Getenv("BUCKET"), args[0])
}

// lock-id KEY VAR: set VAR to the ID of the lock object KEY of $BUCKET.
func cmdLockID(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: lock-id KEY VAR")
	}
	b, err := s3Object(ts.Getenv("BUCKET"), args[0])
	ts.Check(err)
	var info struct{ ID string }
	ts.Check(json.Unmarshal(b, &info))
	if info.ID == "" {
		ts.Fatalf("lock %s has no ID: %s", args[0], b)
	}
	ts.Setenv(args[1], info.ID)
}

// expand FILE...: replace ${VAR} in files with the script's environment.
func cmdExpand(ts *testscript.TestScript, neg bool, args []string) {
	for _, f := range args {
		b, err := os.ReadFile(ts.MkAbs(f))
		ts.Check(err)
		out := os.Expand(string(b), func(k string) string {
			if v := ts.Getenv(k); v != "" {
				return v
			}
			return "${" + k + "}"
		})
		ts.Check(os.WriteFile(ts.MkAbs(f), []byte(out), 0o644))
	}
}

// junit FILE SUITES TESTS FAILURES ERRORS: FILE is a JUnit XML report that
// a JUnit reader (github.com/joshdk/go-junit) reads with these counts, and
// that has every attribute the JUnit (Ant) schema requires.
func cmdJUnit(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 5 {
		ts.Fatalf("usage: junit FILE SUITES TESTS FAILURES ERRORS")
	}
	path := ts.MkAbs(args[0])
	suites, err := junit.IngestFile(path)
	ts.Check(err)
	var tests, failures, errs int
	for _, s := range suites {
		for _, t := range s.Tests {
			tests++
			switch t.Status {
			case junit.StatusFailed:
				failures++
			case junit.StatusError:
				errs++
			}
		}
	}
	got := fmt.Sprintf("%d %d %d %d", len(suites), tests, failures, errs)
	if want := strings.Join(args[1:], " "); got != want {
		ts.Fatalf("%s: suites, tests, failures, errors = %s, want %s", args[0], got, want)
	}
	b, err := os.ReadFile(path)
	ts.Check(err)
	ts.Check(checkJUnitSchema(b))
}

// checkJUnitSchema checks the structure and the required attributes of the
// JUnit XSD (testsuite: name, tests, failures, errors, time, timestamp,
// hostname; testcase: name, classname, time), and their types.
func checkJUnitSchema(b []byte) error {
	var doc struct {
		XMLName xml.Name `xml:"testsuites"`
		Suites  []struct {
			Attrs []xml.Attr `xml:",any,attr"`
			Cases []struct {
				Attrs   []xml.Attr `xml:",any,attr"`
				Failure []struct {
					Message *string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	attrs := func(as []xml.Attr) map[string]string {
		m := map[string]string{}
		for _, a := range as {
			m[a.Name.Local] = a.Value
		}
		return m
	}
	decimal := regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
	integer := regexp.MustCompile(`^[0-9]+$`)
	stamp := regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$`)
	for i, s := range doc.Suites {
		a := attrs(s.Attrs)
		for k, re := range map[string]*regexp.Regexp{"tests": integer, "failures": integer, "errors": integer, "time": decimal, "timestamp": stamp} {
			if !re.MatchString(a[k]) {
				return fmt.Errorf("junit: testsuite %d: attribute %s = %q", i, k, a[k])
			}
		}
		if a["name"] == "" || a["hostname"] == "" {
			return fmt.Errorf("junit: testsuite %d lacks name or hostname", i)
		}
		for j, c := range s.Cases {
			ca := attrs(c.Attrs)
			if ca["name"] == "" || ca["classname"] == "" || !decimal.MatchString(ca["time"]) {
				return fmt.Errorf("junit: testsuite %d testcase %d: name %q classname %q time %q", i, j, ca["name"], ca["classname"], ca["time"])
			}
			for _, f := range c.Failure {
				if f.Message == nil {
					return fmt.Errorf("junit: testsuite %d testcase %d: failure without message", i, j)
				}
			}
		}
	}
	return nil
}

// junit-failure FILE CASE REGEXP: the test case CASE of a JUnit report
// failed with a message that matches REGEXP.
func cmdJUnitFailure(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: junit-failure FILE CASE REGEXP")
	}
	suites, err := junit.IngestFile(ts.MkAbs(args[0]))
	ts.Check(err)
	re := regexp.MustCompile(args[2])
	for _, s := range suites {
		for _, t := range s.Tests {
			if t.Name != args[1] {
				continue
			}
			if t.Status != junit.StatusFailed || !re.MatchString(t.Message) {
				ts.Fatalf("test case %s: status %s, message %q; want a failure matching %s", t.Name, t.Status, t.Message, args[2])
			}
			return
		}
	}
	ts.Fatalf("no test case %s in %s", args[1], args[0])
}

// runLimits are the flags a container the scripts run by hand needs on
// the runtime: on podman, process limits within this host's (its defaults
// exceed what a locked-down host grants), as the provider sets them.
func runLimits(ts *testscript.TestScript) []string {
	if runtimeCLI(ts) != "podman" {
		return nil
	}
	var nofile syscall.Rlimit
	ts.Check(syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile))
	return []string{"--ulimit", fmt.Sprintf("nofile=%d:%d", nofile.Cur, nofile.Max), "--ulimit", "nproc=2048:2048"}
}

// baked-clean POOL: every image baked by the lineage in $WORK, run as a
// container, holds no secret: no SSH host key or authorized key, no agent
// config or env file, and neither POOL's token nor its env values
// anywhere under /opt, /etc, /root or /home.
func cmdBakedClean(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: baked-clean POOL")
	}
	ids, err := dockerIDs(runtimeCLI(ts), "image", lineageOf(ts.Getenv("WORK")), "")
	ts.Check(err)
	if len(ids) == 0 {
		ts.Fatalf("no baked image of this lineage")
	}
	token, err := os.ReadFile(filepath.Join(ts.Getenv("WORK"), ".skyward", "keys", args[0], "token"))
	ts.Check(err)
	script := `find / -xdev \( -name 'ssh_host_*' -o -name authorized_keys -o -name agent.json -o -name env.json -o -name agent.log \) -print 2>/dev/null; ` +
		`grep -rlF -e "$1" -e env-value-not-for-images /opt /etc /root /home 2>/dev/null; true`
	for _, id := range ids {
		run := append([]string{"run", "--rm"}, runLimits(ts)...)
		out, err := exec.Command(runtimeCLI(ts), append(run, "--entrypoint", "/bin/sh", id, "-c", script, "sh", strings.TrimSpace(string(token)))...).CombinedOutput()
		if err != nil {
			ts.Fatalf("docker run %s: %v\n%s", id, err, out)
		}
		if found := strings.TrimSpace(string(out)); found != "" {
			ts.Fatalf("baked image %s holds secrets:\n%s", id, found)
		}
	}
}
