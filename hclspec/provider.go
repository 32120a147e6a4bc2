package hclspec

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

var providerSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "alias"}},
}

func (l *loader) decodeProviders(bs []*hcl.Block) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, b := range bs {
		p, d := l.decodeProviderBlock(b)
		diags = append(diags, d...)
		if p != nil {
			l.cfg.Providers[p.Addr()] = p
		}
	}
	return diags
}

// decodeProviderBlock decodes one provider block. It returns nil when the
// block is a duplicate or cannot be decoded at all; its address is declared
// in every case where it can be determined, so that pools naming it do not
// get a second, misleading error.
func (l *loader) decodeProviderBlock(b *hcl.Block) (*Provider, hcl.Diagnostics) {
	p, aliasRange, remain, diags := decodeProviderHeader(b)
	if l.broken[b.DefRange.Filename] {
		// The parser could not finish this block: its problems are the
		// syntax errors already reported. Only its address matters.
		if p != nil {
			l.provDecls[p.Addr()] = b.DefRange
		}
		return nil, nil
	}
	if p == nil {
		return nil, diags
	}
	addr := p.Addr()
	if prev, exists := l.provDecls[addr]; exists {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Duplicate provider configuration",
			Detail: fmt.Sprintf("A configuration for provider %q was already given at %s. "+
				"Each configuration of the same provider type needs a distinct alias, such as alias = \"west\".", addr, prev),
			Subject: aliasRange.Ptr(),
		})
		return nil, diags
	}
	l.provDecls[addr] = b.DefRange

	spec, known := l.opts.ProviderSchemas[p.Type]
	if !known {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Unknown provider type",
			Detail: fmt.Sprintf("There is no provider of type %q. The available provider types are %s.",
				p.Type, quotedList(mapKeys(l.opts.ProviderSchemas))),
			Subject: b.LabelRanges[0].Ptr(),
		})
		return nil, diags
	}

	refDiags, failed := l.checkRefs(hcldec.Variables(remain, spec), scopeAll)
	diags = append(diags, refDiags...)
	if refDiags.HasErrors() || failed {
		// The values cannot be evaluated, but the arguments can still be
		// checked against the schema.
		_, sDiags := remain.Content(hcldec.ImpliedSchema(spec))
		return nil, append(diags, sDiags...)
	}
	val, decDiags := hcldec.Decode(remain, spec, l.evalContext())
	diags = append(diags, decDiags...)
	if decDiags.HasErrors() {
		return nil, diags
	}
	val, _ = val.UnmarkDeep()
	if !val.IsWhollyKnown() {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Value not known until apply",
			Detail: fmt.Sprintf("The configuration of provider %q depends on pool attributes that are known only "+
				"after apply, but a provider must be configured before anything is applied.", addr),
			Subject: b.DefRange.Ptr(),
		})
		return nil, diags
	}
	p.Config = val
	return p, diags
}

// decodeProviderHeader reads a provider block's type and alias. It returns
// a nil Provider when the alias is invalid, the range that identifies the
// block (the alias value, else the type label), and the rest of the body.
func decodeProviderHeader(b *hcl.Block) (*Provider, hcl.Range, hcl.Body, hcl.Diagnostics) {
	p := &Provider{Type: b.Labels[0], DeclRange: b.DefRange}
	content, remain, diags := b.Body.PartialContent(providerSchema)
	attr, ok := content.Attributes["alias"]
	if !ok {
		return p, b.LabelRanges[0], remain, diags
	}
	val, valDiags := attr.Expr.Value(nil)
	diags = append(diags, valDiags...)
	s, ok := literalString(attr, val, &diags)
	if !ok {
		return nil, attr.Expr.Range(), remain, diags
	}
	if !hclsyntax.ValidIdentifier(s) {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid provider alias",
			Detail:   fmt.Sprintf("The alias %q is not a valid name: it must start with a letter and contain only letters, digits, underscores and dashes.", s),
			Subject:  attr.Expr.Range().Ptr(),
		})
		return nil, attr.Expr.Range(), remain, diags
	}
	p.Alias = s
	return p, attr.Expr.Range(), remain, diags
}

// addBuiltinProviders gives the built-in container provider a configuration
// when pools use it without declaring a provider "container" block.
func (l *loader) addBuiltinProviders() hcl.Diagnostics {
	if _, exists := l.provDecls[DefaultProvider]; exists {
		return nil
	}
	used := false
	for _, p := range l.cfg.Pools {
		if p.Provider == DefaultProvider {
			used = true
		}
	}
	if !used {
		return nil
	}
	p := &Provider{Type: DefaultProvider, Config: cty.EmptyObjectVal}
	if spec, ok := l.opts.ProviderSchemas[DefaultProvider]; ok {
		val, diags := hcldec.Decode(hcl.EmptyBody(), spec, nil)
		if diags.HasErrors() {
			// A required argument: fall back to all-null, since there is
			// no block to point a diagnostic at.
			val = cty.NullVal(hcldec.ImpliedType(spec))
			if ty := val.Type(); ty.IsObjectType() {
				attrs := map[string]cty.Value{}
				for name, aty := range ty.AttributeTypes() {
					attrs[name] = cty.NullVal(aty)
				}
				val = cty.ObjectVal(attrs)
			}
		}
		p.Config = val
	}
	l.cfg.Providers[DefaultProvider] = p
	return nil
}

// providerRef resolves a pool's provider argument, a static reference such
// as container or aws.west, to a provider address.
func (l *loader) providerRef(attr *hcl.Attribute) (string, hcl.Diagnostics) {
	names, ok, diags := traversalArg(attr, "", "provider", "container or aws.west")
	if !ok {
		return "", diags
	}
	if len(names) > 2 {
		return "", hcl.Diagnostics{invalidRef(attr, "provider", "container or aws.west")}
	}
	addr := strings.Join(names, ".")
	if _, exists := l.provDecls[addr]; exists || addr == DefaultProvider {
		return addr, nil
	}
	detail := fmt.Sprintf("There is no configuration for provider %q. Declare it with a provider %q {} block", addr, names[0])
	if len(names) == 2 {
		detail += fmt.Sprintf(" that sets alias = %q", names[1])
	}
	return "", hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Reference to undeclared provider",
		Detail:   detail + ".",
		Subject:  attr.Expr.Range().Ptr(),
	}}
}

func mapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func quotedList(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
