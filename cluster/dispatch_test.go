package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skyward-sh/skyward/agent"
)

// fakeNodes runs jobs in memory: a job's request ID says what it does.
type fakeNodes struct {
	mu      sync.Mutex
	running map[int]int // by node
	peak    map[int]int
	ran     map[string][]int // nodes each request ID ran on
	// behave decides how a request ends on a node; nil exits 0.
	behave func(ctx context.Context, node int, req agent.ExecRequest) (*ExecExit, error)
}

func newFakeNodes() *fakeNodes {
	return &fakeNodes{running: map[int]int{}, peak: map[int]int{}, ran: map[string][]int{}}
}

func (f *fakeNodes) exec(ctx context.Context, w *Worker, req agent.ExecRequest, output func(stream, line string)) (*ExecExit, error) {
	f.mu.Lock()
	f.running[w.Node]++
	f.peak[w.Node] = max(f.peak[w.Node], f.running[w.Node])
	f.ran[req.ID] = append(f.ran[req.ID], w.Node)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running[w.Node]--
		f.mu.Unlock()
	}()
	output("stdout", fmt.Sprintf("%s on %d", req.ID, w.Node))
	if f.behave != nil {
		return f.behave(ctx, w.Node, req)
	}
	time.Sleep(time.Millisecond) // let slots fill up
	return &ExecExit{}, nil
}

func workers(slots ...int) []*Worker {
	ws := make([]*Worker, len(slots))
	for i, s := range slots {
		ws[i] = &Worker{Node: i, Slots: s}
	}
	return ws
}

func jobsOf(n int, pinned func(i int) int) []Job {
	jobs := make([]Job, n)
	for i := range jobs {
		id := fmt.Sprint(i)
		jobs[i] = Job{Node: pinned(i), Request: func(node int) agent.ExecRequest { return agent.ExecRequest{ID: id} }}
	}
	return jobs
}

func anyNode(int) int { return -1 }

// summary is each outcome in a word, in job order.
func summary(out []Outcome) []string {
	s := make([]string, len(out))
	for i, o := range out {
		switch {
		case o.Cancelled:
			s[i] = "cancelled"
		case o.Lost:
			s[i] = "lost"
		case o.Err != nil:
			s[i] = "error"
		default:
			s[i] = fmt.Sprintf("exit %d", o.Exit.ExitCode)
		}
	}
	return s
}

func TestDispatchSpreadsOverSlots(t *testing.T) {
	f := newFakeNodes()
	d := &Dispatcher{Workers: workers(2, 2, 2), exec: f.exec}
	out := d.Run(context.Background(), jobsOf(60, anyNode))
	per := map[int]int{}
	for i, o := range out {
		if o.Failed() || o.Attempts != 1 {
			t.Fatalf("job %d: %+v", i, o)
		}
		if want := fmt.Sprintf("%d on %d\n", i, o.Node); o.Stdout != want {
			t.Errorf("job %d stdout %q, want %q", i, o.Stdout, want)
		}
		per[o.Node]++
	}
	for node := range 3 {
		if per[node] < 10 {
			t.Errorf("node %d ran %d of 60 jobs; want them spread (%v)", node, per[node], per)
		}
		if f.peak[node] > 2 {
			t.Errorf("node %d ran %d jobs at once; it has 2 slots", node, f.peak[node])
		}
	}
}

func TestDispatchPinned(t *testing.T) {
	f := newFakeNodes()
	d := &Dispatcher{Workers: workers(1, 1, 1), exec: f.exec}
	out := d.Run(context.Background(), jobsOf(3, func(i int) int { return 2 - i }))
	for i, o := range out {
		if o.Node != 2-i || o.Failed() {
			t.Errorf("job %d ran on node %d (%+v), want node %d", i, o.Node, o, 2-i)
		}
	}
}

