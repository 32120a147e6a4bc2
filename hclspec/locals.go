package hclspec

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// decodeLocals gathers the attributes of every locals block and evaluates
// them in dependency order, reporting duplicates and cycles.
func (l *loader) decodeLocals(bs []*hcl.Block) hcl.Diagnostics {
	var diags hcl.Diagnostics
	var order []string // declaration order
	for _, b := range bs {
		attrs, aDiags := b.Body.JustAttributes()
		broken := l.broken[b.DefRange.Filename]
		if !broken {
			diags = append(diags, aDiags...)
		}
		for _, name := range sortedAttrNames(attrs) {
			attr := attrs[name]
			if !hclsyntax.ValidIdentifier(name) {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid local value name",
					Detail:   fmt.Sprintf("The name %q is not valid for a local value.", name),
					Subject:  attr.NameRange.Ptr(),
				})
				continue
			}
			if prev, exists := l.localDecls[name]; exists {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Duplicate local value",
					Detail: fmt.Sprintf("A local value named %q was already defined at %s. Local value names must be unique.",
						name, prev.NameRange),
					Subject: attr.NameRange.Ptr(),
				})
				continue
			}
			l.localDecls[name] = attr
			if broken {
				l.failed["local."+name] = true
				continue
			}
			order = append(order, name)
		}
	}

	// Dependencies between locals, in declaration order for determinism.
	index := make(map[string]int, len(order))
	for i, name := range order {
		index[name] = i
	}
	deps := make([][]int, len(order))
	for i, name := range order {
		seen := map[int]bool{}
		for _, tr := range l.localDecls[name].Expr.Variables() {
			if tr.RootName() != "local" || len(tr) < 2 {
				continue
			}
			a, ok := tr[1].(hcl.TraverseAttr)
			if !ok {
				continue
			}
			if j, ok := index[a.Name]; ok && !seen[j] {
				seen[j] = true
				deps[i] = append(deps[i], j)
			}
		}
		sort.Ints(deps[i])
	}

	// Strongly connected components come out of Tarjan's algorithm with
	// every component after those it depends on: evaluation order.
	for _, scc := range tarjan(deps) {
		if len(scc) > 1 || contains(deps[scc[0]], scc[0]) {
			sort.Ints(scc)
			names := make([]string, len(scc))
			for i, n := range scc {
				names[i] = "local." + order[n]
				l.failed[names[i]] = true
			}
			detail := fmt.Sprintf("The local value %s refers to itself.", names[0])
			if len(names) > 1 {
				detail = fmt.Sprintf("The local values %s refer to each other in a cycle, so none of them can be evaluated.",
					strings.Join(names, ", "))
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Cycle in local values",
				Detail:   detail,
				Subject:  l.localDecls[order[scc[0]]].NameRange.Ptr(),
			})
			continue
		}
		name := order[scc[0]]
		val, ok, d := l.eval(l.localDecls[name].Expr, scopeAll)
		diags = append(diags, d...)
		if !ok {
			l.failed["local."+name] = true
			continue
		}
		l.locals[name] = val
		l.cfg.Locals[name], _ = val.UnmarkDeep()
	}
	return diags
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// tarjan returns the strongly connected components of the graph whose edges
// are deps, each component after every component it has an edge to.
func tarjan(deps [][]int) [][]int {
	n := len(deps)
	idx := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range idx {
		idx[i] = -1
	}
	var stack []int
	var out [][]int
	next := 0
	var visit func(v int)
	visit = func(v int) {
		idx[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range deps[v] {
			if idx[w] < 0 {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], idx[w])
			}
		}
		if low[v] == idx[v] {
			var scc []int
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				scc = append(scc, w)
				if w == v {
					break
				}
			}
			out = append(out, scc)
		}
	}
	for v := 0; v < n; v++ {
		if idx[v] < 0 {
			visit(v)
		}
	}
	return out
}

// sortByRange sorts names by the source position rng gives them.
func sortByRange(names []string, rng func(string) hcl.Range) {
	sort.Slice(names, func(i, j int) bool {
		a, b := rng(names[i]), rng(names[j])
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
}
