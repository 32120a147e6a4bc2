package hclspec

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

var taskSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "pool", Required: true},
		{Name: "run"},
		{Name: "command"},
		{Name: "mode"},
		{Name: "target"},
		{Name: "shard"},
		{Name: "for_each"},
		{Name: "count"},
		{Name: "env"},
		{Name: "timeout"},
		{Name: "retries"},
		{Name: "fail_fast"},
		{Name: "distributed"},
	},
}

// Presets of distributed, the engines a task can be handed the pool for.
const (
	// DistributedTorch runs on every node with torch.distributed's
	// environment (MASTER_ADDR, WORLD_SIZE, NODE_RANK, ...).
	DistributedTorch = "torch"
	// DistributedMPI runs once, on the head, with a hostfile and an
	// mpirun that reaches every node.
	DistributedMPI = "mpi"
	// DistributedDask runs once, on the head, with a Dask scheduler there
	// and a worker on every node.
	DistributedDask = "dask"
)

// Task modes.
const (
	ModeSingle    = "single"
	ModeBroadcast = "broadcast"
)

// TargetHead is the target that names a pool's head node.
const TargetHead = "head"

func (l *loader) decodeTask(b *hcl.Block) (*Task, hcl.Diagnostics) {
	t := &Task{
		Name:      b.Labels[0],
		Mode:      ModeSingle,
		FailFast:  true,
		DeclRange: b.DefRange,
	}
	content, diags := b.Body.Content(taskSchema)

	poolNodes := -1 // unknown
	if attr, ok := content.Attributes["pool"]; ok {
		names, ok, d := traversalArg(attr, "pool", "pool", "pool.dev")
		diags = append(diags, d...)
		if ok {
			if _, declared := l.poolDecls[names[0]]; declared {
				t.Pool = names[0]
				if p := l.cfg.Pools[t.Pool]; p != nil && !l.badNodes[t.Pool] {
					poolNodes = p.Nodes
				}
			} else {
				diags = append(diags, undeclaredPool(names[0], attr.Expr.Range()))
			}
		}
	}

	// The mode decides which other arguments are allowed, so it comes first
	// and must be known.
	modeOK := true
	if attr, ok := content.Attributes["mode"]; ok {
		s, set := l.stringArg(content, "mode", &diags)
		switch {
		case !set:
			modeOK = false
		case s == ModeSingle || s == ModeBroadcast:
			t.Mode = s
		default:
			modeOK = false
			diags = append(diags, &hcl.Diagnostic{
				Severity:    hcl.DiagError,
				Summary:     "Invalid task mode",
				Detail:      fmt.Sprintf("The mode must be %q (run once, on one node) or %q (run on every node); got %q.", ModeSingle, ModeBroadcast, s),
				Subject:     attr.Expr.Range().Ptr(),
				Expression:  attr.Expr,
				EvalContext: l.evalContext(),
			})
		}
	}
	broadcast := modeOK && t.Mode == ModeBroadcast
	single := modeOK && t.Mode == ModeSingle

	// run or command, exactly one.
	runAttr, hasRun := content.Attributes["run"]
	cmdAttr, hasCmd := content.Attributes["command"]
	switch {
	case hasRun && hasCmd:
		diags = append(diags, conflict(laterAttr(runAttr, cmdAttr), "run", "command",
			"A task runs either a shell script (run) or an argument list (command), not both."))
	case !hasRun && !hasCmd:
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing run or command",
			Detail:   fmt.Sprintf("The task %q needs either run (a shell script) or command (an argument list).", t.Name),
			Subject:  b.DefRange.Ptr(),
		})
	}
	if hasRun {
		if v, ok, d := l.arg(runAttr, cty.String, false); t.record(v, ok, d, &diags) {
			if strings.TrimSpace(v.AsString()) == "" {
				diags = append(diags, l.invalidValue(runAttr, "The run script of task %q is empty; give the shell commands to run.", t.Name))
			} else {
				t.Run = v.AsString()
			}
		}
	}
	if hasCmd {
		if v, ok, d := l.arg(cmdAttr, cty.List(cty.String), false); t.record(v, ok, d, &diags) {
			if v.LengthInt() == 0 {
				diags = append(diags, l.invalidValue(cmdAttr, "The command must have at least one element: the program to run."))
			} else if cmd, d := stringList(cmdAttr, v); d.HasErrors() {
				diags = append(diags, d...)
			} else if strings.TrimSpace(cmd[0]) == "" {
				diags = append(diags, l.invalidValue(cmdAttr, "The first element of command, the program to run, is empty."))
			} else {
				t.Command = cmd
			}
		}
	}

	if attr, ok := content.Attributes["target"]; ok {
		if broadcast {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid use of target",
				Detail:   "The target argument chooses the node of a single task; a broadcast task runs on every node.",
				Subject:  attr.NameRange.Ptr(),
			})
		} else if single {
			diags = append(diags, l.decodeTarget(t, attr, poolNodes)...)
		}
	}

	if attr, ok := content.Attributes["shard"]; ok {
		if !broadcast && modeOK {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid use of shard",
				Detail:   "The shard argument splits a list over the nodes of a broadcast task; set mode = \"broadcast\" or remove shard.",
				Subject:  attr.NameRange.Ptr(),
			})
		} else if v, ok, d := l.arg(attr, cty.DynamicPseudoType, false); t.record(v, ok, d, &diags) {
			if ty := v.Type(); !ty.IsListType() && !ty.IsTupleType() && !ty.IsSetType() {
				diags = append(diags, typeError(attr, "a list, tuple or set is required"))
			} else {
				t.Shard, t.HasShard = elements(v), true
			}
		}
	}

	forEachAttr, hasForEach := content.Attributes["for_each"]
	countAttr, hasCount := content.Attributes["count"]
	if hasForEach && hasCount {
		diags = append(diags, conflict(laterAttr(forEachAttr, countAttr), "for_each", "count",
			"A task repeats over either a collection (for_each) or a number (count), not both."))
	}
	for _, attr := range []*hcl.Attribute{forEachAttr, countAttr} {
		if attr != nil && broadcast {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Conflicting arguments",
				Detail: fmt.Sprintf("The %s argument repeats a single task; a broadcast task already runs once on every node. "+
					"Use shard to split data over the nodes.", attr.Name),
				Subject: attr.NameRange.Ptr(),
			})
		}
	}
	if hasForEach && !hasCount && !broadcast {
		if v, ok, d := l.arg(forEachAttr, cty.DynamicPseudoType, false); t.record(v, ok, d, &diags) {
			switch ty := v.Type(); {
			case (ty.IsCollectionType() || ty.IsTupleType() || ty.IsObjectType()) && v.LengthInt() > MaxTaskItems:
				diags = append(diags, l.invalidValue(forEachAttr, "The for_each of a task may have at most %d items; got %d.", MaxTaskItems, v.LengthInt()))
			case ty.IsListType(), ty.IsTupleType(), ty.IsSetType():
				i := 0
				for _, e := range elements(v) {
					t.ForEach = append(t.ForEach, EachItem{Key: cty.NumberIntVal(int64(i)), Value: e})
					i++
				}
				t.HasForEach = true
			case ty.IsMapType(), ty.IsObjectType():
				// Both iterate in key order.
				for it := v.ElementIterator(); it.Next(); {
					k, e := it.Element()
					t.ForEach = append(t.ForEach, EachItem{Key: k, Value: e})
				}
				t.HasForEach = true
			default:
				diags = append(diags, typeError(forEachAttr, "a list, set or map is required"))
			}
		}
	}
	if hasCount && !hasForEach && !broadcast {
		if v, ok, d := l.arg(countAttr, cty.Number, false); t.record(v, ok, d, &diags) {
			if n, ok := l.checkInt(countAttr, v, 0, MaxTaskItems, &diags); ok {
				t.ForEach = make([]EachItem, n)
				for i := range n {
					t.ForEach[i] = EachItem{Key: cty.NumberIntVal(int64(i)), Value: cty.NumberIntVal(int64(i))}
				}
				t.HasForEach, t.HasCount = true, true
			}
		}
	}

	if attr, ok := content.Attributes["env"]; ok {
		if v, ok, d := l.arg(attr, cty.Map(cty.String), false); t.record(v, ok, d, &diags) {
			env, d := stringMap(attr, v)
			diags = append(diags, d...)
			diags = append(diags, checkEnvNames(attr, env)...)
			t.Env = env
		}
	}
	t.Timeout, _ = l.durationArg(content, "timeout", &diags)
	t.Retries, _ = l.intArg(content, "retries", 0, 0, &diags)
	if ff, ok := l.boolArg(content, "fail_fast", &diags); ok {
		t.FailFast = ff
	}
	if attr, ok := content.Attributes["distributed"]; ok {
		diags = append(diags, l.decodeDistributed(t, attr, content)...)
	}
	return t, diags
}

