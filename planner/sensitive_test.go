package planner

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/internal/skytest"
	"github.com/skyward-sh/skyward/state"
)

// secretConfig is a pool whose image env holds a sensitive value.
func secretConfig(secret string) *hclspec.Config {
	cfg := skytest.Config(1, 1, "img:1")
	cfg.Images = map[string]*hclspec.Image{"py": {
		Name:      "py",
		Env:       map[string]string{"TOKEN": secret, "PLAIN": "visible"},
		Setup:     []string{"echo hi", "login " + secret},
		Sensitive: [][]string{{"env", "TOKEN"}, {"setup", "1"}},
	}}
	cfg.Pools["dev"].Image = "py"
	return cfg
}

// appliedSensitive is applied with the sensitive paths recorded as the
// executor records them.
func appliedSensitive(t testing.TB, cfg *hclspec.Config) *state.State {
	st := applied(t, cfg)
	p, err := Build(cfg, state.New("x"), skytest.Registry(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Changes {
		st.Get(c.Address).Sensitive = c.Sensitive
	}
	return st
}

func TestSensitiveValuesHidden(t *testing.T) {
	const old, new = "hunter2-old", "hunter2-new"
	tests := map[string]struct {
		prior      func(t *testing.T) *state.State
		cfg        *hclspec.Config
		opts       Options
		action     string
		wantHuman  []string
		afterShape map[string]any
	}{
		"create": {
			prior:     func(t *testing.T) *state.State { return state.New("l") },
			cfg:       secretConfig(new),
			action:    "create",
			wantHuman: []string{`TOKEN = (sensitive value)`, `PLAIN = "visible"`, `["echo hi", (sensitive value)]`},
			afterShape: map[string]any{
				"env": map[string]any{"TOKEN": true}, "setup": []any{false, true},
			},
		},
		"a changed secret is still a change": {
			prior:     func(t *testing.T) *state.State { return appliedSensitive(t, secretConfig(old)) },
			cfg:       secretConfig(new),
			action:    "replace",
			wantHuman: []string{"# (a sensitive value changed)", "# forces replacement", "Plan: 1 to add, 0 to change, 1 to destroy."},
			afterShape: map[string]any{
				"env": map[string]any{"TOKEN": true}, "setup": []any{false, true},
			},
		},
		"destroy": {
			prior:      func(t *testing.T) *state.State { return appliedSensitive(t, secretConfig(old)) },
			cfg:        secretConfig(old),
			opts:       Options{Destroy: true},
			action:     "delete",
			wantHuman:  []string{`TOKEN = (sensitive value)`},
			afterShape: map[string]any{},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := Build(tc.cfg, tc.prior(t), skytest.Registry(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			c := p.Change("pool.dev.node[0]")
			if c == nil || c.Action.String() != tc.action {
				t.Fatalf("node change = %+v, want %s", c, tc.action)
			}
			var human bytes.Buffer
			p.Render(&human, Colors{})
			b, err := json.Marshal(p.JSON("test"))
			if err != nil {
				t.Fatal(err)
			}
			for what, out := range map[string]string{"human": human.String(), "json": string(b)} {
				if strings.Contains(out, old) || strings.Contains(out, new) {
					t.Errorf("%s output shows the secret:\n%s", what, out)
				}
			}
			for _, want := range tc.wantHuman {
				if !strings.Contains(human.String(), want) {
					t.Errorf("human output lacks %q:\n%s", want, human.String())
				}
			}
			var js JSONPlan
			if err := json.Unmarshal(b, &js); err != nil {
				t.Fatal(err)
			}
			for _, rc := range js.ResourceChanges {
				if rc.Address != "pool.dev.node[0]" {
					continue
				}
				if diff := cmp.Diff(tc.afterShape, rc.Change.AfterSensitive); diff != "" {
					t.Errorf("after_sensitive (-want +got):\n%s", diff)
				}
				if tc.action != "create" {
					want := map[string]any{"env": map[string]any{"TOKEN": true}, "setup": []any{false, true}}
					if diff := cmp.Diff(want, rc.Change.BeforeSensitive); diff != "" {
						t.Errorf("before_sensitive (-want +got):\n%s", diff)
					}
				}
			}
		})
	}
}

func TestStateJSONHidesSensitive(t *testing.T) {
	st := appliedSensitive(t, secretConfig("hunter2"))
	b, err := json.Marshal(StateJSON(st))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "hunter2") {
		t.Errorf("state JSON shows the secret: %s", b)
	}
	if !strings.Contains(string(b), `"sensitive_values":{"env":{"TOKEN":true},"setup":[false,true]}`) {
		t.Errorf("state JSON lacks sensitive_values: %s", b)
	}
}
