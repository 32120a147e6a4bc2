package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/skyward-sh/skyward/agent"
	"github.com/skyward-sh/skyward/cluster"
	"github.com/skyward-sh/skyward/executor"
	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/state"
)

// runReport is one task's outcome, the JSON object of `skyward run -json`.
type runReport struct {
	Task       string         `json:"task"`
	Mode       string         `json:"mode"`
	OK         bool           `json:"ok"`
	Executions []runExecution `json:"executions"`
}

type runExecution struct {
	Node       int             `json:"node"`
	Key        json.RawMessage `json:"key"`
	ExitCode   *int            `json:"exit_code"`
	Stdout     string          `json:"stdout"`
	Stderr     string          `json:"stderr"`
	Result     json.RawMessage `json:"result"`
	DurationMS int64           `json:"duration_ms"`
	Cancelled  bool            `json:"cancelled,omitempty"`
	Lost       bool            `json:"lost,omitempty"`
	TimedOut   bool            `json:"timed_out,omitempty"`
	Attempts   int             `json:"attempts"`
	Error      string          `json:"error,omitempty"`
}

func runRun(m *Meta, args []string) error {
	fs := newFlagSet("run")
	jsonOut := fs.Bool("json", false, "Print one JSON object a task once the tasks are done (an array for several).")
	ephemeral := fs.Bool("ephemeral", false, "Apply first (no prompt), and afterwards destroy what this run created, even when the run failed.")
	var lock bool
	var lockTimeout time.Duration
	registerLockFlags(fs, &lock, &lockTimeout)
	fs.Bool("input", true, "Accepted for Terraform's CI scripts; run never asks for input.")
	var vars varFlags
	vars.register(fs)
	names, _, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	// The first interrupt cancels the executions on the nodes.
	ctx, cancel := m.untilStop()
	defer cancel()

	cfg, err := m.loadConfig(&vars, nil)
	if err != nil {
		return err
	}
	if err := checkTaskNames(cfg, names); err != nil {
		return err
	}

	if *ephemeral {
		// apply and destroy report on stderr when stdout carries JSON.
		sub := *m
		sub.Stop = nil // an interrupted run still destroys
		if *jsonOut {
			sub.Stdout = m.Stderr
		}
		flags := []string{"-auto-approve", fmt.Sprintf("-lock=%t", lock), "-lock-timeout=" + lockTimeout.String()}
		for _, v := range vars.vars {
			flags = append(flags, "-var", v)
		}
		for _, f := range vars.files {
			flags = append(flags, "-var-file", f)
		}
		before, err := m.readState()
		if err != nil {
			return err
		}
		defer func() {
			if derr := m.destroyCreated(&sub, before, flags); derr != nil {
				fmt.Fprintf(m.Stderr, "%s destroy after the run: %v\n", m.errorPrefix(), derr)
			}
		}()
		applied := sub
		applied.Stop = m.Stop
		if err := runApply(&applied, flags); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return exitCodeError{exitInterrupted}
		}
	}

	st, err := m.readState()
	if err != nil {
		return err
	}
	st = m.liveState(st)
	// Tasks may read pool attributes: load again with them known.
	if cfg, err = m.loadConfig(&vars, poolValues(st)); err != nil {
		return err
	}
	// The pools stay as they are while their tasks run: an apply or
	// destroy that would touch their nodes is refused meanwhile.
	release := func() {}
	if lock {
		if release, err = m.shareRunLocks(ctx, cfg, names, lockTimeout); err != nil {
			return err
		}
	}
	defer release()
	var reports []*runReport
	code := 0
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		rep, err := m.runTask(ctx, cfg, st, cfg.Tasks[name], !*jsonOut)
		if err != nil {
			return fmt.Errorf("task %q: %w", name, err)
		}
		reports = append(reports, rep)
		code = max(code, reportExitCode(rep))
	}
	release()
	if *jsonOut {
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		var v any = reports
		if len(reports) == 1 {
			v = reports[0]
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(m.Stderr, "Interrupted: the executions on the nodes were cancelled.")
		return exitCodeError{exitInterrupted}
	}
	if code != 0 {
		return exitCodeError{code}
	}
	return nil
}