func TestDispatchLost(t *testing.T) {
	lostOn1 := func(ctx context.Context, node int, req agent.ExecRequest) (*ExecExit, error) {
		if node == 1 {
			return nil, fmt.Errorf("node 1: %w", ErrLost)
		}
		return &ExecExit{}, nil
	}
	tests := map[string]struct {
		retries  int
		pinned   func(int) int
		want     []string
		attempts int
	}{
		"no retries":          {retries: 0, pinned: func(int) int { return 1 }, want: []string{"lost"}, attempts: 1},
		"retried elsewhere":   {retries: 1, pinned: anyNode, want: []string{"exit 0"}, attempts: 2},
		"pinned not retried":  {retries: 3, pinned: func(int) int { return 1 }, want: []string{"lost"}, attempts: 1},
		"pinned to dead node": {retries: 0, pinned: func(i int) int { return 1 - i }, want: []string{"lost", "exit 0"}, attempts: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeNodes()
			f.behave = lostOn1
			ws := workers(1, 1)
			// Start the search at node 1, so that a job that may run
			// anywhere is tried there first.
			d := &Dispatcher{Workers: ws, Retries: tc.retries, exec: f.exec}
			d.Workers = []*Worker{ws[1], ws[0]}
			out := d.Run(context.Background(), jobsOf(len(tc.want), tc.pinned))
			if diff := cmp.Diff(tc.want, summary(out)); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
			if out[0].Attempts != tc.attempts {
				t.Errorf("job 0 started %d times, want %d", out[0].Attempts, tc.attempts)
			}
			for _, o := range out {
				if o.Lost && !errors.Is(o.Err, ErrLost) {
					t.Errorf("lost job's error %v does not wrap ErrLost", o.Err)
				}
			}
		})
	}
}

func TestDispatchUnreachableWorker(t *testing.T) {
	f := newFakeNodes()
	ws := workers(1, 1)
	ws[1].Err = errors.New("connect: connection refused")
	d := &Dispatcher{Workers: ws, exec: f.exec}
	out := d.Run(context.Background(), jobsOf(3, func(i int) int { return []int{0, 1, -1}[i] }))
	if diff := cmp.Diff([]string{"exit 0", "lost", "exit 0"}, summary(out)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if out[2].Node != 0 {
		t.Errorf("free job ran on node %d, want 0", out[2].Node)
	}
	if !errors.Is(out[1].Err, ErrLost) {
		t.Errorf("error %v does not wrap ErrLost", out[1].Err)
	}
}

func TestDispatchFailFast(t *testing.T) {
	// Node 1 fails at once; the others wait until they are cancelled.
	behave := func(ctx context.Context, node int, req agent.ExecRequest) (*ExecExit, error) {
		if node == 1 {
			return &ExecExit{ExitCode: 3}, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
			return &ExecExit{}, nil
		}
	}
	tests := map[string]struct {
		failFast bool
		want     []string
	}{
		"fail fast":    {true, []string{"cancelled", "exit 3", "cancelled"}},
		"run them all": {false, []string{"exit 0", "exit 3", "exit 0"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFakeNodes()
			f.behave = behave
			d := &Dispatcher{Workers: workers(1, 1, 1), FailFast: tc.failFast, exec: f.exec}
			out := d.Run(context.Background(), jobsOf(3, func(i int) int { return i }))
			if diff := cmp.Diff(tc.want, summary(out)); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDispatchCancel(t *testing.T) {
	f := newFakeNodes()
	started := make(chan struct{}, 10)
	f.behave = func(ctx context.Context, node int, req agent.ExecRequest) (*ExecExit, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		<-started
		cancel()
	}()
	d := &Dispatcher{Workers: workers(1, 1), exec: f.exec}
	out := d.Run(ctx, jobsOf(5, anyNode))
	if diff := cmp.Diff([]string{"cancelled", "cancelled", "cancelled", "cancelled", "cancelled"}, summary(out)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if n := len(f.ran); n != 2 {
		t.Errorf("%d jobs started, want 2 (one per slot) before the cancel", n)
	}
}