// decodeDistributed checks distributed against the task's other arguments:
// torch runs on every node (a broadcast), mpi and dask once, on the head.
func (l *loader) decodeDistributed(t *Task, attr *hcl.Attribute, content *hcl.BodyContent) hcl.Diagnostics {
	var diags hcl.Diagnostics
	s, set := l.stringArg(content, "distributed", &diags)
	if !set {
		return diags
	}
	_, hasMode := content.Attributes["mode"]
	clash := func(arg, why string) {
		a := content.Attributes[arg]
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Conflicting arguments",
			Detail:   fmt.Sprintf("A task with distributed = %q %s, so it cannot set %s.", s, why, arg),
			Subject:  a.NameRange.Ptr(),
		})
	}
	switch s {
	case DistributedTorch:
		if hasMode && t.Mode != ModeBroadcast {
			clash("mode", "runs on every node (a broadcast)")
		}
		for _, arg := range []string{"target", "for_each", "count"} {
			if _, ok := content.Attributes[arg]; ok {
				clash(arg, "runs on every node (a broadcast)")
			}
		}
		t.Mode = ModeBroadcast
	case DistributedMPI, DistributedDask:
		if hasMode && t.Mode != ModeSingle {
			clash("mode", "runs once, on the head")
		}
		for _, arg := range []string{"for_each", "count", "shard"} {
			if _, ok := content.Attributes[arg]; ok {
				clash(arg, "runs once, on the head")
			}
		}
		if t.Target != "" && t.Target != TargetHead && t.Target != "0" {
			clash("target", "runs once, on the head")
		}
		t.Mode, t.Target = ModeSingle, TargetHead
	default:
		return append(diags, l.invalidValue(attr, "The value of distributed must be %q, %q or %q; got %q.", DistributedTorch, DistributedMPI, DistributedDask, s))
	}
	t.Distributed = s
	return diags
}