// destroyCreated destroys, after run -ephemeral, what is in the state now
// but was not in before: a pool that existed before the run stays, and so
// do its nodes that existed; the output says what was kept.
func (m *Meta) destroyCreated(sub *Meta, before *state.State, flags []string) error {
	after, err := m.readState()
	if err != nil || after == nil {
		return err
	}
	existed := map[string]bool{}
	if before != nil {
		for _, r := range before.Resources {
			existed[r.Address] = true
		}
	}
	createdPools := map[string]bool{}
	for _, r := range after.Resources {
		if r.Type == string(providers.KindPool) && !existed[r.Address] {
			createdPools[r.Pool] = true
		}
	}
	var targets []string
	keptNodes := map[string]int{}
	var keptPools []string
	for _, r := range after.Resources {
		switch {
		case existed[r.Address] && r.Type == string(providers.KindPool):
			keptPools = append(keptPools, r.Pool)
		case existed[r.Address]:
			keptNodes[r.Pool]++
		case r.Type == string(providers.KindPool):
			targets = append(targets, r.Address)
		case !createdPools[r.Pool]:
			targets = append(targets, r.Address)
		}
	}
	if len(keptPools) > 0 {
		var kept []string
		for _, p := range keptPools {
			kept = append(kept, fmt.Sprintf("pool.%s and %d of its nodes", p, keptNodes[p]))
		}
		fmt.Fprintf(sub.Stdout, "\nKeeping %s: they existed before this run, and run -ephemeral destroys only what it created.\n",
			strings.Join(kept, ", "))
	}
	if len(targets) == 0 {
		return nil
	}
	args := append([]string{}, flags...)
	for _, t := range targets {
		args = append(args, "-target", t)
	}
	return runDestroy(sub, args)
}

// checkTaskNames makes sure every name is a task of cfg.
func checkTaskNames(cfg *hclspec.Config, names []string) error {
	declared := make([]string, 0, len(cfg.Tasks))
	for n := range cfg.Tasks {
		declared = append(declared, n)
	}
	sort.Strings(declared)
	list := strings.Join(declared, ", ")
	if list == "" {
		list = "none"
	}
	if len(names) == 0 {
		return fmt.Errorf("skyward run needs the names of the tasks to run; the config declares: %s", list)
	}
	for _, n := range names {
		if _, ok := cfg.Tasks[n]; !ok {
			return fmt.Errorf("task %q is not declared; the config declares: %s", n, list)
		}
	}
	return nil
}

// reportExitCode is the run's exit code for one task: the highest exit
// code of an execution that failed (1 for one lost with its node), 0 when
// all succeeded; cancelled executions do not count.
func reportExitCode(rep *runReport) int {
	code := 0
	for _, e := range rep.Executions {
		switch {
		case e.Cancelled:
		case e.ExitCode != nil:
			code = max(code, *e.ExitCode)
		default:
			code = max(code, 1)
		}
	}
	return code
}

// poolNodes returns the records of a pool's nodes in index order, or an
// error when the pool is not applied and ready as configured.
func poolNodes(st *state.State, pool *hclspec.Pool) ([]*state.Resource, error) {
	notApplied := fmt.Errorf("pool %q is not applied: run skyward apply first, or skyward run -ephemeral", pool.Name)
	if st == nil {
		return nil, notApplied
	}
	nodes := make([]*state.Resource, pool.Nodes)
	found := 0
	for _, r := range st.Resources {
		if r.Type != string(providers.KindNode) || r.Pool != pool.Name || r.Index == nil || strings.Contains(r.Address, "#") {
			continue
		}
		if *r.Index >= pool.Nodes {
			return nil, fmt.Errorf("pool %q has %s in the state but the config wants %d nodes: run skyward apply first", pool.Name, r.Address, pool.Nodes)
		}
		if r.Status != state.StatusReady {
			return nil, fmt.Errorf("pool %q is not ready (%s is %s): run skyward apply first", pool.Name, r.Address, r.Status)
		}
		nodes[*r.Index] = r
		found++
	}
	switch {
	case found == 0:
		return nil, notApplied
	case found < pool.Nodes:
		return nil, fmt.Errorf("pool %q has %d of its %d nodes: run skyward apply first", pool.Name, found, pool.Nodes)
	}
	return nodes, nil
}

