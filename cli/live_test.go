package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skyward-sh/skyward/executor"
	"github.com/skyward-sh/skyward/planner"
)

func TestLiveViewFrames(t *testing.T) {
	var out bytes.Buffer
	m := &Meta{Stdout: &out, Stderr: &out}
	v := newLiveView(&humanView{m: m, w: &out, running: map[string]time.Time{}, stop: make(chan struct{})})
	clock := time.Unix(1000, 0)
	v.now = func() time.Time { return clock }
	zero, one := 0, 1
	v.Plan(&planner.Plan{Changes: []*planner.Change{
		{Address: "pool.dev", Type: "pool", Pool: "dev", Action: planner.Create},
		{Address: "pool.dev.node[0]", Type: "node", Pool: "dev", Index: &zero, Action: planner.Create},
		{Address: "pool.dev.node[1]", Type: "node", Pool: "dev", Index: &one, Action: planner.Create},
	}})
	out.Reset()

	v.Event(executor.Event{Type: executor.ApplyStart, Address: "pool.dev", Op: planner.OpCreate})
	clock = clock.Add(300 * time.Millisecond)
	v.Event(executor.Event{Type: executor.ApplyComplete, Address: "pool.dev", Op: planner.OpCreate, ID: "net1234567890abc"})
	v.Event(executor.Event{Type: executor.ApplyStart, Address: "pool.dev.node[0]", Op: planner.OpCreate})
	v.Event(executor.Event{Type: executor.NodePhase, Address: "pool.dev.node[0]", Phase: "connecting"})
	v.Event(executor.Event{Type: executor.ApplyStart, Address: "pool.dev.node[1]", Op: planner.OpCreate})
	clock = clock.Add(2 * time.Second)
	v.Event(executor.Event{Type: executor.ApplyErrored, Address: "pool.dev.node[1]", Op: planner.OpCreate, Err: errors.New("boom")})

	want := []string{
		"  pool.dev          ready                       300ms  id=net123456789",
		"  pool.dev.node[0]  connecting                     2s",
		"  pool.dev.node[1]  failed                         2s",
	}
	if diff := cmp.Diff(want, v.frame()); diff != "" {
		t.Errorf("frame (-want +got):\n%s", diff)
	}
	// Each redraw moves the cursor back over the previous frame.
	if !strings.Contains(out.String(), "\x1b[3A") {
		t.Errorf("redraw does not move the cursor up over the last frame: %q", out.String())
	}
	v.ApplyDone("apply", 1, 0, 0)
	if !strings.HasSuffix(out.String(), "Apply complete! Resources: 1 added, 0 changed, 0 destroyed.\n") {
		t.Errorf("summary not printed last: %q", out.String())
	}
}
