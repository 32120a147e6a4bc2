package hclspec

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// EnvVarPrefix prefixes the environment variables that set input variables:
// SKYWARD_VAR_nodes=3 sets var.nodes.
const EnvVarPrefix = "SKYWARD_VAR_"

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type"},
		{Name: "default"},
		{Name: "description"},
		{Name: "sensitive"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "validation"},
	},
}

var validationSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "condition", Required: true},
		{Name: "error_message", Required: true},
	},
}

// variableDecl is a decoded variable block with what is needed to resolve
// and validate its value.
type variableDecl struct {
	v           *Variable
	defaults    *typeexpr.Defaults
	nameRange   hcl.Range
	defaultExpr hcl.Expression
	validations []*validation
	ok          bool // the declaration itself decoded without errors
}

type validation struct {
	condition    hcl.Expression
	errorMessage hcl.Expression
	declRange    hcl.Range
}

// rawValue is a variable's value as given, before type conversion.
type rawValue struct {
	val    cty.Value
	source string     // "-var", "a -var-file", "SKYWARD_VAR_x", "the default"
	rng    *hcl.Range // nil when the value has no source file
}

func (l *loader) decodeVariables(bs []*hcl.Block) hcl.Diagnostics {
	var diags hcl.Diagnostics
	var decls []*variableDecl
	byName := map[string]*variableDecl{}
	for _, b := range bs {
		if l.broken[b.DefRange.Filename] {
			// Declared but undecodable: keep references quiet.
			l.failed["var."+b.Labels[0]] = true
			continue
		}
		d, dDiags := l.decodeVariableBlock(b)
		diags = append(diags, dDiags...)
		decls = append(decls, d)
		byName[d.v.Name] = d
		l.cfg.Variables[d.v.Name] = d.v
	}

	raw, rawDiags := l.rawVariableValues(byName)
	diags = append(diags, rawDiags...)

	for _, d := range decls {
		v := d.v
		if !d.ok {
			l.failed["var."+v.Name] = true
			continue
		}
		rv, given := raw[v.Name]
		if !given {
			if !v.HasDefault {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "No value for required variable",
					Detail: fmt.Sprintf("The input variable %q is not set, and has no default value. "+
						"Set it with -var '%s=...', in %s or a *%s file beside the configuration, in a file "+
						"given with -var-file, or with the %s%s environment variable, or give it a default.",
						v.Name, v.Name, DefaultVarFile, AutoVarFileSuffix, EnvVarPrefix, v.Name),
					Subject: d.nameRange.Ptr(),
				})
				l.failed["var."+v.Name] = true
				continue
			}
			v.Value = v.Default
		} else {
			val := rv.val
			if d.defaults != nil {
				val = d.defaults.Apply(val)
			}
			conv, err := convert.Convert(val, v.Type)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid value for input variable",
					Detail:   fmt.Sprintf("The value given for var.%s by %s is not suitable: %s.", v.Name, rv.source, err),
					Subject:  rv.rng,
				})
				l.failed["var."+v.Name] = true
				continue
			}
			v.Value = conv
		}
		l.vars[v.Name] = v.Value
		if v.Sensitive {
			l.vars[v.Name] = v.Value.Mark(sensitive)
		}
	}

	// Validations see every variable's final value.
	for _, d := range decls {
		if l.failed["var."+d.v.Name] {
			continue
		}
		valueRange := d.nameRange
		if rv, given := raw[d.v.Name]; given && rv.rng != nil {
			valueRange = *rv.rng
		} else if !given && d.defaultExpr != nil {
			valueRange = d.defaultExpr.Range()
		}
		for _, vr := range d.validations {
			diags = append(diags, l.checkValidation(d.v, vr, valueRange)...)
		}
	}
	return diags
}

