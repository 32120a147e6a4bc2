package planner

import (
	"reflect"
	"strings"

	"github.com/skyward-sh/skyward/state"
)

// JSON representation shapes, after Terraform's `show -json`.

// JSONPlan is Terraform's plan representation.
type JSONPlan struct {
	FormatVersion string `json:"format_version"`
	// TerraformVersion is skyward's version, under the key that tools
	// written for Terraform's plans read.
	TerraformVersion string                      `json:"terraform_version"`
	SkywardVersion   string                      `json:"skyward_version,omitempty"`
	Variables        map[string]JSONVariable     `json:"variables"`
	PlannedValues    JSONValues                  `json:"planned_values"`
	ResourceChanges  []JSONResourceChange        `json:"resource_changes"`
	OutputChanges    map[string]JSONOutputChange `json:"output_changes"`
	Configuration    JSONConfiguration           `json:"configuration"`
	PriorState       *JSONState                  `json:"prior_state,omitempty"`
	Applyable        bool                        `json:"applyable"`
	Complete         bool                        `json:"complete"`
	Errored          bool                        `json:"errored"`
	SkywardLineage   string                      `json:"skyward_lineage,omitempty"`
	SkywardSerial    uint64                      `json:"skyward_serial"`
	SkywardPlanNotes []string                    `json:"skyward_notes,omitempty"`
}

// JSONVariable is a variable's value in a plan.
type JSONVariable struct {
	Value any `json:"value"`
}

// JSONOutputChange is one entry of output_changes: an output's value
// before and after, with the unknown and sensitive flags as booleans, as
// Terraform writes them for outputs.
type JSONOutputChange struct {
	Actions         []string `json:"actions"`
	Before          any      `json:"before"`
	After           any      `json:"after"`
	AfterUnknown    bool     `json:"after_unknown"`
	BeforeSensitive bool     `json:"before_sensitive"`
	AfterSensitive  bool     `json:"after_sensitive"`
}

// JSONConfiguration is the configuration part of Terraform's plan
// representation, as far as a plan knows it: the providers with their
// arguments, and one resource entry per pool.
type JSONConfiguration struct {
	ProviderConfig map[string]JSONProviderConfig `json:"provider_config"`
	RootModule     JSONConfigModule              `json:"root_module"`
}

// JSONProviderConfig is one provider block.
type JSONProviderConfig struct {
	Name        string                    `json:"name"`
	FullName    string                    `json:"full_name"`
	Alias       string                    `json:"alias,omitempty"`
	Expressions map[string]JSONExpression `json:"expressions,omitempty"`
}

// JSONExpression is an argument's value; skyward records constants only.
type JSONExpression struct {
	ConstantValue any `json:"constant_value"`
}

// JSONConfigModule holds the configured resources, outputs and variables.
type JSONConfigModule struct {
	Resources []JSONConfigResource          `json:"resources"`
	Outputs   map[string]JSONConfigOutput   `json:"outputs,omitempty"`
	Variables map[string]JSONConfigVariable `json:"variables,omitempty"`
}

// JSONConfigResource is one configured pool: its shared infrastructure,
// with its nodes counted as Terraform counts a resource with count.
type JSONConfigResource struct {
	Address           string                    `json:"address"`
	Mode              string                    `json:"mode"`
	Type              string                    `json:"type"`
	Name              string                    `json:"name"`
	ProviderConfigKey string                    `json:"provider_config_key"`
	Expressions       map[string]JSONExpression `json:"expressions,omitempty"`
}

// JSONConfigOutput is one configured output.
type JSONConfigOutput struct {
	Sensitive bool `json:"sensitive,omitempty"`
}

// JSONConfigVariable is one configured variable.
type JSONConfigVariable struct {
	Sensitive bool `json:"sensitive,omitempty"`
}

// JSONState is Terraform's state representation.
type JSONState struct {
	FormatVersion    string     `json:"format_version"`
	TerraformVersion string     `json:"terraform_version,omitempty"`
	Lineage          string     `json:"lineage,omitempty"`
	Serial           uint64     `json:"serial"`
	Values           JSONValues `json:"values"`
}

// JSONValues holds the resources of the root module.
type JSONValues struct {
	RootModule JSONModule `json:"root_module"`
}

// JSONModule is a module's resources.
type JSONModule struct {
	Resources []JSONResource `json:"resources"`
}

