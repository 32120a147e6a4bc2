package hclspec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

var ctyEqual = cmp.Comparer(func(a, b cty.Value) bool { return a.RawEquals(b) })

var ignoreRanges = cmpopts.IgnoreFields(Pool{}, "DeclRange")

// loadFixture loads one file of testdata/valid and fails on any diagnostic.
func loadFixture(t *testing.T, name string, opts LoadOptions) *Config {
	t.Helper()
	opts.ProviderSchemas = testSchemas()
	cfg, diags := loadFiles("testdata/valid", []string{name}, opts)
	failOnDiags(t, cfg, diags)
	return cfg
}

func failOnDiags(t *testing.T, cfg *Config, diags hcl.Diagnostics) {
	t.Helper()
	if len(diags) > 0 {
		var b strings.Builder
		DiagnosticsText(&b, cfg.Files, diags, false, 0)
		t.Fatalf("unexpected diagnostics:\n%s", b.String())
	}
}

// writeConfig writes files into a new directory and returns it.
func writeConfig(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func summaries(diags hcl.Diagnostics) []string {
	out := []string{}
	for _, d := range diags {
		out = append(out, d.Summary)
	}
	return out
}

func TestLoadNoConfigurationFiles(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.tf": `pool "x" {}`, "notes.hcl": ``})
	cfg, diags := Load(dir, LoadOptions{})
	if cfg == nil {
		t.Fatal("Load returned a nil Config")
	}
	if diff := cmp.Diff([]string{"No configuration files"}, summaries(diags)); diff != "" {
		t.Fatalf("summaries (-want +got):\n%s", diff)
	}
	if !strings.Contains(diags[0].Detail, dir) {
		t.Errorf("detail %q does not name the directory", diags[0].Detail)
	}

	_, diags = Load(filepath.Join(dir, "missing"), LoadOptions{})
	if diff := cmp.Diff([]string{"Failed to read configuration directory"}, summaries(diags)); diff != "" {
		t.Errorf("summaries (-want +got):\n%s", diff)
	}
}

// TestConfigFileIsDirectory: a directory named like a configuration file
// is an error, reported with the problems of the other files.
func TestConfigFileIsDirectory(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.sky.hcl": `pool "x" { nodes = 0 }`})
	if err := os.Mkdir(filepath.Join(dir, "extra.sky.hcl"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, diags := Load(dir, LoadOptions{})
	want := []string{"Configuration file is a directory", "Invalid value for nodes"}
	if diff := cmp.Diff(want, summaries(diags)); diff != "" {
		t.Fatalf("summaries (-want +got):\n%s", diff)
	}
	if !strings.Contains(diags[0].Detail, `"extra.sky.hcl"`) {
		t.Errorf("detail %q does not name the directory", diags[0].Detail)
	}

	only := t.TempDir()
	os.Mkdir(filepath.Join(only, "main.sky.hcl"), 0o755)
	_, diags = Load(only, LoadOptions{})
	if diff := cmp.Diff([]string{"Configuration file is a directory"}, summaries(diags)); diff != "" {
		t.Errorf("only a directory: summaries (-want +got):\n%s", diff)
	}
}

func TestLoadDirectory(t *testing.T) {
	// Blocks in one file refer to blocks in another; other files are
	// ignored.
	dir := writeConfig(t, map[string]string{
		"b_tasks.sky.hcl":  "task \"t\" {\n  pool = pool.dev\n  run  = \"true\"\n}\n",
		"a_pools.sky.hcl":  "pool \"dev\" {\n  nodes = local.n\n}\n",
		"c_locals.sky.hcl": "locals {\n  n = 2\n}\n",
		"d.sky.hcl.bak":    `this is not read`,
		".e.sky.hcl":       `neither is this`,
	})
	cfg, diags := Load(dir, LoadOptions{ProviderSchemas: testSchemas()})
	failOnDiags(t, cfg, diags)
	if got := cfg.Pools["dev"].Nodes; got != 2 {
		t.Errorf("nodes = %d, want 2", got)
	}
	if got := cfg.Tasks["t"].Pool; got != "dev" {
		t.Errorf("task pool = %q, want dev", got)
	}
	want := []string{
		filepath.Join(dir, "a_pools.sky.hcl"),
		filepath.Join(dir, "b_tasks.sky.hcl"),
		filepath.Join(dir, "c_locals.sky.hcl"),
	}
	if diff := cmp.Diff(want, mapKeys(cfg.Files)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if cfg.Dir != dir {
		t.Errorf("Dir = %q, want %q", cfg.Dir, dir)
	}
}

func TestLoadSpecExample(t *testing.T) {
	cfg := loadFixture(t, "spec_example.sky.hcl", LoadOptions{})

	wantPools := map[string]*Pool{
		"dev": {Name: "dev", Provider: "container", Nodes: 3, VCPUs: 1, MemoryGB: 1, Image: "py",
			Allocation: "on-demand", Concurrency: 1, Replicas: 1},
	}
	if diff := cmp.Diff(wantPools, cfg.Pools, ignoreRanges); diff != "" {
		t.Errorf("pools (-want +got):\n%s", diff)
	}

	wantImages := map[string]*Image{
		"py": {
			Name:     "py",
			Apt:      []string{"python3", "python3-venv", "jq"},
			Pip:      []string{"requests==2.32.3"},
			Env:      map[string]string{"MY_VAR": "it works"},
			Includes: []string{"./src"},
			Excludes: []string{".git", "__pycache__"},
			Setup:    []string{"echo any extra shell step"},
		},
	}
	if diff := cmp.Diff(wantImages, cfg.Images, cmpopts.IgnoreFields(Image{}, "DeclRange")); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}

	shard := make([]cty.Value, 100)
	for i := range shard {
		shard[i] = cty.NumberIntVal(int64(i))
	}
	wantTasks := map[string]*Task{
		"hello": {Name: "hello", Pool: "dev", Mode: "broadcast", Run: "echo Hello from $(hostname)", FailFast: true},
		"shard_sum": {Name: "shard_sum", Pool: "dev", Mode: "broadcast", FailFast: true,
			Run: "jq add $SKYWARD_SHARD_FILE > $SKYWARD_RESULT_FILE", Shard: shard, HasShard: true},
		"grid": {Name: "grid", Pool: "dev", Mode: "single", FailFast: true,
			Run: "python3 train.py --lr $SKYWARD_EACH_VALUE", HasForEach: true,
			ForEach: []EachItem{
				{Key: cty.NumberIntVal(0), Value: cty.MustParseNumberVal("0.1")},
				{Key: cty.NumberIntVal(1), Value: cty.MustParseNumberVal("0.01")},
				{Key: cty.NumberIntVal(2), Value: cty.MustParseNumberVal("0.001")},
			}},
	}
	if diff := cmp.Diff(wantTasks, cfg.Tasks, ctyEqual, cmpopts.IgnoreFields(Task{}, "DeclRange")); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}

	wantProviders := map[string]cty.Value{
		"container": cty.ObjectVal(map[string]cty.Value{
			"binary": cty.StringVal("docker"), "image": cty.StringVal("ubuntu:24.04"), "network": cty.StringVal(""),
		}),
		"aws":    cty.ObjectVal(map[string]cty.Value{"region": cty.StringVal("us-east-1")}),
		"runpod": cty.ObjectVal(map[string]cty.Value{"api_key": cty.StringVal("rp-test")}),
	}
	gotProviders := map[string]cty.Value{}
	for addr, p := range cfg.Providers {
		gotProviders[addr] = p.Config
	}
	if diff := cmp.Diff(wantProviders, gotProviders, ctyEqual); diff != "" {
		t.Errorf("providers (-want +got):\n%s", diff)
	}

	if head := cfg.Outputs["head"].Value; head.IsKnown() {
		t.Errorf("output head = %#v before apply, want unknown", head)
	}
}

func TestProviderAliasesAndBuiltin(t *testing.T) {
	cfg := loadFixture(t, "aliases.sky.hcl", LoadOptions{})

	gotProviders := map[string]string{}
	for addr, p := range cfg.Providers {
		gotProviders[addr] = p.Type + "/" + p.Alias
	}
	wantProviders := map[string]string{"aws": "aws/", "aws.west": "aws/west", "container": "container/"}
	if diff := cmp.Diff(wantProviders, gotProviders); diff != "" {
		t.Errorf("providers (-want +got):\n%s", diff)
	}
	wantBuiltin := cty.ObjectVal(map[string]cty.Value{
		"binary": cty.NullVal(cty.String), "image": cty.NullVal(cty.String), "network": cty.NullVal(cty.String),
	})
	if diff := cmp.Diff(wantBuiltin, cfg.Providers["container"].Config, ctyEqual); diff != "" {
		t.Errorf("built-in container config (-want +got):\n%s", diff)
	}

	wantPools := map[string]*Pool{
		"east": {Name: "east", Provider: "aws", Nodes: 2, InstanceType: "t3.small", Allocation: "spot",
			TTL: 90 * time.Minute, Concurrency: 1, Replicas: 1},
		"west": {Name: "west", Provider: "aws.west", Nodes: 1, Accelerator: "T4", DiskGB: 100,
			Allocation: "on-demand", Concurrency: 4, Replicas: 1},
		"local":   {Name: "local", Provider: "container", Nodes: 1, Allocation: "on-demand", Concurrency: 1, Replicas: 1},
		"default": {Name: "default", Provider: "container", Nodes: 1, Allocation: "on-demand", Concurrency: 1, Replicas: 1},
	}
	if diff := cmp.Diff(wantPools, cfg.Pools, ignoreRanges); diff != "" {
		t.Errorf("pools (-want +got):\n%s", diff)
	}
}

func TestBuiltinProviderOnlyWhenUsed(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.sky.hcl": "provider \"aws\" {\n  region = \"x\"\n}\npool \"p\" {\n  provider = aws\n}\n"})
	cfg, diags := Load(dir, LoadOptions{ProviderSchemas: testSchemas()})
	failOnDiags(t, cfg, diags)
	if diff := cmp.Diff([]string{"aws"}, mapKeys(cfg.Providers)); diff != "" {
		t.Errorf("providers (-want +got):\n%s", diff)
	}
}

