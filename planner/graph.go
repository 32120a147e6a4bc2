package planner

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Op is one provider operation in the provisioning graph.
type Op string

const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
)

// Step is a vertex of the provisioning graph: one operation on one
// resource. A replacement is two steps, delete then create.
type Step struct {
	ID     string // "create pool.dev.node[0]"
	Op     Op
	Change *Change
	// Deps are the IDs of the steps that must finish first.
	Deps []string
}

// Steps returns the provisioning graph of the plan, in a stable order
// (dependencies do not need to come first). Nodes are created after their
// pool and deleted before it; a replaced resource is deleted before its
// replacement is created.
func (p *Plan) Steps() []*Step {
	var steps []*Step
	byID := map[string]*Step{}
	add := func(op Op, c *Change) *Step {
		s := &Step{ID: string(op) + " " + c.Address, Op: op, Change: c}
		steps = append(steps, s)
		byID[s.ID] = s
		return s
	}
	for _, c := range p.Changes {
		switch c.Action {
		case Create:
			add(OpCreate, c)
		case Update:
			add(OpUpdate, c)
		case Delete:
			add(OpDelete, c)
		case DeleteThenCreate:
			d := add(OpDelete, c)
			cr := add(OpCreate, c)
			cr.Deps = append(cr.Deps, d.ID)
		}
	}
	for _, s := range steps {
		c := s.Change
		if c.Type == "pool" {
			if s.Op == OpDelete {
				for _, o := range steps {
					if o.Op == OpDelete && o.Change.Type == "node" && o.Change.Pool == c.Pool {
						s.Deps = append(s.Deps, o.ID)
					}
				}
			}
			continue
		}
		if s.Op == OpCreate || s.Op == OpUpdate {
			if ps, ok := byID["create pool."+c.Pool]; ok {
				s.Deps = append(s.Deps, ps.ID)
			}
		}
	}
	for _, s := range steps {
		sort.Strings(s.Deps)
	}
	return steps
}

// WriteDOT writes the provisioning graph in Graphviz DOT. With no changes
// it writes the resources of the prior state and how they depend on each
// other.
func (p *Plan) WriteDOT(w io.Writer) error {
	var b strings.Builder
	b.WriteString("digraph skyward {\n\trankdir = \"BT\"\n\tnode [shape = \"box\"]\n")
	steps := p.Steps()
	if len(steps) > 0 {
		for _, s := range steps {
			fmt.Fprintf(&b, "\t%q [label = %q]\n", s.ID, s.Change.Action.Symbol()+" "+s.ID)
		}
		for _, s := range steps {
			for _, d := range s.Deps {
				fmt.Fprintf(&b, "\t%q -> %q\n", s.ID, d)
			}
		}
	} else if p.Prior != nil {
		for _, r := range p.Prior.Resources {
			fmt.Fprintf(&b, "\t%q\n", r.Address)
		}
		for _, r := range p.Prior.Resources {
			if r.Type == "node" {
				fmt.Fprintf(&b, "\t%q -> %q\n", r.Address, "pool."+r.Pool)
			}
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}
