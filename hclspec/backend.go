package hclspec

import (
	"fmt"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
)

// Backend is the `skyward { backend "TYPE" { ... } }` block: where the
// state is kept. A config without one keeps it locally.
type Backend struct {
	// Type is "local" or "s3".
	Type string
	// The s3 backend's arguments, as Terraform's s3 backend names them.
	Bucket, Key, Region, Endpoint, Profile string
	// KMSKeyID is the kms_key_id argument.
	KMSKeyID  string
	DeclRange hcl.Range
}

var skywardSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{{Type: "backend", LabelNames: []string{"type"}}},
}

var s3BackendSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "bucket", Required: true},
		{Name: "key", Required: true},
		{Name: "region"},
		{Name: "endpoint"},
		{Name: "profile"},
		{Name: "kms_key_id"},
	},
}

// LoadBackend reads only the skyward blocks of the configuration in dir,
// for the commands that need the state before (or without) the whole
// configuration. It returns nil when there is no backend block, or no
// configuration at all.
func LoadBackend(dir string) (*Backend, hcl.Diagnostics) {
	names, diags := configFileNames(dir)
	if diags.HasErrors() {
		return nil, nil
	}
	parser := hclparse.NewParser()
	var bs []*hcl.Block
	for _, name := range names {
		f, d := parser.ParseHCLFile(filepath.Join(dir, name))
		if d.HasErrors() || f == nil {
			// The full load reports it; the backend is read from the
			// files that parse.
			continue
		}
		content, _, _ := f.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "skyward"}}})
		bs = append(bs, content.Blocks...)
	}
	return decodeSkyward(bs)
}

// decodeSkyward decodes the skyward blocks: at most one backend in all of
// them, with literal arguments (a backend is needed before variables have
// values, as in Terraform).
func decodeSkyward(blocks []*hcl.Block) (*Backend, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	var out *Backend
	for _, sb := range blocks {
		content, d := sb.Body.Content(skywardSchema)
		diags = append(diags, d...)
		for _, b := range content.Blocks {
			if out != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Duplicate backend configuration",
					Detail:   fmt.Sprintf("A configuration can have only one backend; one was already declared at %s.", out.DeclRange),
					Subject:  b.DefRange.Ptr(),
				})
				continue
			}
			be := &Backend{Type: b.Labels[0], DeclRange: b.DefRange}
			switch be.Type {
			case "local":
				_, d := b.Body.Content(&hcl.BodySchema{})
				diags = append(diags, d...)
			case "s3":
				diags = append(diags, decodeS3Backend(b, be)...)
			default:
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Unsupported backend type",
					Detail:   fmt.Sprintf("There is no backend type named %q. The backends are \"local\" (the default) and \"s3\".", be.Type),
					Subject:  b.LabelRanges[0].Ptr(),
				})
				continue
			}
			out = be
		}
	}
	return out, diags
}

func decodeS3Backend(b *hcl.Block, be *Backend) hcl.Diagnostics {
	content, diags := b.Body.Content(s3BackendSchema)
	fields := map[string]*string{
		"bucket": &be.Bucket, "key": &be.Key, "region": &be.Region,
		"endpoint": &be.Endpoint, "profile": &be.Profile, "kms_key_id": &be.KMSKeyID,
	}
	decoded := map[string]bool{}
	for name, attr := range content.Attributes {
		if len(attr.Expr.Variables()) > 0 {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Variables not allowed",
				Detail:   "A backend is set up before input variables have values, so its arguments must be literal values.",
				Subject:  attr.Expr.Range().Ptr(),
			})
			continue
		}
		v, d := attr.Expr.Value(nil)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		if v.IsNull() || v.Type() != cty.String {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Incorrect attribute value type",
				Detail:   fmt.Sprintf("Inappropriate value for attribute %q: a string is required.", name),
				Subject:  attr.Expr.Range().Ptr(),
			})
			continue
		}
		*fields[name] = v.AsString()
		decoded[name] = true
	}
	for _, name := range []string{"bucket", "key"} {
		if attr, ok := content.Attributes[name]; ok && decoded[name] && *fields[name] == "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid backend argument",
				Detail:   fmt.Sprintf("The %q argument of the s3 backend must not be empty.", name),
				Subject:  attr.Expr.Range().Ptr(),
			})
		}
	}
	return diags
}
