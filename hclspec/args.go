package hclspec

import (
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// mark is the type of the marks this package puts on cty values.
type mark string

// sensitive marks values that derive from a sensitive variable.
const sensitive = mark("sensitive")

// arg evaluates an argument and converts it to ty. ok is false when the value
// is unusable (problems were reported, or it depends on one that was). A
// usable value may be null (treat as unset) and, unless needKnown, unknown.
// The result carries no marks.
func (l *loader) arg(attr *hcl.Attribute, ty cty.Type, needKnown bool) (cty.Value, bool, hcl.Diagnostics) {
	val, ok, diags := l.eval(attr.Expr, scopeAll)
	if !ok {
		return val, false, diags
	}
	val, pvm := val.UnmarkDeepWithPaths()
	for _, pv := range pvm {
		if _, ok := pv.Marks[sensitive]; ok {
			l.sensitive = append(l.sensitive, append(cty.GetAttrPath(attr.Name), pv.Path...))
		}
	}
	return l.convertArg(attr, val, ty, needKnown, diags)
}

// takeSensitive returns the paths of the sensitive values that arg has
// seen since the last call, as attribute paths of the block being decoded
// (["env", "TOKEN"], ["setup", "0"]), and forgets them.
func (l *loader) takeSensitive() [][]string {
	var out [][]string
	for _, p := range l.sensitive {
		out = append(out, pathStrings(p))
	}
	l.sensitive = nil
	return out
}

// pathStrings writes a cty path as strings: attribute names and map keys as
// they are, list indexes in decimal.
func pathStrings(p cty.Path) []string {
	out := make([]string, 0, len(p))
	for _, step := range p {
		switch s := step.(type) {
		case cty.GetAttrStep:
			out = append(out, s.Name)
		case cty.IndexStep:
			switch {
			case s.Key.Type() == cty.String:
				out = append(out, s.Key.AsString())
			case s.Key.Type() == cty.Number:
				out = append(out, s.Key.AsBigFloat().Text('f', -1))
			}
		}
	}
	return out
}

func (l *loader) convertArg(attr *hcl.Attribute, val cty.Value, ty cty.Type, needKnown bool, diags hcl.Diagnostics) (cty.Value, bool, hcl.Diagnostics) {
	if needKnown && !val.IsWhollyKnown() {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Value not known until apply",
			Detail: fmt.Sprintf("The value of %q depends on pool attributes that are known only after apply, "+
				"but it is needed before anything is applied.", attr.Name),
			Subject:     attr.Expr.Range().Ptr(),
			Expression:  attr.Expr,
			EvalContext: l.evalContext(),
		})
		return cty.DynamicVal, false, diags
	}
	if val.IsNull() {
		return cty.NullVal(ty), true, diags
	}
	conv, err := convert.Convert(val, ty)
	if err != nil {
		diags = append(diags, &hcl.Diagnostic{
			Severity:    hcl.DiagError,
			Summary:     "Incorrect attribute value type",
			Detail:      fmt.Sprintf("Inappropriate value for attribute %q: %s.", attr.Name, err),
			Subject:     attr.Expr.Range().Ptr(),
			Expression:  attr.Expr,
			EvalContext: l.evalContext(),
		})
		return cty.DynamicVal, false, diags
	}
	return conv, true, diags
}

// invalidValue is the diagnostic for a well-typed argument whose value is
// out of range.
func (l *loader) invalidValue(attr *hcl.Attribute, format string, args ...any) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity:    hcl.DiagError,
		Summary:     fmt.Sprintf("Invalid value for %s", attr.Name),
		Detail:      fmt.Sprintf(format, args...),
		Subject:     attr.Expr.Range().Ptr(),
		Expression:  attr.Expr,
		EvalContext: l.evalContext(),
	}
}

// stringArg decodes a known string argument; set is false when it is absent,
// null or invalid.
func (l *loader) stringArg(content *hcl.BodyContent, name string, diags *hcl.Diagnostics) (s string, set bool) {
	attr, ok := content.Attributes[name]
	if !ok {
		return "", false
	}
	v, ok, d := l.arg(attr, cty.String, true)
	*diags = append(*diags, d...)
	if !ok || v.IsNull() {
		return "", false
	}
	return v.AsString(), true
}

