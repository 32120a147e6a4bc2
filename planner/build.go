package planner

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/state"
)

// AgentDown is the value of a node's "agent" attribute when refresh found
// its agent not running.
const AgentDown = "down"

// Options select what a plan covers.
type Options struct {
	// Destroy plans the removal of everything in state.
	Destroy bool
	// Replace forces the replacement of these addresses.
	Replace []string
	// Targets restricts the plan to these addresses (and what they need).
	Targets []string
	// Notes from refresh, carried into the plan.
	Notes []string
	// Gone are the resources of the state before refresh that refresh
	// found missing on their provider (removed by hand). A destroy plan
	// deletes them all the same, which removes them from the state.
	Gone []*state.Resource
}

// Build diffs cfg against the refreshed state prior and returns the plan.
// reg gives each provider type's in-place settings and schema. prior is
// not modified; the plan keeps a copy.
func Build(cfg *hclspec.Config, prior *state.State, reg *providers.Registry, opts Options) (*Plan, error) {
	p := &Plan{
		Lineage:   prior.Lineage,
		Serial:    prior.Serial,
		Destroy:   opts.Destroy,
		Prior:     prior.DeepCopy(),
		Providers: map[string]ProviderConfig{},
		Variables: map[string]Variable{},
		Notes:     opts.Notes,
	}
	for name, v := range cfg.Variables {
		p.Variables[name] = Variable{Value: ctyToAny(v.Value), Sensitive: v.Sensitive}
	}
	for _, addr := range opts.Replace {
		if _, _, err := ParseAddress(addr); err != nil {
			return nil, err
		}
	}
	want := map[string]*desired{}
	if !opts.Destroy {
		var err error
		if want, err = desiredResources(cfg, reg); err != nil {
			return nil, err
		}
	}
	replace := map[string]bool{}
	for _, a := range opts.Replace {
		ca, _ := CanonicalAddress(a)
		replace[ca] = true
	}

	// Pools first, so that their nodes know whether the pool is replaced.
	poolReplaced := map[string]bool{}
	addrs := sortedKeys(want)
	sort.SliceStable(addrs, func(i, j int) bool { return want[addrs[i]].index < want[addrs[j]].index })
	for _, addr := range addrs {
		d := want[addr]
		cur := prior.Get(addr)
		c := &Change{Address: addr, Type: d.typ, Pool: d.pool, Provider: d.provider, After: d.attrs, Sensitive: d.sensitive}
		if d.index >= 0 {
			i := d.index
			c.Index = &i
		}
		switch {
		case cur == nil:
			c.Action = Create
		default:
			c.Before = cur.Attributes
			c.BeforeSensitive = unionPaths(cur.Sensitive, d.sensitive)
			c.PriorID = cur.ID
			f, _ := reg.Lookup(providerType(cfg, d.provider))
			upd, repl := diffAttrs(cur.Attributes, d.attrs, f, d.typ == string(providers.KindPool))
			switch {
			case cur.Status == state.StatusTainted:
				c.Action, c.Reason = DeleteThenCreate, "is tainted, so must be replaced"
			case cur.Status == state.StatusCreating:
				c.Action, c.Reason = DeleteThenCreate, "was left unfinished by an interrupted apply, so must be replaced"
			case cur.Provider != d.provider:
				c.Action, c.ReplacePaths = DeleteThenCreate, []string{"provider"}
			case replace[addr]:
				c.Action, c.Reason = DeleteThenCreate, "will be replaced, as requested"
			case d.typ == string(providers.KindNode) && poolReplaced[d.pool]:
				c.Action, c.Reason = DeleteThenCreate, fmt.Sprintf("must be replaced because %s is replaced", providers.PoolAddress(d.pool))
			case len(repl) > 0:
				c.Action, c.ReplacePaths = DeleteThenCreate, repl
			case len(upd) > 0:
				c.Action = Update
			case cur.Attributes["running"] == false:
				c.Action, c.Reason = Update, "is stopped on the provider, so will be started"
			case cur.Attributes["agent"] == AgentDown:
				c.Action, c.Reason = Update, "has no running agent, so it will be restarted"
			default:
				c.Action = NoOp
			}
		}
		if d.typ == string(providers.KindPool) && c.Action == DeleteThenCreate {
			poolReplaced[d.pool] = true
		}
		p.Changes = append(p.Changes, c)
	}
	for _, a := range opts.Replace {
		ca, _ := CanonicalAddress(a)
		if prior.Get(ca) == nil {
			what := "it is not in the state"
			if want[ca] == nil {
				what = "it is neither in the configuration nor in the state"
			}
			p.Warnings = append(p.Warnings, fmt.Sprintf("-replace=%s names no existing resource (%s), so it replaces nothing.", a, what))
		}
	}
	for _, r := range prior.Resources {
		if _, ok := want[r.Address]; ok {
			continue
		}
		c := &Change{Address: r.Address, Type: r.Type, Pool: r.Pool, Index: r.Index, Provider: r.Provider,
			Action: Delete, Before: r.Attributes, BeforeSensitive: r.Sensitive, PriorID: r.ID}
		if !opts.Destroy {
			if _, ok := cfg.Pools[r.Pool]; !ok {
				c.Reason = "is not in the configuration"
			} else {
				c.Reason = "is beyond the pool's configured nodes"
			}
		}
		p.Changes = append(p.Changes, c)
	}
	if opts.Destroy {
		for _, r := range opts.Gone {
			if prior.Get(r.Address) != nil || p.Change(r.Address) != nil {
				continue
			}
			p.Changes = append(p.Changes, &Change{Address: r.Address, Type: r.Type, Pool: r.Pool, Index: r.Index,
				Provider: r.Provider, Action: Delete, Before: r.Attributes, BeforeSensitive: r.Sensitive, PriorID: r.ID,
				Reason: "no longer exists on the provider, so it is only removed from the state"})
		}
	}
	if len(opts.Targets) > 0 {
		if err := p.target(opts.Targets); err != nil {
			return nil, err
		}
	}
	sortChanges(p.Changes)

	// Record every provider a change needs, from the config when it is
	// there, else from the state (a provider block removed from the config).
	for _, c := range p.Changes {
		if _, ok := p.Providers[c.Provider]; ok {
			continue
		}
		if pc, ok := cfg.Providers[c.Provider]; ok {
			f, _ := reg.Lookup(pc.Type)
			p.Providers[c.Provider] = NewProviderConfig(pc, f)
			continue
		}
		pc, err := ProviderFromState(prior, c.Pool)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Address, err)
		}
		p.Providers[c.Provider] = pc
	}
	return p, nil
}

