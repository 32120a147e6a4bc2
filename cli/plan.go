package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/skyward-sh/skyward/executor"
	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/planner"
	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/state"
)

// planFlags are the flags shared by plan, apply and destroy.
type planFlags struct {
	out             string
	detailed        bool
	json            bool
	destroy         bool
	refresh         bool
	refreshOnly     bool
	replace         stringList
	target          stringList
	vars            varFlags
	lock            bool
	lockTimeout     time.Duration
	input           bool
	compactWarnings bool
	autoApprove     bool
	parallelism     int
	verbose         bool
}

// checkParallelism refuses a -parallelism that would run nothing (apply
// and destroy, which have the flag).
func (pf *planFlags) checkParallelism() error {
	if pf.parallelism < 1 {
		return fmt.Errorf("invalid -parallelism=%d: it must be at least 1 (the default is 10)", pf.parallelism)
	}
	return nil
}

func (pf *planFlags) register(fs *flag.FlagSet, command string) {
	fs.BoolVar(&pf.json, "json", false, "Print one JSON object a line, in Terraform's machine-readable UI format.")
	fs.BoolVar(&pf.refresh, "refresh", true, "Read the objects from the providers first; -refresh=false plans against the state as it is.")
	fs.Var(&pf.replace, "replace", "Plan to replace the resource at `ADDR` (pool.dev.node[1] or dev/1); repeatable.")
	fs.Var(&pf.target, "target", "Plan only the resource at `ADDR` and what it needs; repeatable.")
	pf.vars.register(fs)
	registerLockFlags(fs, &pf.lock, &pf.lockTimeout)
	fs.BoolVar(&pf.input, "input", true, "Ask for input on a terminal; -input=false never asks (use -auto-approve where a confirmation is needed).")
	fs.BoolVar(&pf.compactWarnings, "compact-warnings", false, "Print warnings as one line each, without their detail.")
	parallelism := "Carry out at most `N` steps at once."
	if command == "plan" {
		parallelism = "Accepted for Terraform's CI scripts: `N` does not matter to a plan, whose refresh lists each provider's objects in one call."
	}
	fs.IntVar(&pf.parallelism, "parallelism", 10, parallelism)
	switch command {
	case "plan":
		fs.StringVar(&pf.out, "out", "", "Save the plan to `FILE`, for skyward apply FILE.")
		fs.BoolVar(&pf.destroy, "destroy", false, "Plan to destroy everything in the state.")
		fs.BoolVar(&pf.refreshOnly, "refresh-only", false, "Show what changed on the providers outside skyward, and plan no change.")
		fs.BoolVar(&pf.detailed, "detailed-exitcode", false, "Exit 0 with no changes, 1 on error, 2 when there are changes.")
	case "apply":
		fs.BoolVar(&pf.destroy, "destroy", false, "Destroy everything in the state (the same as skyward destroy).")
		fs.BoolVar(&pf.refreshOnly, "refresh-only", false, "Update the state from the providers (objects gone, adopted or changed) and change nothing.")
		fs.BoolVar(&pf.verbose, "verbose", false, "Show every line of the nodes' bootstrap output.")
		fs.BoolVar(&pf.autoApprove, "auto-approve", false, "Do not ask for yes before applying.")
		fs.BoolVar(&pf.detailed, "detailed-exitcode", false, "Exit 0 with no changes, 1 on error, 2 when changes were made.")
	case "destroy":
		fs.BoolVar(&pf.autoApprove, "auto-approve", false, "Do not ask for yes before destroying.")
		fs.BoolVar(&pf.detailed, "detailed-exitcode", false, "Exit 0 with nothing to destroy, 1 on error, 2 when something was destroyed.")
	}
}