// stringListArg decodes a known list of strings; nil when absent or null.
func (l *loader) stringListArg(content *hcl.BodyContent, name string, diags *hcl.Diagnostics) ([]string, bool) {
	attr, ok := content.Attributes[name]
	if !ok {
		return nil, false
	}
	v, ok, d := l.arg(attr, cty.List(cty.String), true)
	*diags = append(*diags, d...)
	if !ok || v.IsNull() {
		return nil, false
	}
	out, d := stringList(attr, v)
	*diags = append(*diags, d...)
	return out, !d.HasErrors()
}

func stringList(attr *hcl.Attribute, v cty.Value) ([]string, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	out := make([]string, 0, v.LengthInt())
	for i, it := 0, v.ElementIterator(); it.Next(); i++ {
		_, e := it.Element()
		if e.IsNull() {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Incorrect attribute value type",
				Detail:   fmt.Sprintf("Inappropriate value for attribute %q: element %d is null; a string is required.", attr.Name, i),
				Subject:  attr.Expr.Range().Ptr(),
			})
			continue
		}
		out = append(out, e.AsString())
	}
	return out, diags
}

// stringMapArg decodes a known map of strings; nil when absent or null.
func (l *loader) stringMapArg(content *hcl.BodyContent, name string, diags *hcl.Diagnostics) (map[string]string, bool) {
	attr, ok := content.Attributes[name]
	if !ok {
		return nil, false
	}
	v, ok, d := l.arg(attr, cty.Map(cty.String), true)
	*diags = append(*diags, d...)
	if !ok || v.IsNull() {
		return nil, false
	}
	out, d := stringMap(attr, v)
	*diags = append(*diags, d...)
	return out, !d.HasErrors()
}

func stringMap(attr *hcl.Attribute, v cty.Value) (map[string]string, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	out := make(map[string]string, v.LengthInt())
	for k, e := range v.AsValueMap() {
		if e.IsNull() {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Incorrect attribute value type",
				Detail:   fmt.Sprintf("Inappropriate value for attribute %q: element %q is null; a string is required.", attr.Name, k),
				Subject:  attr.Expr.Range().Ptr(),
			})
			continue
		}
		out[k] = e.AsString()
	}
	return out, diags
}

// numberArg decodes a known number that must be at least min.
func (l *loader) numberArg(content *hcl.BodyContent, name string, min float64, diags *hcl.Diagnostics) (float64, bool) {
	attr, ok := content.Attributes[name]
	if !ok {
		return 0, false
	}
	v, ok, d := l.arg(attr, cty.Number, true)
	*diags = append(*diags, d...)
	if !ok || v.IsNull() {
		return 0, false
	}
	f, _ := v.AsBigFloat().Float64()
	if f < min {
		if min == 0 {
			*diags = append(*diags, l.invalidValue(attr, "The value of %q must not be negative; got %s.", name, formatNumber(v)))
		} else {
			*diags = append(*diags, l.invalidValue(attr, "The value of %q must be at least %g; got %s.", name, min, formatNumber(v)))
		}
		return 0, false
	}
	return f, true
}

// Limits on what a configuration may ask for, checked at validate so that a
// typo (nodes = 1e9) is an error rather than an attempt.
const (
	// MaxNodes is the most nodes a pool may have.
	MaxNodes = 1000
	// MaxTaskItems is the most items a task's for_each or count may have:
	// its executions in one run.
	MaxTaskItems = 10000
)

// intArg decodes a known whole number that must be at least min and, when
// max > 0, at most max.
func (l *loader) intArg(content *hcl.BodyContent, name string, min, max int, diags *hcl.Diagnostics) (int, bool) {
	attr, ok := content.Attributes[name]
	if !ok {
		return 0, false
	}
	v, ok, d := l.arg(attr, cty.Number, true)
	*diags = append(*diags, d...)
	if !ok || v.IsNull() {
		return 0, false
	}
	return l.checkInt(attr, v, min, max, diags)
}

