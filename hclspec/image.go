package hclspec

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

var imageSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "apt"},
		{Name: "pip"},
		{Name: "env"},
		{Name: "includes"},
		{Name: "excludes"},
		{Name: "setup"},
	},
}

func (l *loader) decodeImage(b *hcl.Block) (*Image, hcl.Diagnostics) {
	img := &Image{Name: b.Labels[0], DeclRange: b.DefRange}
	content, diags := b.Body.Content(imageSchema)
	l.sensitive = nil
	defer func() { img.Sensitive = l.takeSensitive() }()

	if apt, ok := l.stringListArg(content, "apt", &diags); ok {
		img.Apt = apt
		diags = append(diags, checkPackages(content.Attributes["apt"], apt, "apt-get")...)
	}
	img.Setup, _ = l.stringListArg(content, "setup", &diags)
	if env, ok := l.stringMapArg(content, "env", &diags); ok {
		img.Env = env
		diags = append(diags, checkEnvNames(content.Attributes["env"], env)...)
	}
	if excl, ok := l.stringListArg(content, "excludes", &diags); ok {
		img.Excludes = excl
		attr := content.Attributes["excludes"]
		for i, p := range excl {
			if err := CheckExcludePattern(p); err != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid exclude pattern",
					Detail:   upperFirst(err.Error()) + ". Excludes follow .gitignore syntax, relative to each include.",
					Subject:  elementRange(attr, i, len(excl)).Ptr(),
				})
			}
		}
	}

	if pip, ok := l.stringListArg(content, "pip", &diags); ok {
		img.Pip = pip
		attr := content.Attributes["pip"]
		diags = append(diags, checkPackages(attr, pip, "pip")...)
		names := map[string]string{}
		for i, p := range pip {
			if !IsLocalPip(p) {
				continue
			}
			diags = append(diags, sameName(names, "pip", p, elementRange(attr, i, len(pip)))...)
			if _, err := os.Stat(resolvePath(l.dir, p)); err != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Pip path not found",
					Detail: fmt.Sprintf("The pip requirement %q is a local path, but nothing exists there. "+
						"Relative paths are resolved from the configuration directory %q.", p, l.dir),
					Subject: elementRange(attr, i, len(pip)).Ptr(),
				})
			}
		}
	}

	if incl, ok := l.stringListArg(content, "includes", &diags); ok {
		img.Includes = incl
		attr := content.Attributes["includes"]
		names := map[string]string{}
		for i, p := range incl {
			diags = append(diags, sameName(names, "include", p, elementRange(attr, i, len(incl)))...)
			if _, err := os.Stat(resolvePath(l.dir, p)); err != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Include path not found",
					Detail: fmt.Sprintf("The include path %q does not exist. "+
						"Relative paths are resolved from the configuration directory %q.", p, l.dir),
					Subject: elementRange(attr, i, len(incl)).Ptr(),
				})
			}
		}
	}
	return img, diags
}

// sameName reports a local path whose base name an earlier one of the same
// list has: both would land in one place on a node.
func sameName(seen map[string]string, what, p string, rng hcl.Range) hcl.Diagnostics {
	base := filepath.Base(filepath.Clean(p))
	if other, dup := seen[base]; dup {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Duplicate " + what + " name",
			Detail: fmt.Sprintf("The %s paths %q and %q have the same name %q, so both would land in the same place on the nodes. "+
				"Rename one of them.", what, other, p, base),
			Subject: rng.Ptr(),
		}}
	}
	seen[base] = p
	return nil
}

// IsLocalPip reports whether a pip requirement names a local path (a
// directory or a wheel file) rather than a package from an index or a URL.
func IsLocalPip(req string) bool {
	if strings.Contains(req, "://") {
		return false
	}
	return strings.HasPrefix(req, "./") || strings.HasPrefix(req, "../") ||
		strings.HasPrefix(req, "/") || strings.HasSuffix(req, ".whl")
}

// elementRange is the range of element i of a list argument: the element's
// own expression when the list is written out literally, else the whole
// argument's expression.
func elementRange(attr *hcl.Attribute, i, n int) hcl.Range {
	if tup, ok := attr.Expr.(*hclsyntax.TupleConsExpr); ok && len(tup.Exprs) == n {
		return tup.Exprs[i].Range()
	}
	return attr.Expr.Range()
}

// checkPackages refuses apt or pip items that the installer would read as
// something other than a package: empty ones, and those starting with "-",
// which it would take as an option.
func checkPackages(attr *hcl.Attribute, items []string, installer string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for i, it := range items {
		var detail string
		switch {
		case strings.TrimSpace(it) == "":
			detail = fmt.Sprintf("Element %d of %q is empty; each element names one package.", i, attr.Name)
		case strings.HasPrefix(it, "-"):
			detail = fmt.Sprintf("The %s item %q starts with \"-\", so %s would read it as an option rather than a package. "+
				"Each element names one package.", attr.Name, it, installer)
		default:
			continue
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid " + attr.Name + " package",
			Detail:   detail,
			Subject:  elementRange(attr, i, len(items)).Ptr(),
		})
	}
	return diags
}

// checkEnvNames refuses environment variable names that cannot be set as
// given: empty ones, and those holding "=" or a NUL byte.
func checkEnvNames(attr *hcl.Attribute, env map[string]string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, k := range sortedKeys(env) {
		if k != "" && !strings.ContainsAny(k, "=\x00") {
			continue
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid environment variable name",
			Detail: fmt.Sprintf("The name %q in %q cannot be an environment variable: a name must not be empty "+
				"or contain \"=\" or a NUL byte.", k, attr.Name),
			Subject: keyRange(attr, k).Ptr(),
		})
	}
	return diags
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// keyRange is the range of key k in a map argument written out as an
// object, else the whole argument's expression.
func keyRange(attr *hcl.Attribute, k string) hcl.Range {
	if obj, ok := attr.Expr.(*hclsyntax.ObjectConsExpr); ok {
		for _, item := range obj.Items {
			if v, diags := item.KeyExpr.Value(nil); !diags.HasErrors() && v.Type() == cty.String && v.IsKnown() && v.AsString() == k {
				return item.KeyExpr.Range()
			}
		}
	}
	return attr.Expr.Range()
}
