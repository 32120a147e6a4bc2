package hclspec

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcled"
	"github.com/zclconf/go-cty/cty"
)

// DiagnosticsText writes diags for a person: severity and summary, the file
// and line with the source underlined, and the detail wrapped to width
// columns (0: no wrapping). color adds ANSI escapes. files supplies the
// source (Config.Files); a diagnostic without a subject, such as one about a
// -var value, is printed without source.
func DiagnosticsText(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, color bool, width uint) error {
	return hcl.NewDiagnosticTextWriter(w, files, width, color).WriteDiagnostics(diags)
}

// JSONDiagnostic is one diagnostic in the shape of Terraform's machine
// readable diagnostics (terraform validate -json, and the "diagnostic"
// messages of plan -json).
type JSONDiagnostic struct {
	Severity string       `json:"severity"`
	Summary  string       `json:"summary"`
	Detail   string       `json:"detail"`
	Range    *JSONRange   `json:"range,omitempty"`
	Snippet  *JSONSnippet `json:"snippet,omitempty"`
}

// JSONRange is a source range; lines and columns count from 1, bytes from 0.
type JSONRange struct {
	Filename string  `json:"filename"`
	Start    JSONPos `json:"start"`
	End      JSONPos `json:"end"`
}

// JSONPos is a position in a source file.
type JSONPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

// JSONSnippet is the source code around a diagnostic. Context is the
// header of the enclosing block, as in `pool "dev"`, or nil. The highlight
// offsets are byte offsets into Code.
type JSONSnippet struct {
	Context              *string               `json:"context"`
	Code                 string                `json:"code"`
	StartLine            int                   `json:"start_line"`
	HighlightStartOffset int                   `json:"highlight_start_offset"`
	HighlightEndOffset   int                   `json:"highlight_end_offset"`
	Values               []JSONExpressionValue `json:"values"`
}

// JSONExpressionValue describes the value of one reference in the
// diagnostic's expression, as in {"traversal": "var.nodes", "statement":
// "is 0"}.
type JSONExpressionValue struct {
	Traversal string `json:"traversal"`
	Statement string `json:"statement"`
}

// JSONValidate is the output of `skyward validate -json`, in the shape of
// `terraform validate -json`.
type JSONValidate struct {
	FormatVersion string           `json:"format_version"`
	Valid         bool             `json:"valid"`
	ErrorCount    int              `json:"error_count"`
	WarningCount  int              `json:"warning_count"`
	Diagnostics   []JSONDiagnostic `json:"diagnostics"`
}

// DiagnosticsJSON converts diags to values that encoding/json marshals like
// the elements of Terraform's diagnostics lists. The result is a
// []JSONDiagnostic, never nil.
func DiagnosticsJSON(diags hcl.Diagnostics, files map[string]*hcl.File) any {
	return jsonDiagnostics(diags, files)
}

// ValidateJSON returns the document `skyward validate -json` prints, a
// JSONValidate: {"format_version": "1.0", "valid": ..., "error_count": ...,
// "warning_count": ..., "diagnostics": [...]}.
func ValidateJSON(diags hcl.Diagnostics, files map[string]*hcl.File) any {
	v := JSONValidate{
		FormatVersion: "1.0",
		Diagnostics:   jsonDiagnostics(diags, files),
	}
	for _, d := range diags {
		switch d.Severity {
		case hcl.DiagError:
			v.ErrorCount++
		case hcl.DiagWarning:
			v.WarningCount++
		}
	}
	v.Valid = v.ErrorCount == 0
	return v
}

func jsonDiagnostics(diags hcl.Diagnostics, files map[string]*hcl.File) []JSONDiagnostic {
	out := make([]JSONDiagnostic, 0, len(diags))
	for _, d := range diags {
		out = append(out, NewJSONDiagnostic(d, files))
	}
	return out
}