// record appends an argument's diagnostics and reports whether its value can
// be used: known and not null. An unknown value marks the task incomplete.
func (t *Task) record(v cty.Value, ok bool, d hcl.Diagnostics, diags *hcl.Diagnostics) bool {
	*diags = append(*diags, d...)
	if !ok || v.IsNull() {
		return false
	}
	if !v.IsWhollyKnown() {
		t.Incomplete = true
		return false
	}
	return true
}

func (l *loader) decodeTarget(t *Task, attr *hcl.Attribute, poolNodes int) hcl.Diagnostics {
	v, ok, diags := l.arg(attr, cty.DynamicPseudoType, false)
	if !t.record(v, ok, diags, &diags) {
		return diags
	}
	idx := -1
	switch v.Type() {
	case cty.String:
		s := v.AsString()
		if s == TargetHead {
			t.Target = TargetHead
			return diags
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return append(diags, l.invalidValue(attr, "The target must be %q or a node index (0 for the head); got %q.", TargetHead, s))
		}
		idx = n
	case cty.Number:
		n, isInt := wholeNumber(v)
		if !isInt || n < 0 {
			return append(diags, l.invalidValue(attr, "The target must be %q or a node index (0 for the head); got %s.", TargetHead, formatNumber(v)))
		}
		idx = n
	default:
		return append(diags, typeError(attr, "\"head\" or a node index is required"))
	}
	if poolNodes >= 0 && idx >= poolNodes {
		return append(diags, l.invalidValue(attr, "The pool %q has %d node(s), so the target must be %q or an index from 0 to %d; got %d.",
			t.Pool, poolNodes, TargetHead, poolNodes-1, idx))
	}
	t.Target = strconv.Itoa(idx)
	return diags
}

func elements(v cty.Value) []cty.Value {
	out := make([]cty.Value, 0, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		out = append(out, e)
	}
	return out
}

func typeError(attr *hcl.Attribute, msg string) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Incorrect attribute value type",
		Detail:   fmt.Sprintf("Inappropriate value for attribute %q: %s.", attr.Name, msg),
		Subject:  attr.Expr.Range().Ptr(),
	}
}

// laterAttr returns whichever of a and b comes later in the source: the one
// a conflict is reported on.
func laterAttr(a, b *hcl.Attribute) *hcl.Attribute {
	ra, rb := a.NameRange, b.NameRange
	if ra.Filename == rb.Filename && ra.Start.Byte > rb.Start.Byte {
		return a
	}
	return b
}

func conflict(at *hcl.Attribute, a, b, why string) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Conflicting arguments",
		Detail:   fmt.Sprintf("Only one of %q and %q may be set. %s", a, b, why),
		Subject:  at.NameRange.Ptr(),
	}
}
