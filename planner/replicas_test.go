package planner

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skyward-sh/skyward/internal/skytest"
)

// A node recorded before pools had collections = { replicas } plans no
// change for the default; another replicas changes the nodes in place.
func TestReplicasChange(t *testing.T) {
	base := skytest.Config(3, 1, "img:1")
	old := applied(t, base)
	for _, r := range old.Resources {
		delete(r.Attributes, "replicas")
	}
	p, err := Build(base, old, skytest.Registry(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(p); len(got) != 0 {
		t.Errorf("a state from before replicas, default config: %v, want no changes", got)
	}

	three := skytest.Config(3, 1, "img:1")
	three.Pools["dev"].Replicas = 3
	for _, prior := range []string{"recorded", "not recorded"} {
		st := applied(t, base)
		if prior == "not recorded" {
			st = old
		}
		p, err := Build(three, st, skytest.Registry(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"pool.dev.node[0]": "update", "pool.dev.node[1]": "update", "pool.dev.node[2]": "update"}
		if diff := cmp.Diff(want, actions(p)); diff != "" {
			t.Errorf("replicas 1 -> 3, %s (-want +got):\n%s", prior, diff)
		}
	}
}
