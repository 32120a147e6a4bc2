package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/skyward-sh/skyward/hclspec"
)

// testOutcome is what became of one run block.
type testOutcome struct {
	file, run string
	status    string // "pass", "fail", "error", "skip"
	message   string // the failed assertion's error_message, or the error
	detail    string // diagnostics as printed, without colour
	stdout    string // the executions' output, for the JUnit report
	took      time.Duration
}

func runTest(m *Meta, args []string) error {
	fs := newFlagSet("test")
	junitPath := fs.String("junit-xml", "", "")
	verbose := fs.Bool("verbose", false, "")
	var filters stringList
	fs.Var(&filters, "filter", "")
	var vars varFlags
	vars.register(fs)
	if pos, _, err := parseArgs(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fmt.Errorf("test takes no arguments, got %q; use -filter=NAME to pick tests", pos)
	}

	cfg, err := m.loadConfig(&vars, nil)
	if err != nil {
		return err
	}
	files, diags := hclspec.LoadTests(m.Dir, cfg)
	if len(diags) > 0 {
		m.printDiags(cfg.Files, diags)
	}
	if diags.HasErrors() {
		return errSilent
	}
	files = filterTests(files, filters)
	if len(files) == 0 {
		if len(filters) > 0 {
			return fmt.Errorf("no test file or run matches -filter %s", strings.Join(filters, ", "))
		}
		return fmt.Errorf("no tests: %s has no *%s files (nor its tests/ directory)", m.Dir, hclspec.TestFileSuffix)
	}

	// The first interrupt stops the tests; what they created is still
	// destroyed.
	ctx, cancel := m.untilStop()
	defer cancel()

	st, err := m.readState()
	if err != nil {
		return err
	}
	var toApply []string
	for _, p := range testPools(cfg, files) {
		if _, err := poolNodes(st, cfg.Pools[p]); err != nil {
			toApply = append(toApply, p)
		}
	}
	var flags []string
	for _, v := range vars.vars {
		flags = append(flags, "-var", v)
	}
	for _, f := range vars.files {
		flags = append(flags, "-var-file", f)
	}
	for _, p := range toApply {
		flags = append(flags, "-target=pool."+p)
	}
	sub := *m
	sub.Stop = nil // teardown runs even after an interrupt
	if !*verbose {
		sub.Stdout = io.Discard
	}
	teardown := func() {}
	if len(toApply) > 0 {
		addrs := "pool." + strings.Join(toApply, ", pool.")
		done := false
		teardown = func() {
			if done {
				return
			}
			done = true
			fmt.Fprintf(m.Stdout, "\nDestroying %s, which the tests created...\n", addrs)
			if derr := runDestroy(&sub, append([]string{"-auto-approve"}, flags...)); derr != nil {
				if derr == errSilent {
					derr = fmt.Errorf("see the errors above")
				}
				fmt.Fprintf(m.Stderr, "%s destroy after the tests: %v; run skyward destroy to remove what is left\n", m.errorPrefix(), derr)
			}
		}
		defer teardown()
		fmt.Fprintf(m.Stdout, "Applying %s for the tests...\n", addrs)
		applied := sub
		applied.Stop = m.Stop
		if err := runApply(&applied, append([]string{"-auto-approve"}, flags...)); err != nil {
			if err == errSilent {
				return fmt.Errorf("apply for the tests failed (see above)")
			}
			return fmt.Errorf("apply for the tests: %w", err)
		}
	}

	// The pools stay as they are while the tests run on them.
	release, err := m.sharePools(ctx, testPools(cfg, files), "(skyward test)", 0)
	if err != nil {
		return err
	}
	defer release()
	var outcomes []*testOutcome
	for _, f := range files {
		fmt.Fprintf(m.Stdout, "%s... in progress\n", f.Name)
		failed := false
		for _, r := range f.Runs {
			o := &testOutcome{file: f.Name, run: r.Name}
			start := time.Now()
			if ctx.Err() != nil {
				o.status, o.message = "skip", "interrupted"
			} else {
				m.testRun(ctx, cfg, &vars, r, o)
			}
			o.took = time.Since(start)
			if ctx.Err() != nil && o.status != "pass" {
				// Cut short by the interrupt: not a verdict on the task.
				o.status, o.message = "skip", "interrupted"
			}
			outcomes = append(outcomes, o)
			fmt.Fprintf(m.Stdout, "  run %q... %s\n", r.Name, o.status)
			if o.status == "fail" || o.status == "error" {
				failed = true
			}
		}
		if failed {
			fmt.Fprintf(m.Stdout, "%s... fail\n", f.Name)
		} else {
			fmt.Fprintf(m.Stdout, "%s... pass\n", f.Name)
		}
	}

	release()
	teardown()

	passed, failed := 0, 0
	for _, o := range outcomes {
		switch o.status {
		case "pass":
			passed++
		case "fail", "error":
			failed++
		}
	}
	if *junitPath != "" {
		path := *junitPath
		if !filepath.IsAbs(path) {
			path = filepath.Join(m.Dir, path)
		}
		if err := writeJUnit(path, outcomes); err != nil {
			return fmt.Errorf("write the JUnit report: %w", err)
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintf(m.Stdout, "\nInterrupted! %d passed, %d failed, %d not run.\n", passed, failed, len(outcomes)-passed-failed)
		return exitCodeError{exitInterrupted}
	}
	if failed > 0 {
		fmt.Fprintf(m.Stdout, "\nFailure! %d passed, %d failed.\n", passed, failed)
		return errSilent
	}
	fmt.Fprintf(m.Stdout, "\nSuccess! %d passed, 0 failed.\n", passed)
	return nil
}

// filterTests keeps the files whose name, and the runs whose name, match a
// filter; a file that matches keeps all its runs.
func filterTests(files []*hclspec.TestFile, filters []string) []*hclspec.TestFile {
	if len(filters) == 0 {
		return files
	}
	match := func(name string) bool {
		for _, f := range filters {
			if name == f || filepath.Base(name) == f || strings.TrimSuffix(filepath.Base(name), hclspec.TestFileSuffix) == f {
				return true
			}
		}
		return false
	}
	var out []*hclspec.TestFile
	for _, f := range files {
		if match(f.Name) {
			out = append(out, f)
			continue
		}
		c := *f
		c.Runs = nil
		for _, r := range f.Runs {
			if match(r.Name) {
				c.Runs = append(c.Runs, r)
			}
		}
		if len(c.Runs) > 0 {
			out = append(out, &c)
		}
	}
	return out
}

// testPools lists the pools the runs' tasks use, sorted.
func testPools(cfg *hclspec.Config, files []*hclspec.TestFile) []string {
	set := map[string]bool{}
	for _, f := range files {
		for _, r := range f.Runs {
			if t := cfg.Tasks[r.Task]; t != nil {
				set[t.Pool] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// testRun runs one run block's task and checks its assertions, filling in
// o.
func (m *Meta) testRun(ctx context.Context, base *hclspec.Config, vars *varFlags, r *hclspec.TestRun, o *testOutcome) {
	fail := func(status, msg string) { o.status, o.message = status, msg }
	st, err := m.readState()
	if err != nil {
		fail("error", err.Error())
		m.testError(o, err)
		return
	}
	// The run's variables come after the command line's.
	runVars := *vars
	runVars.vars = append([]string(nil), vars.vars...)
	names := make([]string, 0, len(r.Vars))
	for k := range r.Vars {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		s, err := varString(base, k, r.Vars[k])
		if err != nil {
			fail("error", err.Error())
			m.testError(o, err)
			return
		}
		runVars.vars = append(runVars.vars, k+"="+s)
	}
	cfg, err := m.loadConfig(&runVars, poolValues(st))
	if err != nil {
		fail("error", "the configuration with the run's vars is invalid (see above)")
		return
	}
	t := cfg.Tasks[r.Task]
	if p, q := base.Pools[t.Pool], cfg.Pools[t.Pool]; p != nil && q != nil {
		a, b := *p, *q
		a.DeclRange, b.DeclRange = hcl.Range{}, hcl.Range{}
		if !reflect.DeepEqual(a, b) {
			err := fmt.Errorf("run %q: its vars change pool %q, but skyward test applies the pools once for all runs; set those variables with -var instead", r.Name, t.Pool)
			fail("error", err.Error())
			m.testError(o, err)
			return
		}
	}
	rep, err := m.runTask(ctx, cfg, st, t, false)
	if err != nil {
		err = fmt.Errorf("run %q: task %q: %w", r.Name, r.Task, err)
		fail("error", err.Error())
		m.testError(o, err)
		return
	}
	var out strings.Builder
	for _, e := range rep.Executions {
		for _, l := range strings.SplitAfter(e.Stdout, "\n") {
			if l != "" {
				fmt.Fprintf(&out, "[%s/%d] %s", t.Pool, e.Node, strings.TrimSuffix(l, "\n")+"\n")
			}
		}
	}
	o.stdout = out.String()

	results := make([]cty.Value, len(rep.Executions))
	for i, e := range rep.Executions {
		results[i] = executionValue(e)
	}
	result := cty.NullVal(cty.DynamicPseudoType)
	if len(results) > 0 {
		result = results[0]
	}
	varVals := map[string]cty.Value{}
	for name, v := range cfg.Variables {
		varVals[name] = v.Value
	}
	ectx := &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"result":  result,
			"results": cty.TupleVal(results),
			"var":     cty.ObjectVal(varVals),
		},
		Functions: hclspec.Functions(m.Dir),
	}
	if len(r.Asserts) == 0 {
		// No assertions: the run passes when its task succeeded.
		if rep.OK {
			o.status = "pass"
		} else {
			fail("fail", fmt.Sprintf("task %q failed (exit code %d)", r.Task, reportExitCode(rep)))
		}
		return
	}
	var problems hcl.Diagnostics
	var messages []string
	for _, a := range r.Asserts {
		v, d := a.Condition.Value(ectx)
		if !d.HasErrors() {
			var cerr error
			if v, cerr = convert.Convert(v, cty.Bool); cerr != nil || v.IsNull() || !v.IsKnown() {
				d = append(d, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Invalid condition result",
					Detail:  "The condition must be true or false.",
					Subject: a.Condition.Range().Ptr(), Expression: a.Condition, EvalContext: ectx,
				})
			}
		}
		if d.HasErrors() {
			problems = append(problems, d...)
			messages = append(messages, "the condition could not be evaluated")
			continue
		}
		if v.True() {
			continue
		}
		msg := "assertion failed"
		if mv, md := a.ErrorMessage.Value(ectx); !md.HasErrors() {
			if s, err := convert.Convert(mv, cty.String); err == nil && !s.IsNull() && s.IsKnown() {
				msg = s.AsString()
			}
		}
		messages = append(messages, msg)
		problems = append(problems, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Test assertion failed", Detail: msg,
			Subject: a.Condition.Range().Ptr(), Expression: a.Condition, EvalContext: ectx,
		})
	}
	if len(problems) == 0 {
		o.status = "pass"
		return
	}
	fail("fail", strings.Join(messages, "; "))
	// The test files' sources are in the config LoadTests was given.
	m.printDiags(base.Files, problems)
	var buf bytes.Buffer
	files, rel := relativeDiags(m.Dir, base.Files, problems)
	hclspec.DiagnosticsText(&buf, files, rel, false, 100)
	o.detail = buf.String()
}

// testError prints a run's error and keeps it for the report.
func (m *Meta) testError(o *testOutcome, err error) {
	fmt.Fprintf(m.Stderr, "%s %v\n", m.errorPrefix(), err)
	o.detail = err.Error()
}

// varString renders a run's variable value as -var takes it: strings as
// they are for string (or untyped) variables, anything else as JSON, which
// -var parses as HCL.
func varString(cfg *hclspec.Config, name string, v cty.Value) (string, error) {
	d := cfg.Variables[name]
	if d != nil && (d.Type == cty.String || d.Type == cty.DynamicPseudoType) && v.Type() == cty.String && !v.IsNull() {
		return v.AsString(), nil
	}
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return "", fmt.Errorf("var %s: %w", name, err)
	}
	return string(b), nil
}