func (l *loader) checkInt(attr *hcl.Attribute, v cty.Value, min, max int, diags *hcl.Diagnostics) (int, bool) {
	bf := v.AsBigFloat()
	if !bf.IsInt() {
		*diags = append(*diags, l.invalidValue(attr, "The value of %q must be a whole number; got %s.", attr.Name, formatNumber(v)))
		return 0, false
	}
	if bf.Cmp(big.NewFloat(float64(min))) < 0 {
		*diags = append(*diags, l.invalidValue(attr, "The value of %q must be at least %d; got %s.", attr.Name, min, formatNumber(v)))
		return 0, false
	}
	limit := max
	if limit <= 0 {
		limit = math.MaxInt32
	}
	if bf.Cmp(big.NewFloat(float64(limit))) > 0 {
		*diags = append(*diags, l.invalidValue(attr, "The value of %q must be at most %d; got %s.", attr.Name, limit, formatNumber(v)))
		return 0, false
	}
	n, _ := wholeNumber(v)
	return n, true
}

// wholeNumber returns v as an int when it is a whole number in int range.
func wholeNumber(v cty.Value) (int, bool) {
	bf := v.AsBigFloat()
	if !bf.IsInt() {
		return 0, false
	}
	i, acc := bf.Int64()
	if acc != big.Exact || i > math.MaxInt32 || i < math.MinInt32 {
		return 0, false
	}
	return int(i), true
}

func formatNumber(v cty.Value) string {
	bf := v.AsBigFloat()
	if bf.IsInt() && bf.MantExp(nil) <= 64 {
		return bf.Text('f', 0)
	}
	return bf.Text('g', -1)
}

// boolArg decodes a known bool.
func (l *loader) boolArg(content *hcl.BodyContent, name string, diags *hcl.Diagnostics) (bool, bool) {
	attr, ok := content.Attributes[name]
	if !ok {
		return false, false
	}
	v, ok, d := l.arg(attr, cty.Bool, true)
	*diags = append(*diags, d...)
	if !ok || v.IsNull() {
		return false, false
	}
	return v.True(), true
}

// durationArg decodes a known duration string in Go syntax ("30m", "1h30m").
func (l *loader) durationArg(content *hcl.BodyContent, name string, diags *hcl.Diagnostics) (time.Duration, bool) {
	s, ok := l.stringArg(content, name, diags)
	if !ok {
		return 0, false
	}
	attr := content.Attributes[name]
	d, err := time.ParseDuration(s)
	if err != nil {
		*diags = append(*diags, l.invalidValue(attr, "The value of %q must be a duration such as \"90s\", \"30m\" or \"1h30m\"; got %q.", name, s))
		return 0, false
	}
	if d < 0 {
		*diags = append(*diags, l.invalidValue(attr, "The value of %q must not be negative; got %q.", name, s))
		return 0, false
	}
	return d, true
}

// traversalArg reads an argument that must be a static reference such as
// pool.dev, without evaluating it. It returns the names after the root, or
// ok false (with a diagnostic) when the expression is not such a reference.
func traversalArg(attr *hcl.Attribute, root, kind, example string) (names []string, ok bool, diags hcl.Diagnostics) {
	bad := func() ([]string, bool, hcl.Diagnostics) {
		return nil, false, hcl.Diagnostics{invalidRef(attr, kind, example)}
	}
	tr, d := hcl.AbsTraversalForExpr(attr.Expr)
	if d.HasErrors() {
		return bad()
	}
	if root != "" {
		if tr.RootName() != root || len(tr) != 2 {
			return bad()
		}
		a, ok := tr[1].(hcl.TraverseAttr)
		if !ok {
			return bad()
		}
		return []string{a.Name}, true, nil
	}
	names = []string{tr.RootName()}
	for _, step := range tr[1:] {
		a, ok := step.(hcl.TraverseAttr)
		if !ok {
			return bad()
		}
		names = append(names, a.Name)
	}
	return names, true, nil
}

func invalidRef(attr *hcl.Attribute, kind, example string) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Invalid %s reference", kind),
		Detail: fmt.Sprintf("The %q argument must be a reference to a %s, such as %s, "+
			"written without quotes and with no other expression around it.", attr.Name, kind, example),
		Subject: attr.Expr.Range().Ptr(),
	}
}