func (l *loader) decodeVariableBlock(b *hcl.Block) (*variableDecl, hcl.Diagnostics) {
	d := &variableDecl{
		v: &Variable{
			Name:      b.Labels[0],
			Type:      cty.DynamicPseudoType,
			Default:   cty.NullVal(cty.DynamicPseudoType),
			Value:     cty.DynamicVal, // until resolved
			DeclRange: b.DefRange,
		},
		nameRange: b.LabelRanges[0],
		ok:        true,
	}
	v := d.v
	content, diags := b.Body.Content(variableSchema)
	if diags.HasErrors() {
		d.ok = false
	}

	if attr, ok := content.Attributes["type"]; ok {
		ty, defaults, tyDiags := typeexpr.TypeConstraintWithDefaults(attr.Expr)
		diags = append(diags, tyDiags...)
		if tyDiags.HasErrors() {
			d.ok = false
		} else {
			v.Type, d.defaults = ty, defaults
		}
	}
	if attr, ok := content.Attributes["description"]; ok {
		val, valDiags := attr.Expr.Value(nil)
		diags = append(diags, valDiags...)
		if s, ok := literalString(attr, val, &diags); ok {
			v.Description = s
		}
	}
	if attr, ok := content.Attributes["sensitive"]; ok {
		val, valDiags := attr.Expr.Value(nil)
		diags = append(diags, valDiags...)
		if !valDiags.HasErrors() {
			bv, err := convert.Convert(val, cty.Bool)
			if err != nil || bv.IsNull() {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid value for sensitive",
					Detail:   "The sensitive argument must be true or false.",
					Subject:  attr.Expr.Range().Ptr(),
				})
			} else {
				v.Sensitive = bv.True()
			}
		}
	}
	if attr, ok := content.Attributes["default"]; ok {
		d.defaultExpr = attr.Expr
		// A default is a constant: it cannot refer to anything, which
		// Value(nil) enforces with "Variables not allowed".
		val, valDiags := attr.Expr.Value(nil)
		diags = append(diags, valDiags...)
		if valDiags.HasErrors() {
			d.ok = false
		} else {
			if d.defaults != nil {
				val = d.defaults.Apply(val)
			}
			conv, err := convert.Convert(val, v.Type)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid default value for variable",
					Detail:   fmt.Sprintf("This default value is not compatible with the variable's type constraint: %s.", err),
					Subject:  attr.Expr.Range().Ptr(),
				})
				d.ok = false
			} else {
				v.Default, v.HasDefault = conv, true
			}
		}
	}

	for _, vb := range content.Blocks {
		vc, vDiags := vb.Body.Content(validationSchema)
		diags = append(diags, vDiags...)
		cond, hasCond := vc.Attributes["condition"]
		msg, hasMsg := vc.Attributes["error_message"]
		if !hasCond || !hasMsg {
			continue
		}
		d.validations = append(d.validations, &validation{
			condition:    cond.Expr,
			errorMessage: msg.Expr,
			declRange:    vb.DefRange,
		})
	}
	return d, diags
}

func literalString(attr *hcl.Attribute, val cty.Value, diags *hcl.Diagnostics) (string, bool) {
	if diags.HasErrors() {
		return "", false
	}
	s, err := convert.Convert(val, cty.String)
	if err != nil || s.IsNull() || !s.IsKnown() {
		*diags = append(*diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Invalid value for %s", attr.Name),
			Detail:   fmt.Sprintf("The %s argument must be a string.", attr.Name),
			Subject:  attr.Expr.Range().Ptr(),
		})
		return "", false
	}
	return s.AsString(), true
}

// Variable files that Load reads by themselves from the configuration
// directory, as Terraform reads terraform.tfvars and *.auto.tfvars.
const (
	// DefaultVarFile is read first (or DefaultVarFile+".json").
	DefaultVarFile = "skyward.skyvars"
	// AutoVarFileSuffix: every file ending in it (or in it+".json") is
	// read after DefaultVarFile, in lexical order of the names.
	AutoVarFileSuffix = ".auto.skyvars"
)

// AutoVarFiles returns the variable files of dir that load by themselves,
// in the order they are read: skyward.skyvars (then skyward.skyvars.json),
// then every *.auto.skyvars and *.auto.skyvars.json in lexical order.
func AutoVarFiles(dir string) []string {
	var out []string
	for _, name := range []string{DefaultVarFile, DefaultVarFile + ".json"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil && !st.IsDir() {
			out = append(out, filepath.Join(dir, name))
		}
	}
	entries, _ := os.ReadDir(dir)
	var auto []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") {
			continue
		}
		if strings.HasSuffix(n, AutoVarFileSuffix) || strings.HasSuffix(n, AutoVarFileSuffix+".json") {
			auto = append(auto, n)
		}
	}
	sort.Strings(auto)
	for _, n := range auto {
		out = append(out, filepath.Join(dir, n))
	}
	return out
}

// rawVariableValues collects the values given outside the configuration, in
// increasing precedence (a later source wins): the environment, the files
// that load by themselves (AutoVarFiles), -var-file (later files win),
// -var (later ones win).
func (l *loader) rawVariableValues(decls map[string]*variableDecl) (map[string]rawValue, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	raw := map[string]rawValue{}

	for _, kv := range l.opts.Environ {
		if !strings.HasPrefix(kv, EnvVarPrefix) {
			continue
		}
		name, value, ok := strings.Cut(strings.TrimPrefix(kv, EnvVarPrefix), "=")
		d, declared := decls[name]
		if !ok || !declared {
			// Like Terraform's TF_VAR_, values for undeclared variables
			// in the environment are ignored: the environment is shared.
			continue
		}
		source := "the " + EnvVarPrefix + name + " environment variable"
		val, valDiags := parseRawValue(d, value, "<value for "+EnvVarPrefix+name+">")
		diags = append(diags, valDiags...)
		if !valDiags.HasErrors() {
			raw[name] = rawValue{val: val, source: source}
		}
	}

	for _, path := range AutoVarFiles(l.dir) {
		diags = append(diags, l.readVarFile(path, decls, raw)...)
	}
	for _, path := range l.opts.VarFiles {
		diags = append(diags, l.readVarFile(path, decls, raw)...)
	}

	for _, arg := range l.opts.Vars {
		name, value, ok := strings.Cut(arg, "=")
		if !ok {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid -var option",
				Detail: fmt.Sprintf("The given -var option %q is not correctly specified. It must be a variable name "+
					"and value separated by an equals sign, like -var=\"key=value\".", arg),
			})
			continue
		}
		d, declared := decls[name]
		if !declared {
			if _, exists := l.varDecls[name]; exists {
				continue // declared in a file that could not be parsed
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Value for undeclared variable",
				Detail: fmt.Sprintf("A variable named %q was assigned with -var, but the configuration does not "+
					"declare a variable of that name. To use this value, add a variable %q {} block.", name, name),
			})
			continue
		}
		val, valDiags := parseRawValue(d, value, "<value for var."+name+">")
		diags = append(diags, valDiags...)
		if !valDiags.HasErrors() {
			raw[name] = rawValue{val: val, source: "-var"}
		}
	}
	return raw, diags
}

