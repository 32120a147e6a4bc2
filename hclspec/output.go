package hclspec

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

var outputSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "value", Required: true},
		{Name: "sensitive"},
	},
}

func (l *loader) decodeOutput(b *hcl.Block) (*Output, hcl.Diagnostics) {
	o := &Output{Name: b.Labels[0], Value: cty.DynamicVal, DeclRange: b.DefRange}
	content, diags := b.Body.Content(outputSchema)
	if s, ok := l.boolArg(content, "sensitive", &diags); ok {
		o.Sensitive = s
	}
	attr, ok := content.Attributes["value"]
	if !ok {
		return o, diags
	}
	val, ok, d := l.eval(attr.Expr, scopeAll)
	diags = append(diags, d...)
	if !ok {
		return o, diags
	}
	val, marks := val.UnmarkDeep()
	if _, isSensitive := marks[sensitive]; isSensitive && !o.Sensitive {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Output refers to sensitive values",
			Detail: "To reduce the risk of accidentally exporting sensitive data, an output that contains " +
				"a sensitive variable must itself be marked sensitive. If you do intend to export this value, " +
				"add sensitive = true to the output block.",
			Subject: attr.Expr.Range().Ptr(),
		})
	}
	o.Value = val
	return o, diags
}
