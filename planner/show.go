package planner

import (
	"github.com/skyward-sh/skyward/state"
)

// JSON representation shapes, after Terraform's `show -json`.

// JSONPlan is Terraform's plan representation.
type JSONPlan struct {
	FormatVersion    string                  `json:"format_version"`
	SkywardVersion   string                  `json:"skyward_version,omitempty"`
	Variables        map[string]JSONVariable `json:"variables"`
	PlannedValues    JSONValues              `json:"planned_values"`
	ResourceChanges  []JSONResourceChange    `json:"resource_changes"`
	PriorState       *JSONState              `json:"prior_state,omitempty"`
	Applyable        bool                    `json:"applyable"`
	Complete         bool                    `json:"complete"`
	Errored          bool                    `json:"errored"`
	SkywardLineage   string                  `json:"skyward_lineage,omitempty"`
	SkywardSerial    uint64                  `json:"skyward_serial"`
	SkywardPlanNotes []string                `json:"skyward_notes,omitempty"`
}

// JSONVariable is a variable's value in a plan.
type JSONVariable struct {
	Value any `json:"value"`
}

// JSONState is Terraform's state representation.
type JSONState struct {
	FormatVersion string     `json:"format_version"`
	Lineage       string     `json:"lineage,omitempty"`
	Serial        uint64     `json:"serial"`
	Values        JSONValues `json:"values"`
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
		SkywardVersion:   version,
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
	return out
}

// StateJSON returns a state in Terraform's state representation.
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
