package planner

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skyward-sh/skyward/internal/skytest"
	"github.com/skyward-sh/skyward/state"
)

func TestOptionsNamingNothing(t *testing.T) {
	cfg := skytest.Config(2, 1, "img:1")
	tests := map[string]struct {
		opts Options
		want []string
	}{
		"replace of a node beyond the pool": {Options{Replace: []string{"pool.dev.node[7]"}},
			[]string{"-replace=pool.dev.node[7] names no existing resource (it is neither in the configuration nor in the state), so it replaces nothing."}},
		"replace of a pool not in state": {Options{Replace: []string{"pool.dev"}},
			[]string{"-replace=pool.dev names no existing resource (it is not in the state), so it replaces nothing."}},
		"target of an undeclared pool": {Options{Targets: []string{"pool.nope"}},
			[]string{"-target=pool.nope matches no resource in the configuration or the state, so the plan has no changes for it."}},
		"a target that matches": {Options{Targets: []string{"dev/1"}}, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			prior := state.New("l")
			if name == "replace of a node beyond the pool" {
				prior = applied(t, cfg)
			}
			p, err := Build(cfg, prior, skytest.Registry(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, p.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			var b bytes.Buffer
			p.Render(&b, Colors{})
			for _, w := range tc.want {
				if !strings.Contains(b.String(), "Warning: "+w) {
					t.Errorf("render lacks the warning:\n%s", b.String())
				}
			}
		})
	}
}

// TestDestroyGone: a destroy plan deletes what refresh found gone, so that
// it leaves the state; other plans create it again instead.
func TestDestroyGone(t *testing.T) {
	cfg := skytest.Config(1, 1, "img:1")
	st := applied(t, cfg)
	gone := append([]*state.Resource(nil), st.Resources...)
	refreshed := state.New(st.Lineage)
	p, err := Build(cfg, refreshed, skytest.Registry(), Options{Destroy: true, Gone: gone})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"pool.dev": "delete", "pool.dev.node[0]": "delete"}
	if diff := cmp.Diff(want, actions(p)); diff != "" {
		t.Errorf("destroy (-want +got):\n%s", diff)
	}
	if got := p.Summary(); got != "Plan: 0 to add, 0 to change, 2 to destroy." {
		t.Errorf("summary %q", got)
	}
	p, err = Build(cfg, refreshed, skytest.Registry(), Options{Gone: gone})
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]string{"pool.dev": "create", "pool.dev.node[0]": "create"}
	if diff := cmp.Diff(want, actions(p)); diff != "" {
		t.Errorf("apply (-want +got):\n%s", diff)
	}
}