func TestTaskItems(t *testing.T) {
	cfg := loadFixture(t, "tasks.sky.hcl", LoadOptions{})
	num := func(i int64) cty.Value { return cty.NumberIntVal(i) }
	str := cty.StringVal

	tests := map[string]struct {
		want *Task
	}{
		"single_head": {&Task{Name: "single_head", Pool: "dev", Mode: "single", Target: "head",
			Command: []string{"python3", "-c", "print(1)"}, Timeout: 30 * time.Minute, Retries: 2,
			FailFast: false, Env: map[string]string{"A": "1", "B": "two"}}},
		"single_index":        {&Task{Name: "single_index", Pool: "dev", Mode: "single", Target: "2", Run: "hostname", FailFast: true}},
		"single_index_string": {&Task{Name: "single_index_string", Pool: "dev", Mode: "single", Target: "1", Run: "hostname", FailFast: true}},
		"by_map": {&Task{Name: "by_map", Pool: "dev", Mode: "single", FailFast: true,
			Run: "echo $SKYWARD_EACH_KEY=$SKYWARD_EACH_VALUE", HasForEach: true,
			ForEach: []EachItem{ // ordered by key
				{Key: str("alpha"), Value: num(1)},
				{Key: str("mu"), Value: num(12)},
				{Key: str("zeta"), Value: num(26)},
			}}},
		"by_set": {&Task{Name: "by_set", Pool: "dev", Mode: "single", FailFast: true,
			Run: "echo $SKYWARD_EACH_VALUE", HasForEach: true,
			ForEach: []EachItem{
				{Key: num(0), Value: str("a")},
				{Key: num(1), Value: str("b")},
				{Key: num(2), Value: str("c")},
			}}},
		"by_count": {&Task{Name: "by_count", Pool: "dev", Mode: "single", FailFast: true,
			Run: "echo $SKYWARD_EACH_KEY", HasForEach: true, HasCount: true,
			ForEach: []EachItem{
				{Key: num(0), Value: num(0)},
				{Key: num(1), Value: num(1)},
				{Key: num(2), Value: num(2)},
				{Key: num(3), Value: num(3)},
			}}},
		"sharded": {&Task{Name: "sharded", Pool: "dev", Mode: "broadcast", FailFast: true,
			Run: "cat $SKYWARD_SHARD_FILE", HasShard: true,
			Shard: func() []cty.Value {
				var s []cty.Value
				for i := int64(0); i < 7; i++ {
					s = append(s, cty.ObjectVal(map[string]cty.Value{"n": num(i)}))
				}
				return s
			}()}},
		// Its run depends on a pool address: unknown until the pool is
		// applied, and not an error.
		"uses_pool_address": {&Task{Name: "uses_pool_address", Pool: "dev", Mode: "single", FailFast: true, Incomplete: true}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, cfg.Tasks[name], ctyEqual, cmpopts.IgnoreFields(Task{}, "DeclRange")); diff != "" {
				t.Errorf("task (-want +got):\n%s", diff)
			}
		})
	}
	if len(cfg.Tasks) != len(tests) {
		t.Errorf("got %d tasks, want %d", len(cfg.Tasks), len(tests))
	}
}