// JSONResource is one resource's values.
type JSONResource struct {
	Address      string         `json:"address"`
	Mode         string         `json:"mode"`
	Type         string         `json:"type"`
	Name         string         `json:"name"`
	Index        *int           `json:"index,omitempty"`
	ProviderName string         `json:"provider_name"`
	Values       map[string]any `json:"values"`
	// SensitiveValues has true where Values holds a masked value.
	SensitiveValues map[string]any `json:"sensitive_values"`
	DependsOn       []string       `json:"depends_on,omitempty"`
	Tainted         bool           `json:"tainted,omitempty"`
	Status          string         `json:"status,omitempty"`
}

// JSONResourceChange is one entry of resource_changes.
type JSONResourceChange struct {
	Address      string     `json:"address"`
	Mode         string     `json:"mode"`
	Type         string     `json:"type"`
	Name         string     `json:"name"`
	Index        *int       `json:"index,omitempty"`
	ProviderName string     `json:"provider_name"`
	Change       JSONChange `json:"change"`
	ActionReason string     `json:"action_reason,omitempty"`
}

// JSONChange is the before/after of a resource change.
type JSONChange struct {
	Actions         []string       `json:"actions"`
	Before          map[string]any `json:"before"`
	After           map[string]any `json:"after"`
	AfterUnknown    map[string]any `json:"after_unknown"`
	BeforeSensitive map[string]any `json:"before_sensitive"`
	AfterSensitive  map[string]any `json:"after_sensitive"`
	ReplacePaths    [][]string     `json:"replace_paths,omitempty"`
}

// JSON returns the plan in Terraform's plan representation.
func (p *Plan) JSON(version string) *JSONPlan {
	out := &JSONPlan{
		FormatVersion:    "1.2",
		TerraformVersion: version,
		SkywardVersion:   version,
		OutputChanges:    map[string]JSONOutputChange{},
		Variables:        map[string]JSONVariable{},
		ResourceChanges:  []JSONResourceChange{},
		Applyable:        p.HasChanges(),
		Complete:         true,
		SkywardLineage:   p.Lineage,
		SkywardSerial:    p.Serial,
		SkywardPlanNotes: p.Notes,
	}
	out.PlannedValues.RootModule.Resources = []JSONResource{}
	for name, v := range p.Variables {
		val := v.Value
		if v.Sensitive {
			val = "(sensitive value)"
		}
		out.Variables[name] = JSONVariable{Value: val}
	}
	for _, c := range p.Changes {
		rc := JSONResourceChange{
			Address: c.Address, Mode: "managed", Type: c.Type, Name: c.Pool, Index: c.Index,
			ProviderName: c.Provider,
			Change: JSONChange{
				Actions:         c.Action.Actions(),
				Before:          MaskAttributes(c.Before, c.BeforeSensitive),
				After:           MaskAttributes(c.After, c.Sensitive),
				AfterUnknown:    map[string]any{},
				BeforeSensitive: sensitiveShape(c.Before, c.BeforeSensitive),
				AfterSensitive:  sensitiveShape(c.After, c.Sensitive),
			},
		}
		if c.After != nil && c.Action != Update {
			for _, k := range knownAfterApply[c.Type] {
				rc.Change.AfterUnknown[k] = true
			}
		}
		for _, rp := range c.ReplacePaths {
			rc.Change.ReplacePaths = append(rc.Change.ReplacePaths, []string{rp})
		}
		switch {
		case c.Action == DeleteThenCreate && c.Reason != "" && len(c.ReplacePaths) == 0:
			if c.Reason == "will be replaced, as requested" {
				rc.ActionReason = "replace_by_request"
			} else {
				rc.ActionReason = "replace_because_tainted"
			}
		case c.Action == Delete && c.Reason == "is not in the configuration":
			rc.ActionReason = "delete_because_no_resource_config"
		case c.Action == Delete && c.Reason != "":
			rc.ActionReason = "delete_because_count_index"
		}
		out.ResourceChanges = append(out.ResourceChanges, rc)
		if c.After != nil {
			out.PlannedValues.RootModule.Resources = append(out.PlannedValues.RootModule.Resources, JSONResource{
				Address: c.Address, Mode: "managed", Type: c.Type, Name: c.Pool, Index: c.Index,
				ProviderName: c.Provider, Values: MaskAttributes(c.After, c.Sensitive),
				SensitiveValues: sensitiveShape(c.After, c.Sensitive),
			})
		}
	}
	if p.Prior != nil {
		// What the configuration marks sensitive now is hidden in the
		// prior state too, even where the state did not record it.
		prior := p.Prior.DeepCopy()
		for _, c := range p.Changes {
			if r := prior.Get(c.Address); r != nil {
				r.Sensitive = unionPaths(r.Sensitive, c.BeforeSensitive)
			}
		}
		out.PriorState = StateJSON(prior)
	}
	out.Configuration = p.configurationJSON()
	for name, o := range p.Outputs {
		out.OutputChanges[name] = o.jsonChange(p.Destroy)
	}
	return out
}

