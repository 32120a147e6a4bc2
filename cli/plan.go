package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/skyward-sh/skyward/executor"
	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/planner"
	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/state"
)

// planFlags are the flags shared by plan, apply and destroy.
type planFlags struct {
	out         string
	detailed    bool
	json        bool
	destroy     bool
	refresh     bool
	replace     stringList
	target      stringList
	vars        varFlags
	lockTimeout time.Duration
	autoApprove bool
	parallelism int
	verbose     bool
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
	fs.BoolVar(&pf.json, "json", false, "")
	fs.BoolVar(&pf.refresh, "refresh", true, "")
	fs.Var(&pf.replace, "replace", "")
	fs.Var(&pf.target, "target", "")
	pf.vars.register(fs)
	fs.DurationVar(&pf.lockTimeout, "lock-timeout", 0, "")
	fs.BoolVar(&pf.detailed, "detailed-exitcode", false, "")
	switch command {
	case "plan":
		fs.StringVar(&pf.out, "out", "", "")
		fs.BoolVar(&pf.destroy, "destroy", false, "")
	case "apply":
		fs.BoolVar(&pf.destroy, "destroy", false, "")
		fs.BoolVar(&pf.verbose, "verbose", false, "")
		fs.BoolVar(&pf.autoApprove, "auto-approve", false, "")
		fs.IntVar(&pf.parallelism, "parallelism", 10, "")
	case "destroy":
		fs.BoolVar(&pf.autoApprove, "auto-approve", false, "")
		fs.IntVar(&pf.parallelism, "parallelism", 10, "")
	}
}

// session is a locked state and the providers to act on it.
type session struct {
	m     *Meta
	cfg   *hclspec.Config
	lock  *state.Lock
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
func (m *Meta) open(command string, vars *varFlags, lockTimeout time.Duration, needConfig bool) (*session, error) {
	s := &session{m: m}
	if needConfig {
		cfg, err := m.loadConfig(vars, nil)
		if err != nil {
			return nil, err
		}
		s.cfg = cfg
	}
	lk, err := m.lock(command, lockTimeout)
	if err != nil {
		return nil, err
	}
	s.lock = lk
	st, err := m.readState()
	if err != nil {
		s.close()
		return nil, err
	}
	provs, err := m.buildProviders(providerConfigs(s.cfg, st))
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
		if err := m.stateFile().Write(st); err != nil {
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

// plan refreshes (unless told not to) and builds the plan.
func (s *session) plan(pf *planFlags) (*planner.Plan, error) {
	prior := s.st
	var notes []string
	if pf.refresh {
		var err error
		prior, notes, err = planner.Refresh(s.m.Ctx, s.st, s.provs)
		if err != nil {
			return nil, err
		}
		for addr, err := range executor.CheckAgents(s.m.Ctx, prior, s.m.keys()) {
			prior.Get(addr).Attributes["agent"] = planner.AgentDown
			notes = append(notes, fmt.Sprintf("%s: the agent does not answer (%v).", addr, err))
		}
		sort.Strings(notes)
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
	return p, nil
}

// planAndShow opens a session for command, plans and shows the plan. The
// caller closes the session and the view.
func (m *Meta) planAndShow(command string, pf *planFlags) (*session, *planner.Plan, operationView, error) {
	s, err := m.open(command, &pf.vars, pf.lockTimeout, true)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := s.plan(pf)
	if err != nil {
		s.close()
		return nil, nil, nil, err
	}
	v := m.operationView(pf.json, pf.verbose)
	v.Plan(p)
	return s, p, v, nil
}

func runPlan(m *Meta, args []string) error {
	pf := &planFlags{}
	fs := newFlagSet("plan")
	pf.register(fs, "plan")
	if pos, _, err := parseArgs(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fmt.Errorf("plan takes no arguments, got %q", pos)
	}
	s, p, v, err := m.planAndShow("plan", pf)
	if err != nil {
		return err
	}
	defer s.close()
	defer v.Close()
	if pf.out != "" {
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
		return m.applySaved(pos[0], pf)
	}
	return m.applyOperation(operation, pf)
}

func runDestroy(m *Meta, args []string) error {
	pf := &planFlags{}
	fs := newFlagSet("destroy")
	pf.register(fs, "destroy")
	if pos, _, err := parseArgs(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fmt.Errorf("destroy takes no arguments, got %q", pos)
	}
	if err := pf.checkParallelism(); err != nil {
		return err
	}
	pf.destroy = true
	return m.applyOperation("destroy", pf)
}

// applyOperation plans, asks, and applies.
func (m *Meta) applyOperation(operation string, pf *planFlags) error {
	if !pf.autoApprove && !isTerminal(m.Stdin) {
		return fmt.Errorf("%s needs confirmation, but standard input is not a terminal; run it with -auto-approve to %s without asking", operation, operation)
	}
	s, p, v, err := m.planAndShow(operation, pf)
	if err != nil {
		return err
	}
	defer s.close()
	defer v.Close()
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

// applySaved applies a plan file after checking it is not stale.
func (m *Meta) applySaved(path string, pf *planFlags) error {
	p, err := planner.ReadPlanFile(path)
	if err != nil {
		return err
	}
	lk, err := m.lock("apply", pf.lockTimeout)
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
	if s.provs, err = m.buildProviders(p.Providers); err != nil {
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
	ex := &executor.Executor{
		Providers:   s.provs,
		State:       m.stateFile(),
		Keys:        m.keys(),
		AgentBinary: bin,
		ConfigDir:   m.Dir,
		Parallelism: pf.parallelism,
		Events:      v.Event,
		Stop:        m.Stop,
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
		img, _ := c.After["base_image"].(string)
		specs[c.Provider] = append(specs[c.Provider], providers.NodeSpec{BaseImage: img, AgentBinary: agent})
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