// ProviderFromState rebuilds the configuration of the provider a pool was
// created with, from the pool's attributes in state.
func ProviderFromState(st *state.State, pool string) (ProviderConfig, error) {
	r := st.Get(providers.PoolAddress(pool))
	if r == nil {
		return ProviderConfig{}, fmt.Errorf("no record of %s in state to find its provider", providers.PoolAddress(pool))
	}
	typ, _ := r.Attributes["provider_type"].(string)
	if typ == "" {
		return ProviderConfig{}, fmt.Errorf("%s has no provider type in state", r.Address)
	}
	pc := ProviderConfig{Type: typ, Config: map[string]any{}}
	if m, ok := r.Attributes["provider_config"].(map[string]any); ok {
		for k, v := range m {
			pc.Config[k] = v
		}
	}
	return pc, nil
}

func providerType(cfg *hclspec.Config, addr string) string {
	if p, ok := cfg.Providers[addr]; ok {
		return p.Type
	}
	return addr
}

// diffAttrs compares the desired attributes with the recorded ones and
// returns the names that differ and can change in place, and those that
// force replacement. f is the provider's factory: its InPlace node
// settings change in place unless its RequiresReplace says otherwise, and
// only its PoolForceNew arguments in a pool's provider_config replace the
// pool (a node's provider_config holds only ForceNew arguments, and any
// change there replaces it).
func diffAttrs(before, after map[string]any, f providers.Factory, pool bool) (update, replace []string) {
	for _, k := range sortedKeys(after) {
		if identityAttrs[k] {
			continue
		}
		if reflect.DeepEqual(before[k], after[k]) {
			continue
		}
		if _, recorded := before[k]; k == "replicas" && !recorded && fmt.Sprint(after[k]) == "1" {
			// A node recorded before pools had a collections store
			// setting has the default one.
			continue
		}
		if _, recorded := before[k]; k == "provider_config" && !pool && !recorded {
			// A node recorded before nodes kept their provider's
			// arguments: nothing says they changed (the executor records
			// them now).
			continue
		}
		if k == "provider_config" && pool {
			b, _ := before[k].(map[string]any)
			a, _ := after[k].(map[string]any)
			// Other arguments (an endpoint, a profile) change no object:
			// the executor keeps the record current (RecordProviderConfig).
			replace = append(replace, forceNewChanges(b, a, f.PoolForceNew)...)
			continue
		}
		providerInPlace := slices.Contains(f.InPlace, k)
		if providerInPlace && f.RequiresReplace != nil && f.RequiresReplace(k, before[k], after[k]) {
			replace = append(replace, k)
			continue
		}
		if inPlaceAttrs[k] || providerInPlace {
			update = append(update, k)
		} else {
			replace = append(replace, k)
		}
	}
	return update, replace
}

// forceNewChanges names the ForceNew arguments that differ between two
// provider configs, as provider_config.NAME.
func forceNewChanges(before, after map[string]any, forceNew []string) []string {
	var out []string
	for _, name := range forceNew {
		if !reflect.DeepEqual(before[name], after[name]) {
			out = append(out, "provider_config."+name)
		}
	}
	return out
}

// target keeps only the changes of the targeted addresses, the nodes of
// targeted pools, and the pools that targeted nodes need created.
func (p *Plan) target(targets []string) error {
	keep := map[string]bool{}
	for _, t := range targets {
		pool, idx, err := ParseAddress(t)
		if err != nil {
			return err
		}
		matched := false
		for _, c := range p.Changes {
			if c.Pool != pool {
				continue
			}
			if idx < 0 || (c.Index != nil && *c.Index == idx) {
				keep[c.Address] = true
				matched = true
			}
			if idx >= 0 && c.Index == nil && (c.Action == Create || c.Action == DeleteThenCreate) {
				keep[c.Address] = true
			}
		}
		if !matched {
			p.Warnings = append(p.Warnings, fmt.Sprintf("-target=%s matches no resource in the configuration or the state, so the plan has no changes for it.", t))
		}
	}
	p.Changes = slices.DeleteFunc(p.Changes, func(c *Change) bool { return !keep[c.Address] })
	return nil
}

// ctyToAny converts a known value into plain Go (JSON-shaped) data.
func ctyToAny(v cty.Value) any {
	if v.IsNull() || !v.IsWhollyKnown() {
		return nil
	}
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return nil
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil
	}
	return out
}