// executionValue is one execution as assertions see it.
func executionValue(e runExecution) cty.Value {
	code := cty.NullVal(cty.Number)
	if e.ExitCode != nil {
		code = cty.NumberIntVal(int64(*e.ExitCode))
	}
	return cty.ObjectVal(map[string]cty.Value{
		"node":        cty.NumberIntVal(int64(e.Node)),
		"key":         jsonValue(e.Key),
		"result":      jsonValue(e.Result),
		"exit_code":   code,
		"stdout":      cty.StringVal(e.Stdout),
		"stderr":      cty.StringVal(e.Stderr),
		"ok":          cty.BoolVal(!e.Cancelled && e.ExitCode != nil && *e.ExitCode == 0),
		"cancelled":   cty.BoolVal(e.Cancelled),
		"duration_ms": cty.NumberIntVal(e.DurationMS),
	})
}

func jsonValue(b json.RawMessage) cty.Value {
	if len(b) == 0 || string(b) == "null" {
		return cty.NullVal(cty.DynamicPseudoType)
	}
	ty, err := ctyjson.ImpliedType(b)
	if err != nil {
		return cty.StringVal(string(b))
	}
	v, err := ctyjson.Unmarshal(b, ty)
	if err != nil {
		return cty.StringVal(string(b))
	}
	return v
}