// registerLockFlags adds -lock and -lock-timeout, which every command that
// writes state takes.
func registerLockFlags(fs *flag.FlagSet, lock *bool, timeout *time.Duration) {
	fs.BoolVar(lock, "lock", true, "Hold the state lock; -lock=false is dangerous when others may write the state.")
	fs.DurationVar(timeout, "lock-timeout", 0, "Wait up to `DURATION` (10s, 2m) for the state lock instead of failing at once.")
}

// session is a locked state and the providers to act on it.
type session struct {
	m     *Meta
	cfg   *hclspec.Config
	lock  state.Unlocker
	st    *state.State
	provs map[string]providers.Provider
}

func (s *session) close() {
	if s.lock != nil {
		s.lock.Unlock()
	}
}

// open loads the config, takes the lock, reads (or starts) the state and
// builds and checks the providers. Nothing is written when the config is
// invalid or a provider cannot be reached.
func (m *Meta) open(command string, pf *planFlags, needConfig bool) (*session, error) {
	s := &session{m: m}
	if needConfig {
		cfg, err := m.loadConfig(&pf.vars, nil)
		if err != nil {
			return nil, err
		}
		s.cfg = cfg
	}
	lk, err := m.lock(command, pf.lock, pf.lockTimeout)
	if err != nil {
		return nil, err
	}
	s.lock = lk
	st, err := m.readState()
	if err != nil {
		s.close()
		return nil, err
	}
	if st != nil && len(st.Resources) > 0 {
		// Refresh asks the agents over SSH with the pools' keys: a remote
		// store that cannot give them (no SKYWARD_STATE_KEY) must stop the
		// command here, not make every agent look down.
		if _, err := m.keys().List(); err != nil {
			s.close()
			return nil, err
		}
	}
	provs, err := m.buildProviders(m.providerConfigs(s.cfg, st), s.cfg)
	if err != nil {
		s.close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(m.Ctx, 15*time.Second)
	defer cancel()
	for _, addr := range sortedAddrs(provs) {
		if !s.uses(addr, st) {
			continue
		}
		if err := provs[addr].Check(ctx); err != nil {
			s.close()
			return nil, fmt.Errorf("provider %s: %w", addr, err)
		}
	}
	s.provs = provs
	if st == nil {
		// The lineage is fixed when the state is first created: now.
		st = state.New(state.NewLineage())
		if err := m.writeState(st); err != nil {
			s.close()
			return nil, err
		}
	}
	s.st = st
	return s, nil
}

// uses reports whether a provider address is used by a pool in the config
// or a resource in the state.
func (s *session) uses(addr string, st *state.State) bool {
	if s.cfg != nil {
		for _, p := range s.cfg.Pools {
			if p.Provider == addr {
				return true
			}
		}
	}
	if st != nil {
		for _, r := range st.Resources {
			if r.Provider == addr {
				return true
			}
		}
	}
	return false
}

// plan refreshes (unless told not to) and builds the plan. With
// -refresh-only the plan has no changes: only what refresh found, in its
// notes, and the refreshed state in Prior.
func (s *session) plan(pf *planFlags) (*planner.Plan, error) {
	prior := s.st
	var notes []string
	if pf.refresh {
		var err error
		prior, notes, err = planner.Refresh(s.m.Ctx, s.st, s.provs)
		if err != nil {
			return nil, err
		}
		if !pf.refreshOnly {
			for addr, err := range executor.CheckAgents(s.m.Ctx, prior, s.m.keys()) {
				prior.Get(addr).Attributes["agent"] = planner.AgentDown
				notes = append(notes, fmt.Sprintf("%s: the agent does not answer (%v).", addr, err))
			}
		}
		notes = s.adoptionNotes(prior, notes)
		sort.Strings(notes)
	}
	if pf.refreshOnly {
		return &planner.Plan{Lineage: s.st.Lineage, Serial: s.st.Serial, StateExisted: true, Prior: prior, Notes: notes}, nil
	}
	cfg := s.cfg
	if cfg == nil {
		cfg = &hclspec.Config{}
	}
	var gone []*state.Resource
	for _, r := range s.st.Resources {
		if cur := prior.Get(r.Address); cur == nil || cur.ID != r.ID {
			gone = append(gone, r)
		}
	}
	p, err := planner.Build(cfg, prior, s.m.Registry, planner.Options{
		Destroy: pf.destroy, Replace: pf.replace, Targets: pf.target, Notes: notes, Gone: gone,
	})
	if err != nil {
		return nil, err
	}
	p.Serial = s.st.Serial
	s.explainAdopted(p)
	if err := validateNodes(s.m.Ctx, p, s.provs); err != nil {
		return nil, err
	}
	return p, nil
}

// validateNodes asks each provider that can tell whether the nodes the
// plan creates can be made as configured (more vCPUs than the host has, a
// ttl shorter than a boot), so that the plan fails, not the apply halfway.
func validateNodes(ctx context.Context, p *planner.Plan, provs map[string]providers.Provider) error {
	specs := map[string][]providers.NodeSpec{}
	for _, c := range p.Changes {
		if c.Type != string(providers.KindNode) || (c.Action != planner.Create && c.Action != planner.DeleteThenCreate && c.Action != planner.Update) {
			continue
		}
		num := func(k string) float64 { f, _ := c.After[k].(float64); return f }
		str := func(k string) string { s, _ := c.After[k].(string); return s }
		ttl, _ := time.ParseDuration(fmt.Sprint(c.After["ttl"]))
		specs[c.Provider] = append(specs[c.Provider], providers.NodeSpec{Hostname: fmt.Sprintf("%s-%d", c.Pool, *c.Index),
			VCPUs: num("vcpus"), MemoryGB: num("memory_gb"), DiskGB: num("disk_gb"), TTL: ttl,
			InstanceType: str("instance_type"), Accelerator: str("accelerator"), Allocation: str("allocation")})
	}
	for _, addr := range sortedAddrs(specs) {
		v, ok := provs[addr].(providers.Validator)
		if !ok {
			continue
		}
		vctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := v.ValidateNodes(vctx, specs[addr])
		cancel()
		if err != nil {
			return fmt.Errorf("provider %s: %w", addr, err)
		}
	}
	return nil
}

// providerWarnings are the warnings of every provider the session uses
// about its own configuration (providers.Warner), in provider order.
func providerWarnings(s *session) []warning {
	var out []warning
	for _, addr := range sortedAddrs(s.provs) {
		wr, ok := s.provs[addr].(providers.Warner)
		if !ok || !s.uses(addr, s.st) {
			continue
		}
		for _, w := range wr.Warnings() {
			out = append(out, warning{summary: "Provider " + addr + " configuration", detail: w})
		}
	}
	return out
}

// adopted reports whether refresh found the object at addr on a provider
// while the state lacked it: an apply killed between creating an object
// and recording it, or a skyward state rm.
func (s *session) adopted(prior *state.State, addr string) bool {
	return s.st.Get(addr) == nil && prior.Get(addr) != nil
}

// adoptionNotes says, for every object refresh adopted, what happened and
// what the plan does with it (refresh itself cannot tell whether the
// config still has it).
func (s *session) adoptionNotes(prior *state.State, notes []string) []string {
	out := notes[:0:0]
	for _, n := range notes {
		if !strings.Contains(n, "missing from the state") {
			out = append(out, n)
		}
	}
	for _, r := range prior.Resources {
		if !s.adopted(prior, r.Address) {
			continue
		}
		what := "it is adopted, and replaced by the plan since skyward cannot tell how far its set-up went"
		if s.cfg == nil || s.cfg.Pools[r.Pool] == nil || strings.Contains(r.Address, "#") || (r.Index != nil && *r.Index >= s.cfg.Pools[r.Pool].Nodes) {
			what = "the configuration does not have it, so the plan destroys it"
		}
		out = append(out, fmt.Sprintf("%s (id %s) exists on the provider but not in the state (it was removed with skyward state rm, "+
			"or an apply was stopped before recording it); %s.", r.Address, shortID(r.ID), what))
	}
	return out
}

// explainAdopted replaces the plan's reason for replacing an adopted
// object ("left unfinished by an interrupted apply") by what happened.
func (s *session) explainAdopted(p *planner.Plan) {
	for _, c := range p.Changes {
		if !s.adopted(p.Prior, c.Address) {
			continue
		}
		switch c.Action {
		case planner.DeleteThenCreate:
			c.Reason = "exists on the provider but not in the state, so it is adopted and must be replaced"
		case planner.Delete:
			c.Reason = "exists on the provider but not in the state, and is not in the configuration"
		}
	}
}

// planAndShow opens a session for command, plans and shows the plan. The
// caller closes the session and the view.
func (m *Meta) planAndShow(command string, pf *planFlags) (*session, *planner.Plan, operationView, error) {
	if pf.refreshOnly && !pf.refresh {
		return nil, nil, nil, errors.New("-refresh-only and -refresh=false contradict each other: a refresh-only plan is the refresh")
	}
	if pf.refreshOnly && (pf.destroy || len(pf.replace) > 0) {
		return nil, nil, nil, errors.New("-refresh-only changes nothing, so it cannot be combined with -destroy or -replace")
	}
	s, err := m.open(command, pf, true)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := s.plan(pf)
	if err != nil {
		s.close()
		return nil, nil, nil, err
	}
	if command == "plan" && !pf.json {
		for _, addr := range sortedAddrs(s.provs) {
			if rt := runtimeOf(s.provs[addr], ""); rt != "" {
				fmt.Fprintf(m.Stdout, "provider %s: %s\n\n", addr, rt)
			}
		}
	}
	v := m.operationView(pf.json, pf.verbose)
	for _, w := range m.baseImageWarnings(p, s.provs) {
		v.Warn(w, pf.compactWarnings)
	}
	for _, w := range providerWarnings(s) {
		v.Warn(w, pf.compactWarnings)
	}
	v.Plan(p)
	if pf.refreshOnly && !pf.json {
		if len(p.Notes) > 0 {
			fmt.Fprintf(m.Stdout, "This is a refresh-only plan: skyward changes nothing on the providers. Apply it with skyward apply -refresh-only to record what refresh found in the state.\n")
		}
	}
	return s, p, v, nil
}

func runPlan(m *Meta, args []string) error {
	pf := &planFlags{}
	fs := newFlagSet("plan")
	pf.register(fs, "plan")
	pos, _, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	m.json, m.compactWarnings = pf.json, pf.compactWarnings
	if len(pos) > 0 {
		return fmt.Errorf("plan takes no arguments, got %q", pos)
	}
	if pf.refreshOnly && pf.out != "" {
		return errors.New("a refresh-only plan cannot be saved with -out; run skyward apply -refresh-only to record the refresh in the state")
	}
	s, p, v, err := m.planAndShow("plan", pf)
	if err != nil {
		return err
	}
	defer s.close()
	defer v.Close()
	if pf.out != "" {
		p.Outputs = m.planOutputs(s, p, pf)
		if err := planner.WritePlanFile(pf.out, m.Dir, p); err != nil {
			return err
		}
		if !pf.json {
			fmt.Fprintf(m.Stdout, "\nSaved the plan to: %s\n\nTo perform exactly these actions, run the following command to apply:\n    skyward apply %q\n", pf.out, pf.out)
		}
	}
	if pf.detailed && p.HasChanges() {
		return exitCodeError{exitChanges}
	}
	return nil
}

func runApply(m *Meta, args []string) error {
	pf := &planFlags{}
	fs := newFlagSet("apply")
	pf.register(fs, "apply")
	pos, _, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	m.json, m.compactWarnings = pf.json, pf.compactWarnings
	if len(pos) > 1 {
		return fmt.Errorf("apply takes at most one plan file, got %q", pos)
	}
	if err := pf.checkParallelism(); err != nil {
		return err
	}
	operation := "apply"
	if pf.destroy {
		operation = "destroy"
	}
	if len(pos) == 1 {
		if pf.refreshOnly {
			return errors.New("-refresh-only cannot apply a saved plan")
		}
		return m.applySaved(pos[0], pf)
	}
	return m.applyOperation(operation, pf)
}

func runDestroy(m *Meta, args []string) error {
	pf := &planFlags{}
	fs := newFlagSet("destroy")
	pf.register(fs, "destroy")
	pos, _, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	m.json, m.compactWarnings = pf.json, pf.compactWarnings
	if len(pos) > 0 {
		return fmt.Errorf("destroy takes no arguments, got %q", pos)
	}
	if err := pf.checkParallelism(); err != nil {
		return err
	}
	pf.destroy = true
	return m.applyOperation("destroy", pf)
}

// planOutputs evaluates the configuration's outputs before the plan (with
// the pools of the state) and after it (known now, or only after apply),
// for show -json's output_changes.
func (m *Meta) planOutputs(s *session, p *planner.Plan, pf *planFlags) map[string]planner.OutputChange {
	if s.cfg == nil || len(s.cfg.Outputs) == 0 {
		return nil
	}
	var before map[string]*hclspec.Output
	if len(s.st.Resources) > 0 {
		opts := hclspec.LoadOptions{Vars: pf.vars.vars, VarFiles: pf.vars.files, Environ: os.Environ(),
			ProviderSchemas: m.Registry.Schemas(), PoolValues: poolValues(s.st)}
		if cfg, diags := hclspec.Load(m.Dir, opts); !diags.HasErrors() {
			before = cfg.Outputs
		}
	}
	out := map[string]planner.OutputChange{}
	for name, o := range s.cfg.Outputs {
		oc := planner.OutputChange{Sensitive: o.Sensitive}
		if b := before[name]; b != nil {
			oc.Before, oc.BeforeKnown = plainValue(b.Value)
		}
		oc.After, oc.AfterKnown = plainValue(o.Value)
		if !oc.AfterKnown && oc.BeforeKnown && !p.HasChanges() {
			// Nothing changes, so neither does what the output reads.
			oc.After, oc.AfterKnown = oc.Before, true
		}
		if o.Sensitive {
			// Plan files are not secret: keep no sensitive value in them.
			oc.Before, oc.After = nil, nil
		}
		out[name] = oc
	}
	return out
}

// plainValue converts a known config value to JSON-shaped data; ok is
// false when the value is not known yet.
func plainValue(v cty.Value) (any, bool) {
	v, _ = v.UnmarkDeep()
	if !v.IsWhollyKnown() {
		return nil, false
	}
	if v.IsNull() {
		return nil, true
	}
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return nil, false
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, false
	}
	return out, true
}

