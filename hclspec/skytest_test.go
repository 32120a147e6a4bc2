package hclspec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

func TestLoadTests(t *testing.T) {
	config := `
variable "x" {
  type    = number
  default = 5
}

pool "ci" {
  nodes = 1
}

task "double" {
  pool = pool.ci
  run  = "echo"
}
`
	tests := map[string]struct {
		src   string
		runs  int
		diags []string // summaries, in order
	}{
		"valid": {src: `
run "one" {
  task = task.double
  vars = { x = 6 }
  assert {
    condition     = result.result == var.x * 2 && length(results) == 1
    error_message = "got ${result.result}"
  }
}
run "two" {
  task = task.double
}
`, runs: 2},
		"undeclared task":     {src: "run \"a\" {\n  task = task.nope\n}\n", runs: 1, diags: []string{"Reference to undeclared task"}},
		"not a task":          {src: "run \"a\" {\n  task = pool.ci\n}\n", runs: 1, diags: []string{"Invalid task reference"}},
		"missing task":        {src: "run \"a\" {\n}\n", runs: 1, diags: []string{"Missing required argument"}},
		"undeclared variable": {src: "run \"a\" {\n  task = task.double\n  vars = { y = 1 }\n}\n", runs: 1, diags: []string{"Value for undeclared variable"}},
		"bad vars":            {src: "run \"a\" {\n  task = task.double\n  vars = 3\n}\n", runs: 1, diags: []string{"Invalid vars"}},
		"unknown root": {src: `run "a" {
  task = task.double
  assert {
    condition     = output.x == 1
    error_message = "no"
  }
}
`, runs: 1, diags: []string{"Unknown variable"}},
		"duplicate run": {src: "run \"a\" {\n  task = task.double\n}\nrun \"a\" {\n  task = task.double\n}\n", runs: 1, diags: []string{"Duplicate run block"}},
		"unknown block": {src: "provider \"container\" {}\n", runs: 0, diags: []string{"Unsupported block type"}},
		"no error msg":  {src: "run \"a\" {\n  task = task.double\n  assert {\n    condition = true\n  }\n}\n", runs: 1, diags: []string{"Missing required argument"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "main.sky.hcl"), []byte(config), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(dir, "tests"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "tests", "a.skytest.hcl"), []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, diags := Load(dir, LoadOptions{})
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			files, diags := LoadTests(dir, cfg)
			var got []string
			for _, d := range diags {
				got = append(got, d.Summary)
			}
			if strings.Join(got, "|") != strings.Join(tc.diags, "|") {
				t.Errorf("diagnostics %q, want %q", got, tc.diags)
			}
			if len(files) != 1 || files[0].Name != filepath.Join("tests", "a.skytest.hcl") {
				t.Fatalf("files = %+v", files)
			}
			if len(files[0].Runs) != tc.runs {
				t.Errorf("%d runs, want %d", len(files[0].Runs), tc.runs)
			}
			if name == "valid" {
				r := files[0].Runs[0]
				if r.Task != "double" || !r.Vars["x"].RawEquals(cty.NumberIntVal(6)) || len(r.Asserts) != 1 {
					t.Errorf("run = %+v", r)
				}
			}
		})
	}
}