// runTask runs one task on its pool and reports its executions; stream
// says whether output lines are printed as they come, with a summary at
// the end.
func (m *Meta) runTask(ctx context.Context, cfg *hclspec.Config, st *state.State, t *hclspec.Task, stream bool) (*runReport, error) {
	pool := cfg.Pools[t.Pool]
	if pool == nil {
		return nil, fmt.Errorf("pool %q is not declared", t.Pool)
	}
	if t.Incomplete {
		return nil, fmt.Errorf("it reads pool attributes that are not known: run skyward apply first")
	}
	nodes, err := poolNodes(st, pool)
	if err != nil {
		return nil, err
	}
	workers, err := m.dialWorkers(ctx, pool, nodes)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, w := range workers {
			if w.Client != nil {
				w.Client.Close()
			}
		}
	}()
	jobs, keys, err := taskJobs(t, pool, nodes)
	if err != nil {
		return nil, err
	}
	stopEngine, err := m.startEngine(ctx, t, pool, nodes, workers)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", t.Name, err)
	}
	defer stopEngine()

	d := &cluster.Dispatcher{Workers: workers, Retries: t.Retries, FailFast: t.FailFast && t.Mode == "broadcast"}
	var mu sync.Mutex
	if stream {
		d.Output = func(job, node int, s, line string) {
			w := m.Stdout
			if s == "stderr" {
				w = m.Stderr
			}
			mu.Lock()
			fmt.Fprintf(w, "[%s/%d] %s\n", pool.Name, node, line)
			mu.Unlock()
		}
	}
	start := time.Now()
	outcomes := d.Run(ctx, jobs)
	rep := &runReport{Task: t.Name, Mode: t.Mode, OK: true, Executions: make([]runExecution, len(outcomes))}
	if rep.Mode == "" {
		rep.Mode = "single"
	}
	for i, o := range outcomes {
		e := runExecution{Node: o.Node, Key: keys[i], Stdout: o.Stdout, Stderr: o.Stderr, Result: json.RawMessage("null"),
			DurationMS: o.Elapsed.Milliseconds(), Cancelled: o.Cancelled, Lost: o.Lost, Attempts: o.Attempts}
		if o.Exit != nil {
			code := o.Exit.ExitCode
			e.ExitCode, e.TimedOut, e.Error = &code, o.Exit.TimedOut, o.Exit.Error
			e.DurationMS = o.Exit.Duration.Milliseconds()
			e.Result = resultJSON(o.Exit.Result)
		} else if o.Err != nil {
			e.Error = o.Err.Error()
		}
		if o.Failed() {
			rep.OK = false
		}
		rep.Executions[i] = e
	}
	if stream {
		label := rep.Mode
		switch {
		case t.HasCount:
			label = "count"
		case t.HasForEach:
			label = "for_each"
		}
		m.printRunSummary(rep, label, pool.Name, time.Since(start))
	}
	return rep, nil
}