// applyOperation plans, asks, and applies.
func (m *Meta) applyOperation(operation string, pf *planFlags) error {
	switch {
	case pf.autoApprove:
	case pf.json:
		return &diagError{
			summary: "Plan file or auto-approve required",
			detail: fmt.Sprintf("skyward cannot ask for approval when -json is set. Run skyward %s -json -auto-approve, "+
				"or save a plan with skyward plan -out=FILE and apply it with skyward apply -json FILE.", operation),
		}
	case !pf.input:
		return fmt.Errorf("%s needs confirmation, but -input=false forbids asking; run it with -auto-approve to %s without asking", operation, operation)
	case !isTerminal(m.Stdin):
		return fmt.Errorf("%s needs confirmation, but standard input is not a terminal; run it with -auto-approve to %s without asking", operation, operation)
	}
	s, p, v, err := m.planAndShow(operation, pf)
	if err != nil {
		return err
	}
	defer s.close()
	defer v.Close()
	if pf.refreshOnly {
		return m.applyRefresh(s, p, v, pf)
	}
	if !p.HasChanges() {
		v.ApplyDone(operation, 0, 0, 0)
		return nil
	}
	if !pf.autoApprove {
		if !m.confirm(operation) {
			fmt.Fprintf(m.Stdout, "\n%s cancelled.\n", capitalize(operation))
			return errSilent
		}
	}
	return m.execute(s, p, v, operation, pf)
}

