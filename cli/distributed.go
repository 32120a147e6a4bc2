package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/skyward-sh/skyward/agent"
	"github.com/skyward-sh/skyward/cluster"
	"github.com/skyward-sh/skyward/executor"
	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/state"
)

// The distributed presets hand a task's pool to an existing engine:
// torch.distributed's environment on every node, an MPI hostfile and
// launcher on the head, or a Dask cluster whose client the task is.

// Ports of the presets' rendezvous on the head.
const (
	torchMasterPort   = 29500
	daskSchedulerPort = 8786
)

// accelerators is the count in a pool's accelerator ("A100:4" is 4, "T4"
// is 1), 0 without one.
func accelerators(p *hclspec.Pool) int {
	if p.Accelerator == "" {
		return 0
	}
	if _, n, ok := strings.Cut(p.Accelerator, ":"); ok {
		if c, err := strconv.Atoi(n); err == nil && c > 0 {
			return c
		}
	}
	return 1
}

// slotsPerNode is how many processes an engine starts on each node: the
// accelerators, else the whole vCPUs, at least 1.
func slotsPerNode(p *hclspec.Pool) int {
	if n := accelerators(p); n > 0 {
		return n
	}
	return max(int(math.Floor(p.VCPUs)), 1)
}

// distributedEnv adds a preset's variables to an execution's env on node
// (of the node addresses ips, head first). A variable the task's env sets
// is left as the task set it.
func distributedEnv(env map[string]string, t *hclspec.Task, p *hclspec.Pool, ips []string, node int) {
	set := func(k, v string) {
		if _, ok := t.Env[k]; !ok {
			env[k] = v
		}
	}
	n := len(ips)
	switch t.Distributed {
	case hclspec.DistributedTorch:
		nproc := max(accelerators(p), 1)
		set("MASTER_ADDR", ips[0])
		set("MASTER_PORT", strconv.Itoa(torchMasterPort))
		set("NNODES", strconv.Itoa(n))
		set("NODE_RANK", strconv.Itoa(node))
		set("NPROC_PER_NODE", strconv.Itoa(nproc))
		set("WORLD_SIZE", strconv.Itoa(n*nproc))
		if nproc == 1 {
			// One process a node: init_process_group("env://") works
			// without torchrun too.
			set("RANK", strconv.Itoa(node))
			set("LOCAL_RANK", "0")
		}
		// torchrun reads its arguments from PET_* variables.
		set("PET_NNODES", env["NNODES"])
		set("PET_NODE_RANK", env["NODE_RANK"])
		set("PET_NPROC_PER_NODE", env["NPROC_PER_NODE"])
		set("PET_MASTER_ADDR", env["MASTER_ADDR"])
		set("PET_MASTER_PORT", env["MASTER_PORT"])
	case hclspec.DistributedMPI:
		set("SKYWARD_HOSTFILE", agent.MPIDir+"/hostfile")
		// OpenMPI: start the daemons on the other nodes through skyward
		// (the head alone holds the way in, so no tree spawn), let root
		// run it, and use no cross-memory attach, which containers
		// forbid.
		set("OMPI_MCA_plm_rsh_agent", agent.BinaryPath+" agent rsh")
		set("OMPI_MCA_plm_rsh_no_tree_spawn", "1")
		// Without tree spawn, orted would daemonize and its rsh session
		// end at once; skyward's SSH server kills a session's process
		// group when its command exits, which can catch the forked
		// daemon before its setsid. Attached, each orted lives in its
		// session until mpirun ends it, and dies with it if mpirun does.
		set("OMPI_MCA_orte_leave_session_attached", "1")
		set("OMPI_ALLOW_RUN_AS_ROOT", "1")
		set("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
		set("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
		set("OMPI_MCA_rmaps_base_oversubscribe", "1")
		// MPICH's Hydra: the same launcher.
		set("HYDRA_LAUNCHER", "rsh")
		set("HYDRA_LAUNCHER_EXEC", agent.BinaryPath+" agent rsh")
	case hclspec.DistributedDask:
		set("DASK_SCHEDULER_ADDRESS", fmt.Sprintf("tcp://%s:%d", ips[0], daskSchedulerPort))
	}
}

// startEngine prepares the engine of a distributed task before its
// executions start, and returns what stops it afterwards.
func (m *Meta) startEngine(ctx context.Context, t *hclspec.Task, p *hclspec.Pool, nodes []*state.Resource, workers []*cluster.Worker) (stop func(), err error) {
	switch t.Distributed {
	case hclspec.DistributedMPI:
		return func() {}, m.prepareMPI(ctx, p, nodes, workers)
	case hclspec.DistributedDask:
		return m.startDask(ctx, t, p, nodes, workers)
	}
	return func() {}, nil
}

// prepareMPI writes the hostfile and the launcher's SSH configuration to
// the head: the pool's key and every node's endpoint on the private
// network with its pinned host key, so that mpirun there reaches the other
// nodes as the controller does.
func (m *Meta) prepareMPI(ctx context.Context, p *hclspec.Pool, nodes []*state.Resource, workers []*cluster.Worker) error {
	head := workers[0]
	if head.Err != nil {
		return head.Err
	}
	key, err := executor.PoolKey(m.keys(), p.Name)
	if err != nil {
		return err
	}
	cfg := agent.RSHConfig{Key: string(key), Hosts: map[string]agent.RSHHost{}}
	var hostfile strings.Builder
	slots := slotsPerNode(p)
	for _, r := range nodes {
		ip, _ := r.Attributes["private_ip"].(string)
		hostKey, _ := r.Attributes["host_key"].(string)
		user, _ := r.Attributes["ssh_user"].(string)
		if ip == "" || hostKey == "" {
			return fmt.Errorf("%s: no private address or host key in the state", r.Address)
		}
		cfg.Hosts[ip] = agent.RSHHost{Port: 22, User: user, HostKey: hostKey}
		fmt.Fprintf(&hostfile, "%s slots=%d\n", ip, slots)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	// One command: the configuration (0600: it holds the key) on standard
	// input, the hostfile (no secret) in the command.
	script := fmt.Sprintf("set -e; umask 077; mkdir -p %[1]s; cat > %[2]s.new; mv -f %[2]s.new %[2]s; printf %%s %[3]s > %[1]s/hostfile; chmod 0644 %[1]s/hostfile",
		agent.MPIDir, agent.RSHConfigFile, shellQuoteArg(hostfile.String()))
	if _, err := head.Client.OutputIn(ctx, head.Client.Sudo(script), bytes.NewReader(b)); err != nil {
		return fmt.Errorf("%s.node[0]: prepare mpi: %w", "pool."+p.Name, err)
	}
	return nil
}

func shellQuoteArg(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// tail keeps the last lines of an engine process's output, for errors.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) add(stream, line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > 10 {
		t.lines = t.lines[1:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// startDask starts a Dask scheduler on the head and a worker on every
// node, as executions of their own that end when the returned stop is
// called (the agents kill them), and waits until every worker joined.
func (m *Meta) startDask(ctx context.Context, t *hclspec.Task, p *hclspec.Pool, nodes []*state.Resource, workers []*cluster.Worker) (func(), error) {
	ips := make([]string, len(nodes))
	for i, r := range nodes {
		ips[i], _ = r.Attributes["private_ip"].(string)
	}
	addr := fmt.Sprintf("tcp://%s:%d", ips[0], daskSchedulerPort)
	run := randomHex(4)
	ectx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stop := func() { cancel(); wg.Wait() }
	start := func(w *cluster.Worker, what, script string) *tail {
		out := &tail{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := agent.ExecRequest{ID: fmt.Sprintf("%s-%s-%s", t.Name, what, run), Task: t.Name, Script: script,
				Env: map[string]string{"SKYWARD_POOL": p.Name, "SKYWARD_NODE": strconv.Itoa(w.Node)}}
			exit, err := cluster.Exec(ectx, w.Client, w.Token, req, out.add)
			if ectx.Err() == nil {
				out.add("", fmt.Sprintf("(%s ended: exit %v, %v)", what, exitCodeOf(exit), err))
			}
		}()
		return out
	}
	for _, w := range workers {
		if w.Err != nil {
			stop()
			return nil, w.Err
		}
	}
	sched := start(workers[0], "dask-scheduler", fmt.Sprintf(
		"if command -v dask-scheduler >/dev/null; then exec dask-scheduler --host %[1]s --port %[2]d --no-dashboard; fi; exec dask scheduler --host %[1]s --port %[2]d --no-dashboard",
		ips[0], daskSchedulerPort))
	nthreads := slotsPerNode(p)
	var tails []*tail
	for i, w := range workers {
		tails = append(tails, start(w, fmt.Sprintf("dask-worker-%d", i), fmt.Sprintf(
			"if command -v dask-worker >/dev/null; then exec dask-worker %[1]s --host %[2]s --nthreads %[3]d --name %[4]s/%[5]d --no-nanny; fi; exec dask worker %[1]s --host %[2]s --nthreads %[3]d --name %[4]s/%[5]d --no-nanny",
			addr, ips[i], nthreads, p.Name, i)))
	}
	// The task starts once every worker joined.
	wait := fmt.Sprintf("python3 -c 'from distributed import Client; c = Client(%q, timeout=120); c.wait_for_workers(%d, timeout=120)'", addr, len(workers))
	var out tail
	exit, err := cluster.Exec(ctx, workers[0].Client, workers[0].Token, agent.ExecRequest{ID: fmt.Sprintf("%s-dask-wait-%s", t.Name, run), Task: t.Name, Script: wait}, out.add)
	if err != nil || exit.ExitCode != 0 {
		stop()
		msg := fmt.Sprintf("dask: the cluster did not come up (%v, exit %v): %s\nscheduler: %s", err, exitCodeOf(exit), out.String(), sched.String())
		for i, tl := range tails {
			msg += fmt.Sprintf("\nworker %d: %s", i, tl.String())
		}
		return nil, fmt.Errorf("%s", msg)
	}
	return stop, nil
}

func exitCodeOf(e *cluster.ExecExit) any {
	if e == nil {
		return "none"
	}
	return e.ExitCode
}