// dialWorkers connects to every node of the pool at once. A node that
// cannot be reached is a worker with Err set: nothing runs there.
func (m *Meta) dialWorkers(ctx context.Context, pool *hclspec.Pool, nodes []*state.Resource) ([]*cluster.Worker, error) {
	token, err := executor.PoolToken(m.keys(), pool.Name)
	if err != nil {
		return nil, err
	}
	workers := make([]*cluster.Worker, len(nodes))
	var wg sync.WaitGroup
	for i, r := range nodes {
		workers[i] = &cluster.Worker{Node: i, Slots: max(pool.Concurrency, 1), Token: token}
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			if r.Attributes["running"] == false {
				workers[i].Err = fmt.Errorf("%s is stopped on its provider; skyward apply starts it again", r.Address)
				return
			}
			cl, err := executor.DialNode(dctx, m.keys(), r)
			workers[i].Client, workers[i].Err = cl, err
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		for _, w := range workers {
			if w.Client != nil {
				w.Client.Close()
			}
		}
		return nil, ctx.Err()
	}
	return workers, nil
}

// taskJobs builds a task's executions and the JSON key of each (null
// without for_each or count).
func taskJobs(t *hclspec.Task, pool *hclspec.Pool, nodes []*state.Resource) ([]cluster.Job, []json.RawMessage, error) {
	n := len(nodes)
	ips := make([]string, n)
	for i, r := range nodes {
		ips[i], _ = r.Attributes["private_ip"].(string)
	}
	runID := randomHex(4)
	base := func(node int, id string) map[string]string {
		env := make(map[string]string, len(t.Env)+16)
		for k, v := range t.Env {
			env[k] = v
		}
		facts := map[string]any{
			"pool": pool.Name, "node": node, "num_nodes": n, "is_head": node == 0, "head_addr": ips[0],
			"node_ips": ips, "task": t.Name, "task_id": id,
		}
		env["SKYWARD_NODE"] = strconv.Itoa(node)
		env["SKYWARD_NUM_NODES"] = strconv.Itoa(n)
		env["SKYWARD_IS_HEAD"] = strconv.FormatBool(node == 0)
		env["SKYWARD_HEAD_ADDR"] = ips[0]
		env["SKYWARD_NODE_IPS"] = strings.Join(ips, "\n")
		env["SKYWARD_POOL"] = pool.Name
		env["SKYWARD_TASK"] = t.Name
		env["SKYWARD_TASK_ID"] = id
		b, _ := json.Marshal(facts)
		env["COMPUTE_POOL"] = string(b)
		distributedEnv(env, t, pool, ips, node)
		return env
	}
	request := func(id string, env map[string]string, shard json.RawMessage) agent.ExecRequest {
		req := agent.ExecRequest{ID: id, Task: t.Name, Env: env, Shard: shard, TimeoutMS: t.Timeout.Milliseconds()}
		if len(t.Command) > 0 {
			req.Argv = t.Command
		} else {
			req.Script = t.Run
		}
		return req
	}
	null := json.RawMessage("null")

	switch {
	case t.HasForEach:
		jobs := make([]cluster.Job, len(t.ForEach))
		keys := make([]json.RawMessage, len(t.ForEach))
		for i, item := range t.ForEach {
			key, err := ctyJSON(item.Key)
			if err != nil {
				return nil, nil, err
			}
			val, err := ctyJSON(item.Value)
			if err != nil {
				return nil, nil, err
			}
			keys[i] = key
			id := fmt.Sprintf("%s-%s-%d", t.Name, runID, i)
			jobs[i] = cluster.Job{Node: -1, Request: func(node int) agent.ExecRequest {
				env := base(node, id)
				env["SKYWARD_EACH_KEY"] = envString(item.Key, key)
				env["SKYWARD_EACH_VALUE"] = envString(item.Value, val)
				return request(id, env, nil)
			}}
		}
		return jobs, keys, nil

	case t.Mode == "broadcast":
		var items []json.RawMessage
		for _, v := range t.Shard {
			b, err := ctyJSON(v)
			if err != nil {
				return nil, nil, err
			}
			items = append(items, b)
		}
		jobs := make([]cluster.Job, n)
		keys := make([]json.RawMessage, n)
		for i := range n {
			keys[i] = null
			id := fmt.Sprintf("%s-%s-%d", t.Name, runID, i)
			var shard json.RawMessage
			if t.HasShard {
				mine := []json.RawMessage{}
				for j := i; j < len(items); j += n {
					mine = append(mine, items[j])
				}
				shard, _ = json.Marshal(mine)
			}
			jobs[i] = cluster.Job{Node: i, Request: func(node int) agent.ExecRequest {
				env := base(node, id)
				if shard != nil {
					env["SKYWARD_SHARD_INDEX"] = strconv.Itoa(node)
					env["SKYWARD_SHARD_COUNT"] = strconv.Itoa(n)
				}
				return request(id, env, shard)
			}}
		}
		return jobs, keys, nil
	}

	target := -1
	switch t.Target {
	case "":
	case "head":
		target = 0
	default:
		i, err := strconv.Atoi(t.Target)
		if err != nil || i < 0 || i >= n {
			return nil, nil, fmt.Errorf("target %q is not a node of pool %q (0 to %d)", t.Target, pool.Name, n-1)
		}
		target = i
	}
	id := fmt.Sprintf("%s-%s-0", t.Name, runID)
	job := cluster.Job{Node: target, Request: func(node int) agent.ExecRequest { return request(id, base(node, id), nil) }}
	return []cluster.Job{job}, []json.RawMessage{null}, nil
}

