package hclspec

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
)

func loadInvalid(t *testing.T, name string) (*Config, hcl.Diagnostics) {
	t.Helper()
	cfg, diags := loadFiles("testdata/invalid", []string{name}, LoadOptions{ProviderSchemas: testSchemas()})
	if !diags.HasErrors() {
		t.Fatalf("%s: no errors", name)
	}
	return cfg, diags
}

func toJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDiagnosticsJSON(t *testing.T) {
	cfg, diags := loadInvalid(t, "many_problems.sky.hcl")
	// The value of var.n is shown, as Terraform does.
	got := toJSON(t, DiagnosticsJSON(diags[:1], cfg.Files))
	want := toJSON(t, []any{map[string]any{
		"severity": "error",
		"summary":  "Invalid value for nodes",
		"detail":   `The value of "nodes" must be at least 1; got 0.`,
		"range": map[string]any{
			"filename": "testdata/invalid/many_problems.sky.hcl",
			"start":    map[string]any{"line": 8, "column": 16, "byte": 128},
			"end":      map[string]any{"line": 8, "column": 21, "byte": 133},
		},
		"snippet": map[string]any{
			"context":                `pool "dev"`,
			"code":                   `  nodes      = var.n # ERROR: Invalid value for nodes`,
			"start_line":             8,
			"highlight_start_offset": 15,
			"highlight_end_offset":   20,
			"values":                 []any{map[string]any{"traversal": "var.n", "statement": "is 0"}},
		},
	}})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DiagnosticsJSON (-want +got):\n%s", diff)
	}
}

func TestDiagnosticsJSONWithoutSource(t *testing.T) {
	diags := hcl.Diagnostics{
		{Severity: hcl.DiagWarning, Summary: "Value for undeclared variable", Detail: "A detail."},
		{Severity: hcl.DiagError, Summary: "Top level", Detail: "Outside any block.",
			Subject: &hcl.Range{Filename: "gone.sky.hcl", Start: hcl.Pos{Line: 1, Column: 1}, End: hcl.Pos{Line: 1, Column: 2, Byte: 1}}},
	}
	got := toJSON(t, DiagnosticsJSON(diags, nil))
	want := toJSON(t, []any{
		map[string]any{"severity": "warning", "summary": "Value for undeclared variable", "detail": "A detail."},
		map[string]any{"severity": "error", "summary": "Top level", "detail": "Outside any block.",
			"range": map[string]any{
				"filename": "gone.sky.hcl",
				"start":    map[string]any{"line": 1, "column": 1, "byte": 0},
				"end":      map[string]any{"line": 1, "column": 2, "byte": 1},
			}},
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DiagnosticsJSON (-want +got):\n%s", diff)
	}
}

func TestValidateJSON(t *testing.T) {
	tests := map[string]struct {
		diags hcl.Diagnostics
		want  map[string]any
	}{
		"valid": {
			nil,
			map[string]any{"format_version": "1.0", "valid": true, "error_count": 0, "warning_count": 0, "diagnostics": []any{}},
		},
		"warning only": {
			hcl.Diagnostics{{Severity: hcl.DiagWarning, Summary: "W", Detail: "D."}},
			map[string]any{"format_version": "1.0", "valid": true, "error_count": 0, "warning_count": 1,
				"diagnostics": []any{map[string]any{"severity": "warning", "summary": "W", "detail": "D."}}},
		},
		"errors": {
			hcl.Diagnostics{
				{Severity: hcl.DiagError, Summary: "E1", Detail: "D."},
				{Severity: hcl.DiagError, Summary: "E2", Detail: "D."},
			},
			map[string]any{"format_version": "1.0", "valid": false, "error_count": 2, "warning_count": 0,
				"diagnostics": []any{
					map[string]any{"severity": "error", "summary": "E1", "detail": "D."},
					map[string]any{"severity": "error", "summary": "E2", "detail": "D."},
				}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(toJSON(t, tc.want), toJSON(t, ValidateJSON(tc.diags, nil))); diff != "" {
				t.Errorf("ValidateJSON (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDiagnosticsText(t *testing.T) {
	cfg, diags := loadInvalid(t, "nodes_zero.sky.hcl")
	diags = append(hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Value for undeclared variable",
		Detail:   "A variable named \"x\" was assigned with -var.",
	}}, diags...)

	var b strings.Builder
	if err := DiagnosticsText(&b, cfg.Files, diags, false, 0); err != nil {
		t.Fatal(err)
	}
	want := `Error: Value for undeclared variable

A variable named "x" was assigned with -var.

Error: Invalid value for nodes

  on testdata/invalid/nodes_zero.sky.hcl line 2, in pool "dev":
   2:   nodes = 0 # ERROR: Invalid value for nodes

The value of "nodes" must be at least 1; got 0.

`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("DiagnosticsText (-want +got):\n%s", diff)
	}

	b.Reset()
	if err := DiagnosticsText(&b, cfg.Files, diags[1:], true, 0); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "\x1b[31mError\x1b[0m") || !strings.Contains(b.String(), "\x1b[1;4m0\x1b[0m") {
		t.Errorf("no colour in %q", b.String())
	}
}

// Sensitive values are not shown next to a diagnostic.
func TestDiagnosticsHideSensitive(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.sky.hcl": `
variable "n" {
  default   = 0
  sensitive = true
}

pool "p" {
  nodes = var.n
}
`})
	cfg, diags := Load(dir, LoadOptions{})
	if diff := cmp.Diff([]string{"Invalid value for nodes"}, summaries(diags)); diff != "" {
		t.Fatalf("diagnostics (-want +got):\n%s", diff)
	}
	got := toJSON(t, DiagnosticsJSON(diags, cfg.Files)).([]any)[0].(map[string]any)["snippet"].(map[string]any)["values"]
	want := toJSON(t, []any{map[string]any{"traversal": "var.n", "statement": "has a sensitive value"}})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	var b strings.Builder
	DiagnosticsText(&b, cfg.Files, diags, false, 0)
	if strings.Contains(b.String(), "var.n as") {
		t.Errorf("sensitive value shown:\n%s", b.String())
	}
}