func TestPoolValues(t *testing.T) {
	node := func(id, ip string) cty.Value {
		return cty.ObjectVal(map[string]cty.Value{
			"id": cty.StringVal(id), "private_ip": cty.StringVal(ip),
			"ssh_host": cty.StringVal("127.0.0.1"), "ssh_port": cty.NumberIntVal(2222),
		})
	}
	applied := map[string]cty.Value{
		"dev": cty.ObjectVal(map[string]cty.Value{
			"name":  cty.StringVal("dev"),
			"nodes": cty.ListVal([]cty.Value{node("d0", "10.0.0.2"), node("d1", "10.0.0.3")}),
		}),
		"other": cty.ObjectVal(map[string]cty.Value{
			"name":  cty.StringVal("other"),
			"nodes": cty.ListVal([]cty.Value{node("o0", "10.0.1.2")}),
		}),
	}

	before := loadFixture(t, "pool_values.sky.hcl", LoadOptions{})
	for name, o := range before.Outputs {
		if o.Value.IsWhollyKnown() {
			t.Errorf("output %s = %#v before apply, want unknown", name, o.Value)
		}
	}
	if !before.Tasks["connect"].Incomplete {
		t.Error("task connect is complete before apply")
	}

	after := loadFixture(t, "pool_values.sky.hcl", LoadOptions{PoolValues: applied})
	wantOutputs := map[string]cty.Value{
		"ips":      cty.TupleVal([]cty.Value{cty.StringVal("10.0.0.2"), cty.StringVal("10.0.0.3")}),
		"endpoint": cty.StringVal("127.0.0.1:2222"),
		"count":    cty.NumberIntVal(2),
	}
	gotOutputs := map[string]cty.Value{}
	for name, o := range after.Outputs {
		gotOutputs[name] = o.Value
	}
	if diff := cmp.Diff(wantOutputs, gotOutputs, ctyEqual); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	wantTask := &Task{Name: "connect", Pool: "other", Mode: "single", FailFast: true,
		Run: "ping -c1 $SKYWARD_EACH_VALUE", Env: map[string]string{"HEAD": "10.0.0.2"}, HasForEach: true,
		ForEach: []EachItem{
			{Key: cty.NumberIntVal(0), Value: cty.StringVal("10.0.0.2")},
			{Key: cty.NumberIntVal(1), Value: cty.StringVal("10.0.0.3")},
		}}
	if diff := cmp.Diff(wantTask, after.Tasks["connect"], ctyEqual, cmpopts.IgnoreFields(Task{}, "DeclRange")); diff != "" {
		t.Errorf("task (-want +got):\n%s", diff)
	}
}

