package batch

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestWaiterPollsTogether: ids waited for at once are read by one poll;
// each waiter gets its own object once it settles.
func TestWaiterPollsTogether(t *testing.T) {
	var mu sync.Mutex
	var polls [][]string
	w := &Waiter[int]{
		Poll: func(ids []string) (map[string]int, error) {
			mu.Lock()
			defer mu.Unlock()
			polls = append(polls, slices.Sorted(slices.Values(ids)))
			n := len(polls)
			// Every object reads as the number of polls so far.
			return map[string]int{"a": n, "b": n, "c": n}, nil
		},
		Settled: func(v int, found bool, _ time.Duration) bool { return found && v >= 2 },
		First:   200 * time.Millisecond, Max: 200 * time.Millisecond,
	}
	chans := map[string]chan Result[int]{}
	for _, id := range []string{"a", "b", "c"} {
		chans[id] = w.Add(id, time.Now())
	}
	for id, ch := range chans {
		r := <-ch
		if r.Err != nil || !r.Found || r.Value != 2 {
			t.Errorf("%s: %+v, want the second poll's 2", id, r)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i, p := range polls {
		if !slices.Equal(p, []string{"a", "b", "c"}) {
			t.Errorf("poll %d read %v, want all three", i+1, p)
		}
	}
	if len(polls) != 2 {
		t.Errorf("%d polls, want 2", len(polls))
	}
}

// TestWaiterNotFound: an id the poll does not return settles when
// Settled says so, measured from the wait's start.
func TestWaiterNotFound(t *testing.T) {
	w := &Waiter[int]{
		Poll:    func([]string) (map[string]int, error) { return nil, nil },
		Settled: func(_ int, found bool, waited time.Duration) bool { return found || waited > time.Hour },
		First:   time.Millisecond, Max: time.Millisecond,
	}
	// Waiting since long ago: settles at the first poll.
	if r := <-w.Add("old", time.Time{}); r.Found || r.Err != nil {
		t.Errorf("an id waited for since long ago: %+v", r)
	}
	// Waiting from now: not settled, and a waiter that gives up leaves.
	ch := w.Add("new", time.Now())
	select {
	case r := <-ch:
		t.Fatalf("an id missing for a moment settled: %+v", r)
	case <-time.After(20 * time.Millisecond):
	}
	w.Remove("new", ch)
	if left := waiting(w); left != 0 {
		t.Errorf("%d ids still waited for after Remove", left)
	}
}

// TestWaiterPollError: a failed poll settles every waiter with its error.
func TestWaiterPollError(t *testing.T) {
	boom := errors.New("throttled")
	w := &Waiter[int]{
		Poll:    func([]string) (map[string]int, error) { return nil, boom },
		Settled: func(int, bool, time.Duration) bool { return false },
		First:   time.Millisecond, Max: time.Millisecond,
	}
	a, b := w.Add("a", time.Now()), w.Add("b", time.Now())
	for _, ch := range []chan Result[int]{a, b} {
		if r := <-ch; !errors.Is(r.Err, boom) {
			t.Errorf("after a failed poll: %+v, want its error", r)
		}
	}
}

// TestWaiterNext: Next returns the settling poll's result, and a wait cut
// short by its context leaves nothing waited for.
func TestWaiterNext(t *testing.T) {
	w := &Waiter[int]{
		Poll:    func([]string) (map[string]int, error) { return map[string]int{"a": 7}, nil },
		Settled: func(_ int, found bool, _ time.Duration) bool { return found },
		First:   time.Millisecond, Max: time.Millisecond,
	}
	if r, err := w.Next(context.Background(), "a", time.Now()); err != nil || !r.Found || r.Value != 7 {
		t.Errorf("Next(a) = %+v, %v; want 7", r, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := w.Next(ctx, "missing", time.Now()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next of an id never settled: %v, want the context's error", err)
	}
	if left := waiting(w); left != 0 {
		t.Errorf("%d ids still waited for after Next gave up", left)
	}
}

// waiting is how many ids w waits for.
func waiting[T any](w *Waiter[T]) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.waiting)
}