// NewJSONDiagnostic converts one diagnostic; files supplies the source for
// the snippet, which is omitted (like the range) when unavailable.
func NewJSONDiagnostic(d *hcl.Diagnostic, files map[string]*hcl.File) JSONDiagnostic {
	jd := JSONDiagnostic{
		Severity: "error",
		Summary:  d.Summary,
		Detail:   d.Detail,
	}
	if d.Severity == hcl.DiagWarning {
		jd.Severity = "warning"
	}
	if d.Subject == nil {
		return jd
	}
	highlight := *d.Subject
	jd.Range = &JSONRange{
		Filename: highlight.Filename,
		Start:    JSONPos{Line: highlight.Start.Line, Column: highlight.Start.Column, Byte: highlight.Start.Byte},
		End:      JSONPos{Line: highlight.End.Line, Column: highlight.End.Column, Byte: highlight.End.Byte},
	}
	file := files[highlight.Filename]
	if file == nil || file.Bytes == nil {
		return jd
	}
	snippetRange := highlight
	if d.Context != nil {
		snippetRange = hcl.RangeOver(snippetRange, *d.Context)
	}
	// An empty range cannot be shown; widen it to one character, as hcl's
	// text writer does.
	if highlight.Empty() {
		highlight.End.Byte++
		highlight.End.Column++
	}
	if snippetRange.Empty() {
		snippetRange.End.Byte++
		snippetRange.End.Column++
	}

	snip := &JSONSnippet{StartLine: snippetRange.Start.Line, Values: []JSONExpressionValue{}}
	if ctx := hcled.ContextString(file, highlight.Start.Byte-1); ctx != "" {
		snip.Context = &ctx
	}
	src := file.Bytes
	var code strings.Builder
	codeStart := -1
	sc := hcl.NewRangeScanner(src, highlight.Filename, bufio.ScanLines)
	for sc.Scan() {
		lineRange := sc.Range()
		if !lineRange.Overlaps(snippetRange) {
			continue
		}
		if codeStart < 0 {
			codeStart = lineRange.Start.Byte
		}
		code.Write(lineRange.SliceBytes(src))
		code.WriteByte('\n')
	}
	snip.Code = strings.TrimSuffix(code.String(), "\n")
	if codeStart < 0 {
		codeStart = 0
	}
	clamp := func(n int) int { return max(0, min(n, len(snip.Code))) }
	start := highlight.Start.Byte - codeStart
	snip.HighlightStartOffset = clamp(start)
	snip.HighlightEndOffset = clamp(start + highlight.End.Byte - highlight.Start.Byte)

	if d.Expression != nil && d.EvalContext != nil {
		snip.Values = expressionValues(d.Expression, d.EvalContext)
	}
	jd.Snippet = snip
	return jd
}

// expressionValues describes the values of the references in expr, as
// Terraform does, leaving out sensitive ones.
func expressionValues(expr hcl.Expression, ctx *hcl.EvalContext) []JSONExpressionValue {
	seen := map[string]bool{}
	values := []JSONExpressionValue{}
	for _, tr := range expr.Variables() {
		val, diags := tr.TraverseAbs(ctx)
		if diags.HasErrors() {
			continue
		}
		name := traversalString(tr)
		if seen[name] {
			continue
		}
		seen[name] = true
		var stmt string
		switch {
		case val.HasMark(sensitive) || val.ContainsMarked():
			stmt = "has a sensitive value"
		case !val.IsKnown():
			stmt = "will be known only after apply"
		default:
			stmt = "is " + valueString(val)
		}
		values = append(values, JSONExpressionValue{Traversal: name, Statement: stmt})
	}
	sort.Slice(values, func(i, j int) bool { return values[i].Traversal < values[j].Traversal })
	return values
}

func traversalString(tr hcl.Traversal) string {
	var b strings.Builder
	for _, step := range tr {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			b.WriteString(s.Name)
		case hcl.TraverseAttr:
			b.WriteString("." + s.Name)
		case hcl.TraverseIndex:
			if s.Key.Type().IsPrimitiveType() && s.Key.IsKnown() && !s.Key.IsNull() {
				b.WriteString("[" + valueString(s.Key) + "]")
			} else {
				b.WriteString("[...]")
			}
		}
	}
	return b.String()
}

// valueString renders a value concisely for a diagnostic.
func valueString(v cty.Value) string {
	ty := v.Type()
	switch {
	case v.IsNull():
		return "null"
	case !v.IsKnown():
		return "(known after apply)"
	case ty == cty.Bool:
		if v.True() {
			return "true"
		}
		return "false"
	case ty == cty.Number:
		return formatNumber(v)
	case ty == cty.String:
		return fmt.Sprintf("%q", v.AsString())
	case ty.IsCollectionType() || ty.IsTupleType():
		switch n := v.LengthInt(); n {
		case 0:
			return "empty " + ty.FriendlyName()
		case 1:
			return ty.FriendlyName() + " with 1 element"
		default:
			return fmt.Sprintf("%s with %d elements", ty.FriendlyName(), n)
		}
	case ty.IsObjectType():
		return fmt.Sprintf("object with %d attributes", len(ty.AttributeTypes()))
	}
	return ty.FriendlyName()
}