func TestLocals(t *testing.T) {
	cfg := loadFixture(t, "locals.sky.hcl", LoadOptions{})
	names := cty.TupleVal([]cty.Value{
		cty.StringVal("ml-00"), cty.StringVal("ml-01"), cty.StringVal("ml-02"), cty.StringVal("ml-03"),
	})
	labels := cty.ObjectVal(map[string]cty.Value{"owner": cty.StringVal("skyward"), "team": cty.StringVal("ml")})
	want := map[string]cty.Value{
		"node_count": cty.NumberIntVal(4),
		"names":      names,
		"labels":     labels,
		"doc":        cty.StringVal(`{"labels":{"owner":"skyward","team":"ml"},"names":["ml-00","ml-01","ml-02","ml-03"]}`),
	}
	for name, w := range want {
		if diff := cmp.Diff(w, cfg.Locals[name], ctyEqual); diff != "" {
			t.Errorf("local.%s (-want +got):\n%s", name, diff)
		}
	}
	if got := cfg.Pools["workers"].Nodes; got != 4 {
		t.Errorf("workers nodes = %d, want 4", got)
	}
	if diff := cmp.Diff(map[string]string{"owner": "skyward", "team": "ml"}, cfg.Tasks["report"].Env); diff != "" {
		t.Errorf("task env (-want +got):\n%s", diff)
	}
}