// configurationJSON describes the configuration as the plan knows it: its
// providers, the pools it creates or keeps, its outputs and variables.
func (p *Plan) configurationJSON() JSONConfiguration {
	cfg := JSONConfiguration{ProviderConfig: map[string]JSONProviderConfig{}}
	cfg.RootModule.Resources = []JSONConfigResource{}
	for addr, pc := range p.Providers {
		jp := JSONProviderConfig{Name: pc.Type, FullName: "skyward/" + pc.Type, Expressions: map[string]JSONExpression{}}
		if _, alias, ok := strings.Cut(addr, "."); ok {
			jp.Alias = alias
		}
		for k, v := range pc.Config {
			jp.Expressions[k] = JSONExpression{ConstantValue: v}
		}
		cfg.ProviderConfig[addr] = jp
	}
	nodes := map[string]int{}
	for _, c := range p.Changes {
		if c.Type == "node" && c.After != nil {
			nodes[c.Pool]++
		}
	}
	for _, c := range p.Changes {
		if c.Type != "pool" || c.After == nil {
			continue
		}
		cfg.RootModule.Resources = append(cfg.RootModule.Resources, JSONConfigResource{
			Address: c.Address, Mode: "managed", Type: "pool", Name: c.Pool, ProviderConfigKey: c.Provider,
			Expressions: map[string]JSONExpression{"nodes": {ConstantValue: nodes[c.Pool]}},
		})
	}
	if len(p.Outputs) > 0 {
		cfg.RootModule.Outputs = map[string]JSONConfigOutput{}
		for name, o := range p.Outputs {
			cfg.RootModule.Outputs[name] = JSONConfigOutput{Sensitive: o.Sensitive}
		}
	}
	if len(p.Variables) > 0 {
		cfg.RootModule.Variables = map[string]JSONConfigVariable{}
		for name, v := range p.Variables {
			cfg.RootModule.Variables[name] = JSONConfigVariable{Sensitive: v.Sensitive}
		}
	}
	return cfg
}

// jsonChange is an output's entry in output_changes.
func (o OutputChange) jsonChange(destroy bool) JSONOutputChange {
	ch := JSONOutputChange{BeforeSensitive: o.Sensitive, AfterSensitive: o.Sensitive}
	if o.BeforeKnown {
		ch.Before = o.Before
	}
	switch {
	case destroy:
	case o.AfterKnown:
		ch.After = o.After
	default:
		ch.AfterUnknown = true
	}
	if o.Sensitive {
		// Masked, as everywhere else: the flags say it is sensitive.
		if o.BeforeKnown {
			ch.Before = "(sensitive value)"
		}
		if o.AfterKnown && !destroy {
			ch.After = "(sensitive value)"
		}
	}
	switch {
	case destroy:
		ch.Actions = []string{"delete"}
	case !o.BeforeKnown:
		ch.Actions = []string{"create"}
	case o.AfterKnown && reflect.DeepEqual(o.Before, o.After):
		ch.Actions = []string{"no-op"}
	default:
		ch.Actions = []string{"update"}
	}
	return ch
}

// StateJSON returns a state in Terraform's state representation.
//
// Callers that print it set TerraformVersion.
func StateJSON(st *state.State) *JSONState {
	js := &JSONState{FormatVersion: "1.0", Lineage: st.Lineage, Serial: st.Serial}
	js.Values.RootModule.Resources = []JSONResource{}
	for _, r := range st.Resources {
		vals := MaskAttributes(r.Attributes, r.Sensitive)
		if vals == nil {
			vals = map[string]any{}
		}
		vals["id"] = r.ID
		js.Values.RootModule.Resources = append(js.Values.RootModule.Resources, JSONResource{
			Address: r.Address, Mode: "managed", Type: r.Type, Name: r.Pool, Index: r.Index,
			ProviderName: r.Provider, Values: vals, SensitiveValues: sensitiveShape(r.Attributes, r.Sensitive),
			DependsOn: r.Dependencies,
			Tainted:   r.Status == state.StatusTainted, Status: string(r.Status),
		})
	}
	return js
}