// applyRefresh records a refresh-only plan: the state takes what refresh
// found (objects gone, adopted, facts changed); no provider is changed.
func (m *Meta) applyRefresh(s *session, p *planner.Plan, v operationView, pf *planFlags) error {
	if len(p.Notes) > 0 {
		if !pf.autoApprove && !m.confirmRefresh() {
			fmt.Fprintln(m.Stdout, "\nApply cancelled.")
			return errSilent
		}
	}
	// Provider facts (addresses, a stopped node) may have changed even
	// without a note, so the refreshed state is always written.
	prior := p.Prior
	prior.Serial = s.st.Serial
	be, err := m.backend()
	if err != nil {
		return err
	}
	if err := be.Write(prior); err != nil {
		return err
	}
	v.ApplyDone("apply", 0, 0, 0)
	return nil
}

func (m *Meta) confirmRefresh() bool {
	fmt.Fprint(m.Stdout, "\nWould you like to update the state to reflect these detected changes?\n  Skyward will write these changes to the state without changing any real infrastructure.\n  There is no undo. Only 'yes' will be accepted to confirm.\n\n  Enter a value: ")
	line, _ := bufio.NewReader(m.Stdin).ReadString('\n')
	return strings.TrimSpace(line) == "yes"
}

// applySaved applies a plan file after checking it is not stale.
func (m *Meta) applySaved(path string, pf *planFlags) error {
	p, err := planner.ReadPlanFile(path)
	if err != nil {
		return err
	}
	lk, err := m.lock("apply", pf.lock, pf.lockTimeout)
	if err != nil {
		return err
	}
	s := &session{m: m, lock: lk}
	defer s.close()
	st, err := m.readState()
	if err != nil {
		return err
	}
	if err := p.CheckFresh(st); err != nil {
		return err
	}
	s.st = st
	if s.provs, err = m.buildProviders(p.Providers, m.quietConfig()); err != nil {
		return err
	}
	v := m.operationView(pf.json, pf.verbose)
	defer v.Close()
	operation := "apply"
	if p.Destroy {
		operation = "destroy"
	}
	if !p.HasChanges() {
		v.Plan(p)
		v.ApplyDone(operation, 0, 0, 0)
		return nil
	}
	return m.execute(s, p, v, operation, pf)
}