// parseRawValue interprets a -var or environment value. For a variable of
// type string, or with no type, the value is taken literally; otherwise it is
// parsed as an HCL expression, so that -var 'zones=["a","b"]' works.
func parseRawValue(d *variableDecl, value, filename string) (cty.Value, hcl.Diagnostics) {
	if d.v.Type == cty.String || d.v.Type == cty.DynamicPseudoType {
		return cty.StringVal(value), nil
	}
	expr, diags := hclsyntax.ParseExpression([]byte(value), filename, hcl.InitialPos)
	if diags.HasErrors() {
		return cty.DynamicVal, diags
	}
	return expr.Value(nil)
}

func (l *loader) readVarFile(path string, decls map[string]*variableDecl, raw map[string]rawValue) hcl.Diagnostics {
	name := path
	if rel, err := filepath.Rel(l.dir, path); err == nil && filepath.IsAbs(path) && !strings.HasPrefix(rel, "..") {
		name = rel
	}
	if _, err := os.Stat(path); err != nil {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Failed to read variables file",
			Detail:   fmt.Sprintf("Given variables file %q could not be read: %s.", path, err),
		}}
	}
	var f *hcl.File
	var diags hcl.Diagnostics
	if strings.HasSuffix(path, ".json") {
		f, diags = l.parser.ParseJSONFile(path)
	} else {
		f, diags = l.parser.ParseHCLFile(path)
	}
	if diags.HasErrors() {
		return diags
	}
	attrs, attrDiags := f.Body.JustAttributes()
	diags = append(diags, attrDiags...)
	for _, attrName := range sortedAttrNames(attrs) {
		attr := attrs[attrName]
		if _, declared := decls[attrName]; !declared {
			if _, exists := l.varDecls[attrName]; exists {
				continue
			}
			// A variables file may be shared by several configurations,
			// so (as in Terraform) this is only a warning.
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  "Value for undeclared variable",
				Detail: fmt.Sprintf("The variables file %q assigns %q, but the configuration does not declare "+
					"a variable of that name. The value is ignored.", name, attrName),
				Subject: attr.NameRange.Ptr(),
			})
			continue
		}
		val, valDiags := attr.Expr.Value(nil)
		diags = append(diags, valDiags...)
		if valDiags.HasErrors() {
			continue
		}
		raw[attrName] = rawValue{val: val, source: fmt.Sprintf("the variables file %q", name), rng: attr.Expr.Range().Ptr()}
	}
	return diags
}

func sortedAttrNames(attrs hcl.Attributes) []string {
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	// Source order, so that diagnostics come out in reading order.
	sortByRange(names, func(n string) hcl.Range { return attrs[n].NameRange })
	return names
}

// checkValidation evaluates one validation rule against v's value.
func (l *loader) checkValidation(v *Variable, vr *validation, valueRange hcl.Range) hcl.Diagnostics {
	cond, ok, diags := l.eval(vr.condition, scopeVarOnly)
	if !ok || !cond.IsKnown() {
		return diags
	}
	cond, _ = cond.Unmark()
	if cond.IsNull() || cond.Type() != cty.Bool {
		conv, err := convert.Convert(cond, cty.Bool)
		if err != nil || conv.IsNull() {
			return append(diags, &hcl.Diagnostic{
				Severity:    hcl.DiagError,
				Summary:     "Invalid variable validation result",
				Detail:      "The validation condition must return true or false.",
				Subject:     vr.condition.Range().Ptr(),
				Expression:  vr.condition,
				EvalContext: l.evalContext(),
			})
		}
		cond = conv
	}
	if cond.True() {
		return diags
	}
	msgVal, ok, msgDiags := l.eval(vr.errorMessage, scopeVarOnly)
	diags = append(diags, msgDiags...)
	if !ok {
		return diags
	}
	msgVal, _ = msgVal.UnmarkDeep()
	msg, err := convert.Convert(msgVal, cty.String)
	if err != nil || msg.IsNull() || !msg.IsKnown() {
		return append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid validation error message",
			Detail:   "The error_message of a validation must be a string.",
			Subject:  vr.errorMessage.Range().Ptr(),
		})
	}
	return append(diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Invalid value for variable",
		Detail: fmt.Sprintf("%s\n\nThis was checked by the validation rule at %s.",
			strings.TrimSpace(msg.AsString()), vr.declRange),
		Subject:     valueRange.Ptr(),
		Expression:  vr.condition,
		EvalContext: l.evalContext(),
	})
}
