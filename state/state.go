package state

import (
	"sort"
)

// FormatVersion is the state format this build writes. A state file with a
// higher version is refused.
const FormatVersion = 1

// Status of a resource in state.
type Status string

const (
	// StatusReady: the resource was created (and, for nodes, reached) and
	// is in use.
	StatusReady Status = "ready"
	// StatusTainted: the resource exists but failed after creation (a node
	// whose bootstrap failed); the next plan replaces it.
	StatusTainted Status = "tainted"
	// StatusCreating: the provider object exists but the controller has not
	// finished bringing it up (a crash left it so); the next plan replaces it.
	StatusCreating Status = "creating"
)

// State is the content of .skyward/state.json.
type State struct {
	Version   int         `json:"version"`
	Serial    uint64      `json:"serial"`
	Lineage   string      `json:"lineage"`
	Resources []*Resource `json:"resources"`
}

// Resource is one resource in state.
type Resource struct {
	Address  string `json:"address"`
	Type     string `json:"type"` // "pool" or "node"
	Pool     string `json:"pool"`
	Index    *int   `json:"index,omitempty"` // node index; nil for pools
	Provider string `json:"provider"`        // provider address: "container", "aws.west"
	ID       string `json:"id"`
	// Attributes: the desired settings the resource was created with (for
	// diffing) and the provider's facts (addresses, ports, pinned host key).
	Attributes map[string]any `json:"attributes"`
	// Sensitive lists the attribute paths whose values derive from a
	// sensitive variable (["env", "TOKEN"]: a map key; ["setup", "1"]: a
	// list index; ["env"]: the whole attribute). Their values are kept
	// here, in a 0600 file, but never shown.
	Sensitive    [][]string `json:"sensitive_attributes,omitempty"`
	Dependencies []string   `json:"dependencies,omitempty"`
	Status       Status     `json:"status"`
}

// New returns an empty state with the given lineage.
func New(lineage string) *State {
	return &State{Version: FormatVersion, Lineage: lineage}
}

// Get returns the resource at addr, or nil.
func (s *State) Get(addr string) *Resource {
	for _, r := range s.Resources {
		if r.Address == addr {
			return r
		}
	}
	return nil
}

// Set adds r or replaces the resource with r's address, keeping resources
// sorted by address.
func (s *State) Set(r *Resource) {
	for i, old := range s.Resources {
		if old.Address == r.Address {
			s.Resources[i] = r
			return
		}
	}
	s.Resources = append(s.Resources, r)
	s.sort()
}

// Remove deletes the resource at addr and reports whether it was there.
func (s *State) Remove(addr string) bool {
	for i, r := range s.Resources {
		if r.Address == addr {
			s.Resources = append(s.Resources[:i], s.Resources[i+1:]...)
			return true
		}
	}
	return false
}

// DeepCopy returns a copy that shares nothing mutable with s.
func (s *State) DeepCopy() *State {
	c := *s
	c.Resources = make([]*Resource, len(s.Resources))
	for i, r := range s.Resources {
		c.Resources[i] = r.DeepCopy()
	}
	return &c
}

// DeepCopy returns a copy of r that shares nothing mutable with it.
func (r *Resource) DeepCopy() *Resource {
	c := *r
	if r.Index != nil {
		i := *r.Index
		c.Index = &i
	}
	c.Attributes = copyMap(r.Attributes)
	c.Dependencies = append([]string(nil), r.Dependencies...)
	c.Sensitive = nil
	for _, p := range r.Sensitive {
		c.Sensitive = append(c.Sensitive, append([]string(nil), p...))
	}
	return &c
}

func copyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case map[string]any:
			out[k] = copyMap(v)
		case []any:
			out[k] = append(make([]any, 0, len(v)), v...)
		default:
			out[k] = v
		}
	}
	return out
}

// sort orders resources by pool, pools before their nodes, nodes by index.
func (s *State) sort() {
	sort.SliceStable(s.Resources, func(i, j int) bool {
		a, b := s.Resources[i], s.Resources[j]
		if a.Pool != b.Pool {
			return a.Pool < b.Pool
		}
		ai, bi := -1, -1
		if a.Index != nil {
			ai = *a.Index
		}
		if b.Index != nil {
			bi = *b.Index
		}
		if ai != bi {
			return ai < bi
		}
		return a.Address < b.Address
	})
}
