package planner

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skyward-sh/skyward/internal/skytest"
)

// planFileJSON writes a fresh plan (of a pool applied once, scaled to two
// nodes) and returns the file's JSON as a map, to be edited.
func planFileJSON(t *testing.T) map[string]any {
	t.Helper()
	p, err := Build(skytest.Config(2, 1, "img:1"), applied(t, skytest.Config(1, 1, "img:1")), skytest.Registry(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "plan")
	if err := WritePlanFile(path, "/dir", p); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// encode writes the edited file, with a checksum that matches when
// resum is set (an edit made by someone who knows the format).
func encode(t *testing.T, m map[string]any, resum bool) []byte {
	t.Helper()
	if resum {
		plan, err := json.Marshal(m["plan"])
		if err != nil {
			t.Fatal(err)
		}
		if m["checksum"], err = planChecksum(plan); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// change returns the plan's change of addr in the edited file.
func change(m map[string]any, addr string) map[string]any {
	for _, c := range m["plan"].(map[string]any)["changes"].([]any) {
		if c := c.(map[string]any); c["address"] == addr {
			return c
		}
	}
	return nil
}

func TestPlanFileRefused(t *testing.T) {
	const node1 = "pool.dev.node[1]"
	tests := map[string]struct {
		edit  func(m map[string]any)
		resum bool
		want  string
	}{
		"edited without its checksum": {func(m map[string]any) { change(m, node1)["after"].(map[string]any)["memory_gb"] = 64 }, false,
			"checksum does not match"},
		"no checksum":    {func(m map[string]any) { delete(m, "checksum") }, false, "checksum does not match"},
		"unknown action": {func(m map[string]any) { change(m, node1)["action"] = 65 }, true, `pool.dev.node[1]: unknown action "A"`},
		"wrong-typed attribute": {func(m map[string]any) { change(m, node1)["after"].(map[string]any)["memory_gb"] = "lots" }, true,
			`pool.dev.node[1]: attribute "memory_gb": want a number, got a string`},
		"unknown attribute": {func(m map[string]any) { change(m, node1)["after"].(map[string]any)["privileged"] = true }, true,
			`unknown attribute "privileged"`},
		"unknown field": {func(m map[string]any) { change(m, node1)["surprise"] = 1 }, true, `unknown field "surprise"`},
		"address and index disagree": {func(m map[string]any) { change(m, node1)["index"] = 5 }, true,
			"index does not match the address"},
		"negative size": {func(m map[string]any) { change(m, node1)["after"].(map[string]any)["vcpus"] = -1 }, true,
			`attribute "vcpus": negative`},
		"provider missing": {func(m map[string]any) { m["plan"].(map[string]any)["providers"] = map[string]any{} }, true,
			`provider "container" is not in the plan's providers`},
		"bad prior state": {func(m map[string]any) {
			prior := m["plan"].(map[string]any)["prior_state"].(map[string]any)
			prior["resources"] = append(prior["resources"].([]any), prior["resources"].([]any)[0])
		}, true, "prior state: resource \"pool.dev\" appears twice"},
		"older format":   {func(m map[string]any) { m["format_version"] = 1 }, false, "written by an older skyward"},
		"not a plan":     {func(m map[string]any) { m["format"] = "tfplan" }, false, "not a skyward plan file"},
		"no plan inside": {func(m map[string]any) { m["plan"] = nil }, true, "holds no plan"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := planFileJSON(t)
			if _, err := DecodePlanFile(encode(t, m, false)); err != nil {
				t.Fatalf("unedited file refused: %v", err)
			}
			tc.edit(m)
			_, err := DecodePlanFile(encode(t, m, tc.resum))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}
