package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skyward-sh/skyward/cli"
	"github.com/skyward-sh/skyward/internal/skytest"
	"github.com/skyward-sh/skyward/planner"
	"github.com/skyward-sh/skyward/state"
)

// TestBadInput runs skyward on input a hostile or careless user gives it:
// each case exits 1 with a message saying what is wrong, and nothing is
// created: no state, no keys (so no provider object either, since the
// state is written before anything is created).
func TestBadInput(t *testing.T) {
	const pool = `pool "dev" {}` + "\n"
	task := func(body string) string { return pool + "task \"t\" {\n  pool = pool.dev\n" + body + "\n}\n" }
	tests := map[string]struct {
		files map[string]string
		setup func(t *testing.T, dir string) // extra files, made in Go
		args  []string
		want  string
	}{
		"too many nodes": {files: map[string]string{"main.sky.hcl": `pool "dev" { nodes = 1e9 }`},
			want: `The value of "nodes" must be at most 1000; got 1000000000.`},
		"count beyond the limit": {files: map[string]string{"main.sky.hcl": task(`  count = 1e12` + "\n" + `  run = "true"`)},
			want: `The value of "count" must be at most 10000; got 1000000000000.`},
		"for_each beyond the limit": {files: map[string]string{"main.sky.hcl": task(`  for_each = flatten([for i in range(11) : range(1000)])` + "\n" + `  run = "true"`)},
			want: "The for_each of a task may have at most 10000 items; got 11000."},
		"malformed exclude": {files: map[string]string{"main.sky.hcl": `image "i" { excludes = ["["] }`},
			want: `The exclude pattern "[" is malformed`},
		"apt option": {files: map[string]string{"main.sky.hcl": `image "i" { apt = ["-oAPT::Get::Foo=1"] }`},
			want: `apt-get would read it as an option`},
		"pip option": {files: map[string]string{"main.sky.hcl": `image "i" { pip = ["--index-url=http://x"] }`},
			want: `pip would read it as an option`},
		"env name with =": {files: map[string]string{"main.sky.hcl": `image "i" { env = { "F=G" = "x" } }`},
			want: `The name "F=G" in "env" cannot be an environment variable`},
		"empty env name": {files: map[string]string{"main.sky.hcl": task(`  run = "true"` + "\n" + `  env = { "" = "x" }`)},
			want: `The name "" in "env" cannot be an environment variable`},
		"empty run": {files: map[string]string{"main.sky.hcl": task(`  run = ""`)},
			want: `The run script of task "t" is empty`},
		"empty command": {files: map[string]string{"main.sky.hcl": task(`  command = [""]`)},
			want: "The first element of command, the program to run, is empty."},
		"a directory named like a file": {files: map[string]string{"main.sky.hcl": pool},
			setup: func(t *testing.T, dir string) { os.Mkdir(filepath.Join(dir, "more.sky.hcl"), 0o755) },
			want:  `"more.sky.hcl" in`},
		"pool name not a hostname": {files: map[string]string{"main.sky.hcl": `pool "données" {}`},
			want: `The pool name "données" cannot name nodes`},
		"pool name too long": {files: map[string]string{"main.sky.hcl": `pool "` + strings.Repeat("p", 41) + `" {}`},
			want: "have at most 40 characters"},
		"vcpus below the minimum": {files: map[string]string{"main.sky.hcl": `pool "dev" { vcpus = 0.001 }`},
			want: `The value of "vcpus" must be 0 (no limit) or at least 0.01; got 0.001.`},
		"memory below the minimum": {files: map[string]string{"main.sky.hcl": `pool "dev" { memory_gb = 0.001 }`},
			want: `The value of "memory_gb" must be 0 (no limit) or at least 0.015625 (16 MiB); got 0.001.`},
		"brackets nested 100000 deep": {files: map[string]string{"main.sky.hcl": "locals {\n  x = " + strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000) + "\n}\n"},
			want: "Expression nested too deeply"},
		"file() of a device": {files: map[string]string{"main.sky.hcl": `locals { x = file("/dev/zero") }`},
			want: `"/dev/zero" is not a regular file`},
		"file() of a huge file": {files: map[string]string{"main.sky.hcl": `locals { x = file("big") }`},
			setup: func(t *testing.T, dir string) {
				f, err := os.Create(filepath.Join(dir, "big"))
				if err != nil {
					t.Fatal(err)
				}
				f.Truncate(1 << 30)
				f.Close()
			},
			want: "more than the 16777216 a configuration may read"},
		"the engine's host network": {files: map[string]string{"main.sky.hcl": `provider "container" { network = "host" }` + "\n" + pool},
			want: `network = "host" is the engine's own`},
		"aws region that is none": {files: map[string]string{"main.sky.hcl": `provider "aws" { region = "mars" }` + "\n" + `pool "dev" { provider = aws }`},
			want: `aws provider: region = "mars" is not an AWS region name (such as "us-east-1")`},
		"aws ssh_cidr not a block": {files: map[string]string{"main.sky.hcl": `provider "aws" { ssh_cidr = "my laptop" }` + "\n" + `pool "dev" { provider = aws }`},
			want: `aws provider: ssh_cidr = "my laptop" is not an IPv4 CIDR block`},
		"aws ssh_address": {files: map[string]string{"main.sky.hcl": `provider "aws" { ssh_address = "elastic" }` + "\n" + `pool "dev" { provider = aws }`},
			want: `aws provider: ssh_address = "elastic"; use "public" or "private"`},
		"parallelism 0": {files: map[string]string{"main.sky.hcl": pool}, args: []string{"apply", "-auto-approve", "-parallelism=0"},
			want: "invalid -parallelism=0: it must be at least 1"},
		"plan file edited by hand": {files: map[string]string{"main.sky.hcl": pool},
			setup: func(t *testing.T, dir string) {
				editPlan(t, dir, false, func(c map[string]any) { c["after"].(map[string]any)["memory_gb"] = "lots" })
			},
			args: []string{"apply", "$DIR/tfplan"}, want: "checksum does not match"},
		"plan file with an unknown action": {files: map[string]string{"main.sky.hcl": pool},
			setup: func(t *testing.T, dir string) { editPlan(t, dir, true, func(c map[string]any) { c["action"] = 65 }) },
			args:  []string{"apply", "$DIR/tfplan"}, want: `unknown action "A"`},
		"plan file with a wrong-typed attribute": {files: map[string]string{"main.sky.hcl": pool},
			setup: func(t *testing.T, dir string) {
				editPlan(t, dir, true, func(c map[string]any) { c["after"].(map[string]any)["memory_gb"] = "lots" })
			},
			args: []string{"apply", "$DIR/tfplan"}, want: `attribute "memory_gb": want a number, got a string`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for n, src := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, n), []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			args := []string{"apply", "-auto-approve"}
			if tc.args != nil {
				args = nil
				for _, a := range tc.args {
					args = append(args, strings.ReplaceAll(a, "$DIR", dir))
				}
			}
			var stdout, stderr bytes.Buffer
			code := cli.Run(append([]string{"-chdir=" + dir}, args...), strings.NewReader(""), &stdout, &stderr)
			if code != 1 {
				t.Errorf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
			}
			// Diagnostics wrap their detail at the terminal's width.
			flat := strings.Join(strings.Fields(stderr.String()), " ")
			if !strings.Contains(flat, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr.String())
			}
			for _, p := range []string{".skyward/state.json", ".skyward/keys"} {
				if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
					t.Errorf("%s was created", p)
				}
			}
		})
	}
}

// editPlan writes dir/tfplan, a plan to create pool.dev with one node, with
// edit applied to the node's change; resum makes the checksum match again
// (someone who knows the format).
func editPlan(t *testing.T, dir string, resum bool, edit func(change map[string]any)) {
	t.Helper()
	p, err := planner.Build(skytest.Config(1, 1, "img:1"), state.New("lineage-1"), skytest.Registry(), planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tfplan")
	if err := planner.WritePlanFile(path, dir, p); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	plan := f["plan"].(map[string]any)
	for _, c := range plan["changes"].([]any) {
		if c := c.(map[string]any); c["address"] == "pool.dev.node[0]" {
			edit(c)
		}
	}
	if resum {
		// Through the package's own writer: decode the edited plan
		// without validating it and write it again.
		raw, _ := json.Marshal(plan)
		var edited planner.Plan
		if err := json.Unmarshal(raw, &edited); err != nil {
			// A wrong-typed attribute still decodes (attributes are any).
			t.Fatal(err)
		}
		if err := planner.WritePlanFile(path, dir, &edited); err != nil {
			t.Fatal(err)
		}
		return
	}
	out, _ := json.Marshal(f)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}
