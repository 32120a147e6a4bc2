package hclspec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

const variablesConfig = `
variable "n" {
  type    = number
  default = 1
}

variable "s" {
  type    = string
  default = "default"
}

variable "zones" {
  type    = list(string)
  default = []
}

variable "untyped" {
  default = "d"
}

variable "checked" {
  type    = number
  default = 5

  validation {
    condition     = var.checked < 10
    error_message = "The value must be below 10."
  }
}
`

func TestVariablePrecedence(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.sky.hcl": variablesConfig})
	writeVarFile := func(name, src string) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file2 := writeVarFile("two.hcl", "n = 2\ns = \"file\"\n")
	file3 := writeVarFile("three.hcl", "n = 3\n")
	fileJSON := writeVarFile("vars.json", `{"zones": ["x", "y"]}`)

	tests := map[string]struct {
		opts LoadOptions
		want map[string]cty.Value
	}{
		"defaults": {
			LoadOptions{},
			map[string]cty.Value{"n": cty.NumberIntVal(1), "s": cty.StringVal("default")},
		},
		"env over default": {
			LoadOptions{Environ: []string{"HOME=/root", "SKYWARD_VAR_n=4", "SKYWARD_VAR_s=from env"}},
			map[string]cty.Value{"n": cty.NumberIntVal(4), "s": cty.StringVal("from env")},
		},
		"var-file over env": {
			LoadOptions{Environ: []string{"SKYWARD_VAR_n=4"}, VarFiles: []string{file2}},
			map[string]cty.Value{"n": cty.NumberIntVal(2), "s": cty.StringVal("file")},
		},
		"later var-file wins": {
			LoadOptions{VarFiles: []string{file2, file3}},
			map[string]cty.Value{"n": cty.NumberIntVal(3), "s": cty.StringVal("file")},
		},
		"-var over var-file": {
			LoadOptions{Environ: []string{"SKYWARD_VAR_n=4"}, VarFiles: []string{file2}, Vars: []string{"n=5"}},
			map[string]cty.Value{"n": cty.NumberIntVal(5), "s": cty.StringVal("file")},
		},
		"later -var wins": {
			LoadOptions{Vars: []string{"n=5", "n=6"}},
			map[string]cty.Value{"n": cty.NumberIntVal(6)},
		},
		"string -var is literal": {
			LoadOptions{Vars: []string{"s=a = b", "untyped=[1]"}},
			map[string]cty.Value{"s": cty.StringVal("a = b"), "untyped": cty.StringVal("[1]")},
		},
		"list -var is an expression": {
			LoadOptions{Vars: []string{`zones=["a", "b"]`}},
			map[string]cty.Value{"zones": cty.ListVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b")})},
		},
		"list from env": {
			LoadOptions{Environ: []string{`SKYWARD_VAR_zones=["e"]`}},
			map[string]cty.Value{"zones": cty.ListVal([]cty.Value{cty.StringVal("e")})},
		},
		"JSON var-file": {
			LoadOptions{VarFiles: []string{fileJSON}},
			map[string]cty.Value{"zones": cty.ListVal([]cty.Value{cty.StringVal("x"), cty.StringVal("y")})},
		},
		"number given as a string converts": {
			LoadOptions{VarFiles: []string{writeVarFile("str.hcl", `n = "7"`)}},
			map[string]cty.Value{"n": cty.NumberIntVal(7)},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, diags := Load(dir, tc.opts)
			failOnDiags(t, cfg, diags)
			got := map[string]cty.Value{}
			for name := range tc.want {
				got[name] = cfg.Variables[name].Value
			}
			if diff := cmp.Diff(tc.want, got, ctyEqual); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVariableValueErrors(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.sky.hcl": variablesConfig})
	varFile := filepath.Join(t.TempDir(), "extra.hcl")
	if err := os.WriteFile(varFile, []byte("n = 2\nnot_declared = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badFile := filepath.Join(t.TempDir(), "bad.hcl")
	if err := os.WriteFile(badFile, []byte("n = \"x\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	type diag struct {
		Severity hcl.DiagnosticSeverity
		Summary  string
		Line     int // 0: no subject
	}
	tests := map[string]struct {
		opts LoadOptions
		want []diag
	}{
		"-var for undeclared variable": {
			LoadOptions{Vars: []string{"nope=1"}},
			[]diag{{hcl.DiagError, "Value for undeclared variable", 0}},
		},
		"-var without equals sign": {
			LoadOptions{Vars: []string{"n"}},
			[]diag{{hcl.DiagError, "Invalid -var option", 0}},
		},
		"-var of the wrong type": {
			LoadOptions{Vars: []string{"n=abc"}},
			[]diag{{hcl.DiagError, "Variables not allowed", 1}},
		},
		"-var not convertible": {
			LoadOptions{Vars: []string{`n="abc"`}},
			[]diag{{hcl.DiagError, "Invalid value for input variable", 0}},
		},
		"env not convertible": {
			LoadOptions{Environ: []string{"SKYWARD_VAR_zones=3"}},
			[]diag{{hcl.DiagError, "Invalid value for input variable", 0}},
		},
		"undeclared in environment is ignored": {
			LoadOptions{Environ: []string{"SKYWARD_VAR_nope=1"}},
			nil,
		},
		"missing var-file": {
			LoadOptions{VarFiles: []string{filepath.Join(dir, "nope.hcl")}},
			[]diag{{hcl.DiagError, "Failed to read variables file", 0}},
		},
		"undeclared in var-file warns": {
			LoadOptions{VarFiles: []string{varFile}},
			[]diag{{hcl.DiagWarning, "Value for undeclared variable", 2}},
		},
		"var-file value of the wrong type points at it": {
			LoadOptions{VarFiles: []string{badFile}},
			[]diag{{hcl.DiagError, "Invalid value for input variable", 1}},
		},
		"validation failure from -var": {
			LoadOptions{Vars: []string{"checked=12"}},
			// No source for a -var value: the variable's name is shown.
			[]diag{{hcl.DiagError, "Invalid value for variable", 21}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, diags := Load(dir, tc.opts)
			var got []diag
			for _, d := range diags {
				line := 0
				if d.Subject != nil {
					line = d.Subject.Start.Line
				}
				got = append(got, diag{d.Severity, d.Summary, line})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequiredVariable(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.sky.hcl": `
variable "nodes" {
  type = number
}

pool "dev" {
  nodes = var.nodes
}
`})
	tests := map[string]struct {
		opts     LoadOptions
		wantDiag string
		want     int
	}{
		"unset":   {LoadOptions{}, "No value for required variable", 0},
		"-var":    {LoadOptions{Vars: []string{"nodes=2"}}, "", 2},
		"env":     {LoadOptions{Environ: []string{"SKYWARD_VAR_nodes=3"}}, "", 3},
		"invalid": {LoadOptions{Vars: []string{"nodes=0"}}, "Invalid value for nodes", 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, diags := Load(dir, tc.opts)
			if tc.wantDiag != "" {
				// Exactly one: a missing variable does not also make the
				// pool's nodes invalid.
				if diff := cmp.Diff([]string{tc.wantDiag}, summaries(diags)); diff != "" {
					t.Errorf("diagnostics (-want +got):\n%s", diff)
				}
				return
			}
			failOnDiags(t, cfg, diags)
			if got := cfg.Pools["dev"].Nodes; got != tc.want {
				t.Errorf("nodes = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestAutoVarFiles(t *testing.T) {
	extra := filepath.Join(t.TempDir(), "extra.hcl")
	if err := os.WriteFile(extra, []byte("n = 40\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		files    map[string]string
		opts     LoadOptions
		want     map[string]cty.Value
		warnings []string
	}{
		"skyward.skyvars over env": {
			files: map[string]string{"skyward.skyvars": "n = 10\n"},
			opts:  LoadOptions{Environ: []string{"SKYWARD_VAR_n=4", "SKYWARD_VAR_s=env"}},
			want:  map[string]cty.Value{"n": cty.NumberIntVal(10), "s": cty.StringVal("env")},
		},
		"auto files over skyward.skyvars": {
			files: map[string]string{"skyward.skyvars": "n = 10\ns = \"base\"\n", "a.auto.skyvars": "n = 20\n"},
			want:  map[string]cty.Value{"n": cty.NumberIntVal(20), "s": cty.StringVal("base")},
		},
		"auto files in lexical order": {
			files: map[string]string{"b.auto.skyvars": "n = 30\n", "a.auto.skyvars": "n = 20\ns = \"a\"\n"},
			want:  map[string]cty.Value{"n": cty.NumberIntVal(30), "s": cty.StringVal("a")},
		},
		"JSON files too": {
			files: map[string]string{"skyward.skyvars.json": `{"n": 11}`, "z.auto.skyvars.json": `{"zones": ["j"]}`},
			want:  map[string]cty.Value{"n": cty.NumberIntVal(11), "zones": cty.ListVal([]cty.Value{cty.StringVal("j")})},
		},
		"-var-file over auto files": {
			files: map[string]string{"skyward.skyvars": "n = 10\n", "a.auto.skyvars": "n = 20\n"},
			opts:  LoadOptions{VarFiles: []string{extra}},
			want:  map[string]cty.Value{"n": cty.NumberIntVal(40)},
		},
		"-var over everything": {
			files: map[string]string{"skyward.skyvars": "n = 10\n", "a.auto.skyvars": "n = 20\n"},
			opts:  LoadOptions{VarFiles: []string{extra}, Vars: []string{"n=50"}, Environ: []string{"SKYWARD_VAR_n=4"}},
			want:  map[string]cty.Value{"n": cty.NumberIntVal(50)},
		},
		"other names are not read": {
			files: map[string]string{"prod.skyvars": "n = 60\n", "a.auto.skyvars.bak": "n = 70\n", ".hidden.auto.skyvars": "n = 80\n"},
			want:  map[string]cty.Value{"n": cty.NumberIntVal(1)},
		},
		"undeclared variable is a warning naming the file": {
			files:    map[string]string{"shared.auto.skyvars": "n = 2\nregion = \"eu\"\n"},
			want:     map[string]cty.Value{"n": cty.NumberIntVal(2)},
			warnings: []string{`The variables file "shared.auto.skyvars" assigns "region", but the configuration does not declare a variable of that name. The value is ignored.`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			files := map[string]string{"main.sky.hcl": variablesConfig}
			for n, src := range tc.files {
				files[n] = src
			}
			dir := writeConfig(t, files)
			cfg, diags := Load(dir, tc.opts)
			if diags.HasErrors() {
				failOnDiags(t, cfg, diags)
			}
			warnings := []string{}
			for _, d := range diags {
				warnings = append(warnings, d.Detail)
			}
			if tc.warnings == nil {
				tc.warnings = []string{}
			}
			if diff := cmp.Diff(tc.warnings, warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			got := map[string]cty.Value{}
			for name := range tc.want {
				got[name] = cfg.Variables[name].Value
			}
			if diff := cmp.Diff(tc.want, got, ctyEqual); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}
}