func (m *Meta) execute(s *session, p *planner.Plan, v operationView, operation string, pf *planFlags) error {
	bin := ""
	for _, c := range p.Changes {
		if c.Type == string(providers.KindNode) && (c.Action == planner.Create || c.Action == planner.DeleteThenCreate) {
			var err error
			if bin, err = agentBinary(); err != nil {
				return err
			}
			break
		}
	}
	if err := prepare(m.Ctx, p, s.provs, bin); err != nil {
		return err
	}
	createTimeout, err := envDuration("SKYWARD_CREATE_TIMEOUT")
	if err != nil {
		return err
	}
	// No task may be running on the nodes this changes.
	if pf.lock {
		release, err := m.exclusiveRunLocks(p, pf.lockTimeout)
		if err != nil {
			return err
		}
		defer release()
	}
	be, err := m.backend()
	if err != nil {
		return err
	}
	ex := &executor.Executor{
		CreateTimeout: createTimeout,
		Providers:     s.provs,
		State:         be,
		Keys:          m.keys(),
		AgentBinary:   bin,
		ConfigDir:     m.Dir,
		Parallelism:   pf.parallelism,
		Events:        v.Event,
		Stop:          m.Stop,
	}
	if !pf.json {
		fmt.Fprintln(m.Stdout)
	}
	if lv, ok := v.(*liveView); ok {
		lv.start()
	}
	// The prior state of the walk is the refreshed one the plan was made
	// against, so that adopted and vanished objects are recorded.
	prior := p.Prior
	prior.Serial = s.st.Serial
	res, err := ex.Apply(m.Ctx, p, prior)
	added, changed, destroyed := countDone(p, res)
	if err != nil {
		for _, e := range flatten(err) {
			v.Error(e)
		}
		if errors.Is(err, executor.ErrInterrupted) {
			return exitCodeError{exitInterrupted}
		}
		return errSilent
	}
	v.ApplyDone(operation, added, changed, destroyed)
	if pf.detailed && p.HasChanges() {
		return exitCodeError{exitChanges}
	}
	return nil
}