// The JUnit XML report, in the shape JUnit's Ant task writes and CI
// systems read (the schema Jenkins and GitLab use).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Hostname  string      `xml:"hostname,attr"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitSkip    `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkip struct {
	Message string `xml:"message,attr,omitempty"`
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

func writeJUnit(path string, outcomes []*testOutcome) error {
	host, _ := os.Hostname()
	now := time.Now().UTC().Format("2006-01-02T15:04:05")
	root := junitSuites{Name: "skyward test"}
	var total time.Duration
	index := map[string]int{}
	for _, o := range outcomes {
		i, ok := index[o.file]
		if !ok {
			i = len(root.Suites)
			index[o.file] = i
			root.Suites = append(root.Suites, junitSuite{Name: o.file, Timestamp: now, Hostname: host})
		}
		s := &root.Suites[i]
		c := junitCase{Name: o.run, Classname: o.file, Time: seconds(o.took), SystemOut: o.stdout}
		switch o.status {
		case "fail":
			c.Failure = &junitProblem{Message: o.message, Type: "assertion", Text: o.detail}
			s.Failures++
		case "error":
			c.Error = &junitProblem{Message: o.message, Type: "error", Text: o.detail}
			s.Errors++
		case "skip":
			c.Skipped = &junitSkip{Message: o.message}
			s.Skipped++
		}
		s.Tests++
		s.Cases = append(s.Cases, c)
		s.Time = seconds(sumTime(s.Cases))
		total += o.took
	}
	for _, s := range root.Suites {
		root.Tests += s.Tests
		root.Failures += s.Failures
		root.Errors += s.Errors
		root.Skipped += s.Skipped
	}
	root.Time = seconds(total)
	b, err := xml.MarshalIndent(&root, "", "  ")
	if err != nil {
		return err
	}
	b = append([]byte(xml.Header), append(b, '\n')...)
	return os.WriteFile(path, b, 0o644)
}

func sumTime(cs []junitCase) time.Duration {
	var t time.Duration
	for _, c := range cs {
		d, _ := time.ParseDuration(c.Time + "s")
		t += d
	}
	return t
}
