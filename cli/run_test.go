package cli

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"

	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/state"
)

func TestResultJSON(t *testing.T) {
	str := func(s string) *string { return &s }
	tests := map[string]struct {
		in   *string
		want string
	}{
		"none":           {nil, `null`},
		"number":         {str("1225\n"), `1225`},
		"object":         {str(`{"a": [1, 2]}`), `{"a": [1, 2]}`},
		"text":           {str("it works\n"), `"it works"`},
		"text two lines": {str("a\nb\n"), `"a\nb"`},
		"empty":          {str(""), `""`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := string(resultJSON(tc.in)); got != tc.want {
				t.Errorf("resultJSON = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestEnvString(t *testing.T) {
	tests := map[string]struct {
		v    cty.Value
		want string
	}{
		"string":  {cty.StringVal("0.1"), "0.1"},
		"integer": {cty.NumberIntVal(3), "3"},
		"float":   {cty.NumberFloatVal(0.01), "0.01"},
		"bool":    {cty.True, "true"},
		"object":  {cty.ObjectVal(map[string]cty.Value{"lr": cty.NumberFloatVal(0.5)}), `{"lr":0.5}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			enc, err := ctyJSON(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if got := envString(tc.v, enc); got != tc.want {
				t.Errorf("envString = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReportExitCode(t *testing.T) {
	code := func(c int) *int { return &c }
	tests := map[string]struct {
		execs []runExecution
		want  int
	}{
		"all ok":             {[]runExecution{{ExitCode: code(0)}, {ExitCode: code(0)}}, 0},
		"highest":            {[]runExecution{{ExitCode: code(3)}, {ExitCode: code(0)}, {ExitCode: code(124)}}, 124},
		"lost counts as 1":   {[]runExecution{{ExitCode: code(0)}, {Lost: true}}, 1},
		"cancelled is no":    {[]runExecution{{ExitCode: code(2)}, {Cancelled: true}}, 2},
		"only cancellations": {[]runExecution{{Cancelled: true}}, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := reportExitCode(&runReport{Executions: tc.execs}); got != tc.want {
				t.Errorf("exit code %d, want %d", got, tc.want)
			}
		})
	}
}

func TestTaskJobs(t *testing.T) {
	pool := &hclspec.Pool{Name: "dev", Nodes: 3}
	nodes := make([]*state.Resource, 3)
	for i := range nodes {
		nodes[i] = &state.Resource{Attributes: map[string]any{"private_ip": []string{"10.0.0.2", "10.0.0.3", "10.0.0.4"}[i]}}
	}
	items := make([]cty.Value, 7)
	for i := range items {
		items[i] = cty.NumberIntVal(int64(i))
	}
	t.Run("shard", func(t *testing.T) {
		task := &hclspec.Task{Name: "sum", Mode: "broadcast", Run: "true", Shard: items, HasShard: true, Env: map[string]string{"SKYWARD_NODE": "9", "A": "b"}}
		jobs, keys, err := taskJobs(task, pool, nodes)
		if err != nil {
			t.Fatal(err)
		}
		var shards []string
		for i, j := range jobs {
			if j.Node != i || string(keys[i]) != "null" {
				t.Errorf("job %d pinned to %d, key %s", i, j.Node, keys[i])
			}
			req := j.Request(i)
			shards = append(shards, string(req.Shard))
			env := req.Env
			if env["SKYWARD_NODE"] != []string{"0", "1", "2"}[i] || env["A"] != "b" || env["SKYWARD_SHARD_COUNT"] != "3" {
				t.Errorf("job %d env %v", i, env)
			}
			if env["SKYWARD_HEAD_ADDR"] != "10.0.0.2" || env["SKYWARD_NODE_IPS"] != "10.0.0.2\n10.0.0.3\n10.0.0.4" {
				t.Errorf("job %d addresses %q %q", i, env["SKYWARD_HEAD_ADDR"], env["SKYWARD_NODE_IPS"])
			}
			var facts map[string]any
			if err := json.Unmarshal([]byte(env["COMPUTE_POOL"]), &facts); err != nil || facts["node"] != float64(i) || facts["is_head"] != (i == 0) {
				t.Errorf("job %d COMPUTE_POOL %s (%v)", i, env["COMPUTE_POOL"], err)
			}
		}
		if diff := cmp.Diff([]string{"[0,3,6]", "[1,4]", "[2,5]"}, shards); diff != "" {
			t.Errorf("shards (-want +got):\n%s", diff)
		}
	})
	t.Run("for_each over a map", func(t *testing.T) {
		task := &hclspec.Task{Name: "grid", Run: "true", HasForEach: true, ForEach: []hclspec.EachItem{
			{Key: cty.StringVal("a"), Value: cty.NumberFloatVal(0.1)},
			{Key: cty.StringVal("b"), Value: cty.StringVal("x")},
		}}
		jobs, keys, err := taskJobs(task, pool, nodes)
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 2 || jobs[0].Node != -1 || string(keys[0]) != `"a"` || string(keys[1]) != `"b"` {
			t.Fatalf("jobs %+v keys %s", jobs, keys)
		}
		env := jobs[1].Request(2).Env
		if env["SKYWARD_EACH_KEY"] != "b" || env["SKYWARD_EACH_VALUE"] != "x" || env["SKYWARD_NODE"] != "2" {
			t.Errorf("env %v", env)
		}
		if a, b := jobs[0].Request(0).ID, jobs[1].Request(0).ID; a == b {
			t.Errorf("two executions share the id %q", a)
		}
	})
	t.Run("target", func(t *testing.T) {
		for target, want := range map[string]int{"": -1, "head": 0, "2": 2} {
			jobs, _, err := taskJobs(&hclspec.Task{Name: "one", Run: "true", Target: target}, pool, nodes)
			if err != nil || len(jobs) != 1 || jobs[0].Node != want {
				t.Errorf("target %q: jobs %+v, err %v; want one pinned to %d", target, jobs, err, want)
			}
		}
		if _, _, err := taskJobs(&hclspec.Task{Name: "one", Run: "true", Target: "3"}, pool, nodes); err == nil {
			t.Error("target 3 of 3 nodes: no error")
		}
	})
}

func TestPickBaseImage(t *testing.T) {
	tests := map[string]struct {
		local []string
		want  string
	}{
		"none":                  {local: nil, want: ""},
		"test base image first": {local: []string{"ubuntu:24.04", "skyward-test-base:bookworm-1", "skyward-test-base:bookworm-0"}, want: "skyward-test-base:bookworm-1"},
		"ubuntu 24.04 next":     {local: []string{"debian:12", "ubuntu:22.04", "ubuntu:24.04"}, want: "ubuntu:24.04"},
		"any ubuntu or debian":  {local: []string{"alpine:3", "debian:12", "ubuntu:22.04"}, want: "debian:12"},
		"nothing that fits":     {local: []string{"alpine:3", "skyward-baked:abc"}, want: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := pickBaseImage(tc.local); got != tc.want {
				t.Errorf("pickBaseImage(%q) = %q, want %q", tc.local, got, tc.want)
			}
		})
	}
}
