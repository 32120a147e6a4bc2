package planner

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/state"
)

// Plan is the set of changes that carries a state to a configuration, and
// everything the executor needs to carry them out without the config.
type Plan struct {
	// Lineage and Serial are those of the state the plan was made from;
	// applying a saved plan to a state that has moved on is refused.
	Lineage string `json:"lineage"`
	Serial  uint64 `json:"serial"`
	// StateExisted is false when the plan was made with no state file yet.
	StateExisted bool      `json:"state_existed"`
	Destroy      bool      `json:"destroy,omitempty"`
	Changes      []*Change `json:"changes"`
	// Providers holds the configuration of every provider the changes use,
	// by provider address.
	Providers map[string]ProviderConfig `json:"providers"`
	// Variables are the resolved input variables, for show -json.
	Variables map[string]Variable `json:"variables,omitempty"`
	// Prior is the refreshed state the plan was made against.
	Prior *state.State `json:"prior_state"`
	// Notes are things refresh found (objects missing, orphans adopted).
	Notes []string `json:"notes,omitempty"`
	// Outputs are the configuration's outputs, before and after the plan,
	// for show -json's output_changes. The caller that holds the
	// configuration fills them in; nil when it did not.
	Outputs map[string]OutputChange `json:"outputs,omitempty"`
	// Warnings are about the options the plan was made with: a -replace
	// or -target naming nothing.
	Warnings []string `json:"warnings,omitempty"`
}

// OutputChange is one output value before and after a plan. A value is
// JSON-shaped data; Known false means it is known only after apply. The
// values of a sensitive output are never recorded (nil), only whether
// they are known.
type OutputChange struct {
	Before      any  `json:"before"`
	BeforeKnown bool `json:"before_known"`
	After       any  `json:"after"`
	AfterKnown  bool `json:"after_known"`
	Sensitive   bool `json:"sensitive,omitempty"`
}

// ProviderConfig is a provider's type and its non-sensitive arguments as
// JSON-shaped values (see NewProviderConfig).
type ProviderConfig struct {
	Type   string         `json:"type"`
	Config map[string]any `json:"config"`
}

// Variable is one resolved input variable as recorded in a plan.
type Variable struct {
	Value     any  `json:"value"`
	Sensitive bool `json:"sensitive,omitempty"`
}

// Change is the planned action on one resource.
type Change struct {
	Address  string `json:"address"`
	Type     string `json:"type"` // "pool" | "node"
	Pool     string `json:"pool"`
	Index    *int   `json:"index,omitempty"`
	Provider string `json:"provider"`
	Action   Action `json:"action"`
	// Before is the resource's attributes in the prior state (nil when
	// created); After the desired attributes (nil when deleted). After
	// never holds provider facts: those are known after apply.
	Before map[string]any `json:"before,omitempty"`
	After  map[string]any `json:"after,omitempty"`
	// Sensitive lists the paths of After whose values derive from a
	// sensitive variable, BeforeSensitive those of Before (as recorded in
	// state, and what the configuration marks now). Human and JSON output
	// show them masked; the values are kept for the executor.
	Sensitive       [][]string `json:"sensitive,omitempty"`
	BeforeSensitive [][]string `json:"before_sensitive,omitempty"`
	// ReplacePaths names the attributes whose change forces replacement.
	ReplacePaths []string `json:"replace_paths,omitempty"`
	// Reason explains an action not visible in the attributes
	// ("tainted", "missing on the provider", "not in configuration").
	Reason string `json:"reason,omitempty"`
	// PriorID is the provider id of the object being updated, replaced or
	// deleted.
	PriorID string `json:"prior_id,omitempty"`
}

// HasChanges reports whether the plan would change anything.
func (p *Plan) HasChanges() bool {
	for _, c := range p.Changes {
		if c.Action != NoOp {
			return true
		}
	}
	return false
}

// Counts returns how many resources the plan adds, changes and destroys; a
// replacement counts in add and destroy.
func (p *Plan) Counts() (add, change, destroy int) {
	for _, c := range p.Changes {
		switch c.Action {
		case Create:
			add++
		case Update:
			change++
		case Delete:
			destroy++
		case DeleteThenCreate:
			add++
			destroy++
		}
	}
	return
}

// Summary is the plan's last line, exactly as Terraform words it.
func (p *Plan) Summary() string {
	if !p.HasChanges() {
		return "No changes. Your infrastructure matches the configuration."
	}
	add, change, destroy := p.Counts()
	return fmt.Sprintf("Plan: %d to add, %d to change, %d to destroy.", add, change, destroy)
}

// Change returns the change for addr, or nil.
func (p *Plan) Change(addr string) *Change {
	for _, c := range p.Changes {
		if c.Address == addr {
			return c
		}
	}
	return nil
}

// sortChanges orders changes by pool, the pool before its nodes, nodes by
// index.
func sortChanges(cs []*Change) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
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
		return ai < bi
	})
}

// ParseAddress splits "pool.dev" and "pool.dev.node[1]" (also the short
// "dev/1" and "dev") into a pool name and a node index (-1 for the pool).
func ParseAddress(addr string) (pool string, index int, err error) {
	pool, index, err = parseAddress(addr)
	if err == nil && !validPoolName(pool) {
		return "", 0, fmt.Errorf("invalid resource address %q: %q is not a pool name", addr, pool)
	}
	return pool, index, err
}

// validPoolName reports whether s can name a pool: an HCL identifier
// (which the configuration requires of block names), in valid UTF-8.
func validPoolName(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsAny(s, "./[] ") && hclsyntax.ValidIdentifier(s)
}

func parseAddress(addr string) (pool string, index int, err error) {
	if p, i, ok := strings.Cut(addr, "/"); ok && !strings.HasPrefix(addr, "pool.") {
		var n int
		if _, err := fmt.Sscanf(i, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != i {
			return "", 0, fmt.Errorf("invalid node address %q: want POOL/INDEX or pool.POOL.node[INDEX]", addr)
		}
		return p, n, nil
	}
	rest, ok := strings.CutPrefix(addr, "pool.")
	if !ok || rest == "" {
		return "", 0, fmt.Errorf("invalid resource address %q: want pool.NAME or pool.NAME.node[INDEX]", addr)
	}
	name, node, hasNode := strings.Cut(rest, ".")
	if !hasNode {
		return name, -1, nil
	}
	var n int
	if _, err := fmt.Sscanf(node, "node[%d]", &n); err != nil || n < 0 || node != fmt.Sprintf("node[%d]", n) {
		return "", 0, fmt.Errorf("invalid resource address %q: want pool.NAME or pool.NAME.node[INDEX]", addr)
	}
	return name, n, nil
}

// CanonicalAddress turns any accepted address form into the state address.
func CanonicalAddress(addr string) (string, error) {
	pool, idx, err := ParseAddress(addr)
	if err != nil {
		return "", err
	}
	if idx < 0 {
		return providers.PoolAddress(pool), nil
	}
	return providers.NodeAddress(pool, idx), nil
}
