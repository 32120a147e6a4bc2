package hclspec

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
)

// TestFileSuffix is the suffix of the test files LoadTests reads.
const TestFileSuffix = ".skytest.hcl"

// TestFile is one *.skytest.hcl file: runs in file order.
type TestFile struct {
	// Name is the file name relative to the configuration directory
	// ("double.skytest.hcl", "tests/ci.skytest.hcl").
	Name string
	Runs []*TestRun
}

// TestRun is a run "NAME" block: run Task with Vars, then check every
// assertion against its executions.
type TestRun struct {
	Name string
	Task string // the task's name
	// Vars are the run's input variables, over those of the command line.
	Vars      map[string]cty.Value
	Asserts   []*TestAssert
	DeclRange hcl.Range
}

// TestAssert is an assert block. Its expressions are evaluated after the
// run with `result` (the first execution), `results` (all of them, in node
// or item order) and `var` (the run's variables) in scope.
type TestAssert struct {
	Condition    hcl.Expression
	ErrorMessage hcl.Expression
	DeclRange    hcl.Range
}

var testFileSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{{Type: "run", LabelNames: []string{"name"}}},
}

var testRunSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "task", Required: true}, {Name: "vars"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "assert"}},
}

var testAssertSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "condition", Required: true}, {Name: "error_message", Required: true}},
}

// LoadTests reads every *.skytest.hcl file in dir and in dir/tests, in
// name order, and checks them against cfg: each run names a declared task,
// its vars are declared variables, and assertions refer only to result,
// results and var. The files are added to cfg.Files for diagnostics.
func LoadTests(dir string, cfg *Config) ([]*TestFile, hcl.Diagnostics) {
	var names []string
	for _, sub := range []string{"", "tests"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.IsDir() && strings.HasSuffix(e.Name(), TestFileSuffix) && !strings.HasPrefix(e.Name(), ".") {
				names = append(names, filepath.Join(sub, e.Name()))
			}
		}
	}
	sort.Strings(names)
	parser := hclparse.NewParser()
	var diags hcl.Diagnostics
	var files []*TestFile
	for _, name := range names {
		f, d := parser.ParseHCLFile(filepath.Join(dir, name))
		diags = append(diags, d...)
		if f == nil {
			continue
		}
		if cfg.Files != nil {
			cfg.Files[filepath.Join(dir, name)] = f
		}
		if d.HasErrors() {
			continue
		}
		tf, d := decodeTestFile(name, f, cfg)
		diags = append(diags, d...)
		files = append(files, tf)
	}
	sortDiagnostics(diags)
	return files, diags
}

func decodeTestFile(name string, f *hcl.File, cfg *Config) (*TestFile, hcl.Diagnostics) {
	tf := &TestFile{Name: name}
	content, diags := f.Body.Content(testFileSchema)
	seen := map[string]hcl.Range{}
	for _, b := range content.Blocks {
		r := &TestRun{Name: b.Labels[0], Vars: map[string]cty.Value{}, DeclRange: b.DefRange}
		if prev, dup := seen[r.Name]; dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate run block",
				Detail:   fmt.Sprintf("A run named %q was already declared at %s. Run names must be unique within a file.", r.Name, prev),
				Subject:  b.LabelRanges[0].Ptr(),
			})
			continue
		}
		seen[r.Name] = b.DefRange
		rc, d := b.Body.Content(testRunSchema)
		diags = append(diags, d...)
		if attr, ok := rc.Attributes["task"]; ok {
			tr, d := hcl.AbsTraversalForExpr(attr.Expr)
			var task string
			if !d.HasErrors() && len(tr) == 2 && tr.RootName() == "task" {
				if a, ok := tr[1].(hcl.TraverseAttr); ok {
					task = a.Name
				}
			}
			switch {
			case task == "":
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid task reference",
					Detail:   "The task argument must be a reference to a task, as in task.double.",
					Subject:  attr.Expr.Range().Ptr(),
				})
			case cfg.Tasks[task] == nil:
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Reference to undeclared task",
					Detail:   fmt.Sprintf("A task named %q has not been declared in the configuration.", task),
					Subject:  attr.Expr.Range().Ptr(),
				})
			}
			r.Task = task
		}
		if attr, ok := rc.Attributes["vars"]; ok {
			v, d := attr.Expr.Value(&hcl.EvalContext{Functions: Functions(cfg.Dir)})
			diags = append(diags, d...)
			switch {
			case d.HasErrors():
			case v.IsNull() || !(v.Type().IsObjectType() || v.Type().IsMapType()):
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid vars",
					Detail:   "The vars argument must be an object of input variable values, as in { x = 5 }.",
					Subject:  attr.Expr.Range().Ptr(),
				})
			default:
				for k, val := range v.AsValueMap() {
					if _, ok := cfg.Variables[k]; !ok {
						diags = append(diags, &hcl.Diagnostic{
							Severity: hcl.DiagError,
							Summary:  "Value for undeclared variable",
							Detail:   fmt.Sprintf("The run sets %q, but the configuration declares no variable of that name.", k),
							Subject:  attr.Expr.Range().Ptr(),
						})
						continue
					}
					r.Vars[k] = val
				}
			}
		}
		for _, ab := range rc.Blocks {
			ac, d := ab.Body.Content(testAssertSchema)
			diags = append(diags, d...)
			a := &TestAssert{DeclRange: ab.DefRange}
			if attr, ok := ac.Attributes["condition"]; ok {
				a.Condition = attr.Expr
				diags = append(diags, checkAssertRefs(attr.Expr)...)
			}
			if attr, ok := ac.Attributes["error_message"]; ok {
				a.ErrorMessage = attr.Expr
				diags = append(diags, checkAssertRefs(attr.Expr)...)
			}
			if a.Condition != nil && a.ErrorMessage != nil {
				r.Asserts = append(r.Asserts, a)
			}
		}
		tf.Runs = append(tf.Runs, r)
	}
	return tf, diags
}

func checkAssertRefs(expr hcl.Expression) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, tr := range expr.Variables() {
		switch tr.RootName() {
		case "result", "results", "var":
		default:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unknown variable",
				Detail: fmt.Sprintf("There is no variable named %q. An assertion can refer to result (the first execution), "+
					"results (every execution) and var (the run's variables).", tr.RootName()),
				Subject: tr.SourceRange().Ptr(),
			})
		}
	}
	return diags
}
