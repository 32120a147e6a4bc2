package executor

import (
	"testing"

	"github.com/skyward-sh/skyward/state"
)

type discardState struct{ writes int }

func (d *discardState) Write(*state.State) error { d.writes++; return nil }

// A step waiting for another's resource (a worker for its head's address)
// wakes on the save that records it, not on a timer.
func TestChangesClosedBySave(t *testing.T) {
	ws := &discardState{}
	w := &walk{e: &Executor{State: ws}, st: state.New("l")}
	ch := w.changes()
	if ch2 := w.changes(); ch2 != ch {
		t.Fatal("two calls before a save returned different channels")
	}
	select {
	case <-ch:
		t.Fatal("closed before any save")
	default:
	}
	if err := w.save(func(st *state.State) { st.Set(&state.Resource{Address: "pool.p.node[0]"}) }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("a save did not close the channel taken before it")
	}
	next := w.changes()
	select {
	case <-next:
		t.Fatal("the channel after the save is already closed")
	default:
	}
	if ws.writes != 1 {
		t.Fatalf("state written %d times, want 1", ws.writes)
	}
}