// ctyJSON encodes a config value as JSON.
func ctyJSON(v cty.Value) (json.RawMessage, error) {
	if v.IsNull() {
		return json.RawMessage("null"), nil
	}
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return nil, err
	}
	return b, nil
}

// envString is a value as an environment variable holds it: strings as
// they are, anything else as JSON.
func envString(v cty.Value, encoded json.RawMessage) string {
	if v.Type() == cty.String && !v.IsNull() {
		return v.AsString()
	}
	if v.Type() == cty.Number && !v.IsNull() {
		// Numbers as written, without JSON's exponent forms where exact.
		bf := v.AsBigFloat()
		if bf.IsInt() {
			i, _ := bf.Int(new(big.Int))
			return i.String()
		}
	}
	return string(encoded)
}

// resultJSON is a task's result: the result file's content as JSON when
// it parses, else as a string (without its last newline); null when the
// task wrote none.
func resultJSON(r *string) json.RawMessage {
	if r == nil {
		return json.RawMessage("null")
	}
	if s := strings.TrimSpace(*r); s != "" && json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(strings.TrimSuffix(*r, "\n"))
	return b
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// summaryLimit is how many executions the summary lists one by one; past
// it, only those that did not succeed are listed.
const summaryLimit = 20

// printRunSummary prints a task's outcome after its output: one line per
// execution (only the unsuccessful ones for many), then the stderr tail of
// each failed one on stderr.
func (m *Meta) printRunSummary(rep *runReport, label, pool string, took time.Duration) {
	ok, failed, cancelled := 0, 0, 0
	for _, e := range rep.Executions {
		switch {
		case e.Cancelled:
			cancelled++
		case e.ExitCode != nil && *e.ExitCode == 0:
			ok++
		default:
			failed++
		}
	}
	total := len(rep.Executions)
	line := fmt.Sprintf("\nTask %s (%s): %d of %d executions succeeded", rep.Task, label, ok, total)
	if failed > 0 {
		line += fmt.Sprintf(", %d failed", failed)
	}
	if cancelled > 0 {
		line += fmt.Sprintf(", %d cancelled", cancelled)
	}
	fmt.Fprintf(m.Stdout, "%s, in %s.\n", line, round(took))
	for _, e := range rep.Executions {
		succeeded := !e.Cancelled && e.ExitCode != nil && *e.ExitCode == 0
		if total > summaryLimit && succeeded {
			continue
		}
		fmt.Fprintf(m.Stdout, "  %s\n", executionLine(pool, e))
		if r := string(e.Result); len(r) > inlineResult && !e.Cancelled {
			// Long results get lines of their own, whole: nothing is cut.
			fmt.Fprintf(m.Stdout, "    result: %s\n", strings.ReplaceAll(r, "\n", "\n            "))
		}
	}
	for _, e := range rep.Executions {
		if e.Cancelled || e.ExitCode != nil && *e.ExitCode == 0 {
			continue
		}
		fmt.Fprintf(m.Stderr, "%s task %s: %s\n", m.errorPrefix(), rep.Task, executionLine(pool, e))
		if tail := lastLines(e.Stderr, 10); tail != "" {
			for _, l := range strings.Split(tail, "\n") {
				fmt.Fprintf(m.Stderr, "  %s\n", l)
			}
		}
	}
}

// executionLine describes one execution in a line.
func executionLine(pool string, e runExecution) string {
	where := fmt.Sprintf("[%s/%d]", pool, e.Node)
	if e.Node < 0 {
		where = "[" + pool + "]"
	}
	if string(e.Key) != "null" && e.Key != nil {
		where += " " + string(e.Key)
	}
	d := round(time.Duration(e.DurationMS) * time.Millisecond)
	var what string
	switch {
	case e.Cancelled:
		what = "cancelled"
	case e.Lost:
		what = fmt.Sprintf("lost after %s: %s", d, e.Error)
	case e.TimedOut:
		what = fmt.Sprintf("timed out after %s (exit %d)", d, *e.ExitCode)
	case e.ExitCode == nil:
		what = "failed: " + e.Error
	case e.Error != "":
		what = fmt.Sprintf("exit %d: %s", *e.ExitCode, e.Error)
	default:
		what = fmt.Sprintf("exit %d after %s", *e.ExitCode, d)
	}
	if e.Attempts > 1 {
		what += fmt.Sprintf(" (%d attempts)", e.Attempts)
	}
	if r := string(e.Result); r != "null" && r != "" && !e.Cancelled && len(r) <= inlineResult {
		what += ", result: " + r
	}
	return where + " " + what
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// inlineResult is the longest result printed on its execution's line in
// the summary; a longer one is printed whole on a line of its own.
const inlineResult = 60

// untilStop returns a context that ends with m.Ctx or at the first
// Ctrl-C (m.Stop).
func (m *Meta) untilStop() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(m.Ctx)
	go func() {
		select {
		case <-m.Stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	return ctx, cancel
}

func (m *Meta) runLocks() state.RunLocks {
	return state.RunLocks{Dir: filepath.Join(m.Dir, dataDir, "runs")}
}

// shareRunLocks takes the run lock of every pool the named tasks run on,
// shared, and returns what releases them all (once).
func (m *Meta) shareRunLocks(ctx context.Context, cfg *hclspec.Config, names []string, timeout time.Duration) (func(), error) {
	pools := map[string]bool{}
	for _, n := range names {
		if t, ok := cfg.Tasks[n]; ok {
			pools[t.Pool] = true
		}
	}
	return m.sharePools(ctx, sortedAddrs(pools), strings.Join(names, " "), timeout)
}

// sharePools takes the run locks of pools, shared, for what (the tasks
// run, for the error an apply gets), and returns what releases them all
// (once).
func (m *Meta) sharePools(ctx context.Context, pools []string, what string, timeout time.Duration) (func(), error) {
	info := state.NewLockInfo("skyward run " + what)
	var releases []func()
	releaseAll := func() {
		for _, r := range releases {
			r()
		}
		releases = nil
	}
	for _, pool := range pools {
		r, err := m.runLocks().Share(ctx, pool, state.RunInfo{Task: what, PID: info.PID, Who: info.Who, Created: info.Created}, timeout)
		if err != nil {
			releaseAll()
			return nil, err
		}
		releases = append(releases, r)
	}
	return releaseAll, nil
}