// countDone counts what an apply did, Terraform-style.
func countDone(p *planner.Plan, res *executor.Result) (added, changed, destroyed int) {
	if res == nil {
		return
	}
	for _, id := range res.Done {
		op, addr, _ := strings.Cut(id, " ")
		c := p.Change(addr)
		if c == nil {
			continue
		}
		switch planner.Op(op) {
		case planner.OpCreate:
			added++
		case planner.OpUpdate:
			changed++
		case planner.OpDelete:
			destroyed++
		}
	}
	return
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func (m *Meta) confirm(operation string) bool {
	if operation == "destroy" {
		fmt.Fprint(m.Stdout, "\nDo you really want to destroy all resources?\n  Skyward will destroy all your managed infrastructure, as shown above.\n  There is no undo. Only 'yes' will be accepted to confirm.\n\n  Enter a value: ")
	} else {
		fmt.Fprint(m.Stdout, "\nDo you want to perform these actions?\n  Skyward will perform the actions described above.\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ")
	}
	line, _ := bufio.NewReader(m.Stdin).ReadString('\n')
	return strings.TrimSpace(line) == "yes"
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// prepare lets providers check or fetch what new nodes need (base images)
// before anything is created, so that a missing image fails the apply
// with nothing changed.
func prepare(ctx context.Context, p *planner.Plan, provs map[string]providers.Provider, agent string) error {
	specs := map[string][]providers.NodeSpec{}
	for _, c := range p.Changes {
		if c.Type != string(providers.KindNode) || (c.Action != planner.Create && c.Action != planner.DeleteThenCreate) {
			continue
		}
		specs[c.Provider] = append(specs[c.Provider], providers.NodeSpec{AgentBinary: agent})
	}
	for _, addr := range sortedAddrs(specs) {
		if pr, ok := provs[addr].(providers.Preparer); ok {
			if err := pr.Prepare(ctx, specs[addr]); err != nil {
				return fmt.Errorf("provider %s: %w", addr, err)
			}
		}
	}
	return nil
}

// envDuration reads a duration from the environment; 0 when unset.
func envDuration(name string) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration such as 10m", name, v)
	}
	return d, nil
}

// exclusiveRunLocks takes, exclusively, the run lock of every pool whose
// nodes the plan changes, and returns what releases them.
func (m *Meta) exclusiveRunLocks(p *planner.Plan, timeout time.Duration) (func(), error) {
	pools := map[string]bool{}
	for _, c := range p.Changes {
		if c.Type == string(providers.KindNode) && c.Action != planner.NoOp {
			pools[c.Pool] = true
		}
	}
	var releases []func()
	releaseAll := func() {
		for _, r := range releases {
			r()
		}
	}
	for _, pool := range sortedAddrs(pools) {
		r, err := m.runLocks().Exclusive(m.Ctx, pool, timeout)
		if err != nil {
			releaseAll()
			return nil, err
		}
		releases = append(releases, r)
	}
	return releaseAll, nil
}