func TestImages(t *testing.T) {
	cfg := loadFixture(t, "images.sky.hcl", LoadOptions{})
	full := cfg.Images["full"]
	if got := full.Env["GREETING"]; got != "hello from a file" {
		t.Errorf("file() read %q", got)
	}
	if full.Excludes != nil {
		t.Errorf("Excludes = %q, want nil when not set", full.Excludes)
	}
	if empty := cfg.Images["empty"]; empty.Apt != nil || empty.Includes != nil || empty.Env != nil {
		t.Errorf("empty image = %+v", empty)
	}
}

func TestSensitive(t *testing.T) {
	cfg := loadFixture(t, "variables.sky.hcl", LoadOptions{})
	tests := map[string]struct {
		sensitive bool
		value     cty.Value
	}{
		"token": {true, cty.StringVal("s3cret")},
		"zones": {false, cty.StringVal("a,b")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := cfg.Outputs[name]
			if o.Sensitive != tc.sensitive {
				t.Errorf("output sensitive = %v, want %v", o.Sensitive, tc.sensitive)
			}
			// Values handed out carry no marks: callers may use them freely.
			if diff := cmp.Diff(tc.value, o.Value, ctyEqual); diff != "" {
				t.Errorf("output value (-want +got):\n%s", diff)
			}
		})
	}
	if !cfg.Variables["token"].Sensitive || cfg.Variables["region"].Sensitive {
		t.Error("variable sensitive flags are wrong")
	}
	if got := cfg.Variables["zones"].Description; got != "Availability zones." {
		t.Errorf("description = %q", got)
	}
	// optional() attributes get their defaults.
	if got := cfg.Pools["sized"].Nodes; got != 2 {
		t.Errorf("nodes from optional default = %d, want 2", got)
	}
}

func TestEvalOutputs(t *testing.T) {
	cfg := loadFixture(t, "pool_values.sky.hcl", LoadOptions{})
	pools := map[string]cty.Value{
		"dev": cty.ObjectVal(map[string]cty.Value{
			"nodes": cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{
				"id": cty.StringVal("d0"), "private_ip": cty.StringVal("10.0.0.2"),
				"ssh_host": cty.StringVal("localhost"), "ssh_port": cty.NumberIntVal(22),
			})}),
		}),
	}
	outputs, diags := cfg.EvalOutputs(pools)
	failOnDiags(t, cfg, diags)
	want := map[string]cty.Value{
		"ips":      cty.TupleVal([]cty.Value{cty.StringVal("10.0.0.2")}),
		"endpoint": cty.StringVal("localhost:22"),
		"count":    cty.NumberIntVal(1),
	}
	got := map[string]cty.Value{}
	for name, o := range outputs {
		got[name] = o.Value
	}
	if diff := cmp.Diff(want, got, ctyEqual); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	// The Config itself is unchanged.
	if cfg.Outputs["count"].Value.IsKnown() {
		t.Error("EvalOutputs changed the Config")
	}
}

// A syntax error in one file is reported alone: blocks declared in that file
// are still known to the others, and its broken blocks are not decoded.
func TestSyntaxErrorDoesNotCascade(t *testing.T) {
	dir := writeConfig(t, map[string]string{
		"a.sky.hcl": "provider \"aws\" {\n  alias = \"west\"\n  region = \n}\n\npool \"dev\" {\n  nodes = \n}\n",
		"b.sky.hcl": "pool \"other\" {\n  provider = aws.west\n}\n\ntask \"t\" {\n  pool = pool.dev\n  run  = \"true\"\n}\n",
	})
	_, diags := Load(dir, LoadOptions{ProviderSchemas: testSchemas()})
	for _, d := range diags {
		if d.Subject == nil || filepath.Base(d.Subject.Filename) != "a.sky.hcl" {
			t.Errorf("unexpected diagnostic outside the broken file: %s: %s", d.Summary, d.Detail)
		}
	}
	if !diags.HasErrors() {
		t.Error("no syntax error reported")
	}
}

func TestIsLocalPip(t *testing.T) {
	tests := map[string]bool{
		"./wheels/mylib-0.1-py3-none-any.whl": true,
		"../pkgdir":                           true,
		"/abs/pkg":                            true,
		"mylib-0.1-py3-none-any.whl":          true,
		"requests==2.32.3":                    false,
		"numpy":                               false,
		"https://example.com/x-1.0-py3-none-any.whl":             false,
		"mylib @ https://example.com/mylib-0.1-py3-none-any.whl": false,
		"git+https://example.com/repo.git":                       false,
	}
	for req, want := range tests {
		if got := IsLocalPip(req); got != want {
			t.Errorf("IsLocalPip(%q) = %v, want %v", req, got, want)
		}
	}
}

func TestLoadBackend(t *testing.T) {
	be, diags := LoadBackend("testdata/valid")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	// testdata/valid has one backend, in backend_s3.sky.hcl.
	want := &Backend{Type: "s3", Bucket: "skyward-state", Key: "ci/dev.json", Region: "eu-west-1", Endpoint: "http://127.0.0.1:5000"}
	if be == nil {
		t.Fatal("no backend")
	}
	be.DeclRange = hcl.Range{}
	if diff := cmp.Diff(want, be); diff != "" {
		t.Errorf("backend (-want +got):\n%s", diff)
	}
	if be, diags := LoadBackend(t.TempDir()); be != nil || diags.HasErrors() {
		t.Errorf("LoadBackend of an empty directory = %v, %v", be, diags)
	}
}

func TestSensitiveArguments(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.sky.hcl": `
variable "token" {
  type      = string
  sensitive = true
}
variable "all" {
  type      = map(string)
  sensitive = true
  default   = { A = "1" }
}
variable "cpus" {
  type      = number
  sensitive = true
  default   = 2
}
image "a" {
  env   = { TOKEN = var.token, PLAIN = "x" }
  setup = ["echo hi", "login ${var.token}"]
  apt   = ["jq"]
}
image "b" {
  env = var.all
}
pool "p" {
  image = image.a
  vcpus = var.cpus
}
`})
	cfg, diags := Load(dir, LoadOptions{Vars: []string{"token=s3cret"}})
	failOnDiags(t, cfg, diags)
	tests := map[string]struct {
		got, want [][]string
	}{
		"map key and list index": {cfg.Images["a"].Sensitive, [][]string{{"env", "TOKEN"}, {"setup", "1"}}},
		"whole value":            {cfg.Images["b"].Sensitive, [][]string{{"env"}}},
		"pool argument":          {cfg.Pools["p"].Sensitive, [][]string{{"vcpus"}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sortPaths := cmpopts.SortSlices(func(a, b []string) bool { return strings.Join(a, ".") < strings.Join(b, ".") })
			if diff := cmp.Diff(tc.want, tc.got, sortPaths); diff != "" {
				t.Errorf("sensitive paths (-want +got):\n%s", diff)
			}
		})
	}
	// The decoded values themselves are plain, for the bootstrap to use.
	if got := cfg.Images["a"].Env["TOKEN"]; got != "s3cret" {
		t.Errorf("env TOKEN = %q", got)
	}
}

// TestManyLocals: evaluating locals costs time in proportion to their
// number, not its square (20,000 took a minute when every expression saw
// a fresh object of all locals).
func TestManyLocals(t *testing.T) {
	const n = 20000
	var b strings.Builder
	b.WriteString("locals {\n  l0 = 1\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "  l%d = local.l%d + 1\n", i, i-1)
	}
	b.WriteString("}\n")
	dir := writeConfig(t, map[string]string{"main.sky.hcl": b.String()})
	start := time.Now()
	cfg, diags := Load(dir, LoadOptions{})
	failOnDiags(t, cfg, diags)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("%d locals took %s", n, took)
	}
	if got := cfg.Locals[fmt.Sprintf("l%d", n-1)]; !got.RawEquals(cty.NumberIntVal(n)) {
		t.Errorf("last local = %#v", got)
	}
}
