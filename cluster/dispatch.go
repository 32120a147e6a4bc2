package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/skyward-sh/skyward/agent"
)

// Worker is a node that executions are dispatched to.
type Worker struct {
	Node   int // the node's index in its pool
	Slots  int // executions it runs at once (the pool's concurrency)
	Client *Client
	Token  string // the pool's secret, which the agent asks for
	// Err, when set, says why the node cannot be reached: nothing is
	// dispatched to it, and the jobs pinned to it are lost with Err.
	Err error
}

// Job is one execution to dispatch.
type Job struct {
	// Node pins the job to the worker of that node index; -1 lets the
	// dispatcher choose.
	Node int
	// Request builds the execution's request for the node it runs on.
	Request func(node int) agent.ExecRequest
}

// Outcome is how one job ended. Exactly one of Exit, Lost, Cancelled and
// Err describes it.
type Outcome struct {
	Node     int       // the node it ran on last; -1 when it never started
	Attempts int       // how often it was started
	Exit     *ExecExit // it ended on its node
	// Lost is set when its node or the connection went away, more often
	// than the retries allow (Err says how).
	Lost bool
	// Cancelled is set when it was cancelled (or never started) because
	// another execution failed (fail fast) or the dispatch was cancelled.
	Cancelled bool
	Err       error
	// Elapsed is the time its last attempt took, seen from here.
	Elapsed        time.Duration
	Stdout, Stderr string
}

// Failed reports whether the job did not end with exit code 0.
func (o *Outcome) Failed() bool { return o.Exit == nil || o.Exit.ExitCode != 0 }

// maxCapture bounds the output kept per stream of one execution; the
// output callback still sees every line.
const maxCapture = 8 << 20

// Dispatcher runs jobs on workers: each worker runs at most Slots jobs at
// once; a job that is not pinned goes to the least-loaded worker with a
// free slot (ties in turn).
type Dispatcher struct {
	Workers []*Worker
	// Retries is how often a job that is not pinned and was lost with its
	// node is started again, on another node.
	Retries int
	// FailFast cancels the other jobs once one fails.
	FailFast bool
	// Output, when set, gets every line of every job as it arrives. Calls
	// for one job come from one goroutine; calls for different jobs may
	// come at once.
	Output func(job, node int, stream, line string)
	// exec runs one job on a worker; nil means Exec.
	exec func(ctx context.Context, w *Worker, req agent.ExecRequest, output func(stream, line string)) (*ExecExit, error)
}

type jobDone struct {
	job            int
	node           int
	exit           *ExecExit
	err            error
	elapsed        time.Duration
	stdout, stderr string
}

// Run dispatches jobs until every one has an outcome and returns them in
// the order of jobs. When ctx ends, running jobs are cancelled on their
// nodes and the rest are not started.
func (d *Dispatcher) Run(ctx context.Context, jobs []Job) []Outcome {
	ctx, cancelAll := context.WithCancel(ctx)
	defer cancelAll()
	run := d.exec
	if run == nil {
		run = func(ctx context.Context, w *Worker, req agent.ExecRequest, output func(stream, line string)) (*ExecExit, error) {
			return Exec(ctx, w.Client, w.Token, req, output)
		}
	}
	out := make([]Outcome, len(jobs))
	pending := make([]int, len(jobs))
	for i := range jobs {
		out[i].Node = -1
		pending[i] = i
	}
	s := &slots{workers: d.Workers, running: map[int]int{}, dead: map[int]error{}}
	for _, w := range d.Workers {
		if w.Err != nil {
			s.dead[w.Node] = w.Err
		}
	}
	results := make(chan jobDone)
	cancels := map[int]context.CancelFunc{}
	inflight, stopped := 0, false

	start := func(j int, w *Worker) {
		s.running[w.Node]++
		inflight++
		out[j].Attempts++
		out[j].Node = w.Node
		jctx, cancel := context.WithCancel(ctx)
		cancels[j] = cancel
		req := jobs[j].Request(w.Node)
		go func() {
			var stdout, stderr capture
			began := time.Now()
			exit, err := run(jctx, w, req, func(stream, line string) {
				if stream == "stderr" {
					stderr.add(line)
				} else {
					stdout.add(line)
				}
				if d.Output != nil {
					d.Output(j, w.Node, stream, line)
				}
			})
			results <- jobDone{job: j, node: w.Node, exit: exit, err: err, elapsed: time.Since(began), stdout: stdout.String(), stderr: stderr.String()}
		}()
	}
	stop := func() {
		stopped = true
		for _, cancel := range cancels {
			cancel()
		}
	}

	for {
		if !stopped && ctx.Err() == nil {
			rest := pending[:0]
			for _, j := range pending {
				if w := s.pick(jobs[j].Node); w != nil {
					start(j, w)
				} else {
					rest = append(rest, j)
				}
			}
			pending = rest
		}
		if inflight == 0 {
			break
		}
		r := <-results
		inflight--
		s.running[r.node]--
		cancels[r.job]()
		delete(cancels, r.job)
		o := &out[r.job]
		o.Stdout, o.Stderr, o.Elapsed = r.stdout, r.stderr, r.elapsed
		switch {
		case r.err == nil:
			o.Exit = r.exit
			if d.FailFast && o.Failed() && !stopped {
				stop()
			}
		case stopped || ctx.Err() != nil:
			o.Cancelled = true
		case errors.Is(r.err, ErrLost):
			s.dead[r.node] = r.err
			if jobs[r.job].Node < 0 && o.Attempts <= d.Retries {
				pending = append([]int{r.job}, pending...)
				continue
			}
			o.Lost, o.Err = true, r.err
			if d.FailFast {
				stop()
			}
		default:
			o.Err = r.err
			if d.FailFast {
				stop()
			}
		}
	}
	for _, j := range pending {
		o := &out[j]
		switch {
		case stopped || ctx.Err() != nil:
			o.Cancelled = true
		case o.Err == nil:
			// Pinned to a node that was lost, or every node was lost.
			o.Lost = true
			o.Err = fmt.Errorf("%w: no node left to run it%s", ErrLost, s.why())
			if err := s.dead[jobs[j].Node]; jobs[j].Node >= 0 && err != nil {
				o.Err = err
				if !errors.Is(err, ErrLost) {
					o.Err = fmt.Errorf("%w: %w", ErrLost, err)
				}
			}
		}
	}
	return out
}

// slots tracks the workers' free slots.
type slots struct {
	workers []*Worker
	running map[int]int   // by node
	dead    map[int]error // why a node is out, by node
	next    int           // where the search for a free worker starts, for ties
}

// pick returns the worker for a job pinned to node (or any worker when
// node < 0) that has a free slot, or nil.
// why says what made the nodes unusable: "" when none is, else each
// node's reason, in node order.
func (s *slots) why() string {
	nodes := make([]int, 0, len(s.dead))
	for n := range s.dead {
		nodes = append(nodes, n)
	}
	sort.Ints(nodes)
	var b strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&b, "; node %d: %v", n, s.dead[n])
	}
	return b.String()
}

func (s *slots) pick(node int) *Worker {
	var best *Worker
	bestFree := 0
	n := len(s.workers)
	for k := 0; k < n; k++ {
		w := s.workers[(s.next+k)%n]
		if s.dead[w.Node] != nil || node >= 0 && w.Node != node {
			continue
		}
		if free := w.Slots - s.running[w.Node]; free > bestFree {
			best, bestFree = w, free
		}
	}
	if best != nil && node < 0 {
		s.next = (s.next + 1) % n
	}
	return best
}

// capture keeps the lines of one stream, up to maxCapture bytes.
type capture struct {
	b         strings.Builder
	truncated bool
}

func (c *capture) add(line string) {
	if c.b.Len()+len(line)+1 > maxCapture {
		c.truncated = true
		return
	}
	c.b.WriteString(line)
	c.b.WriteByte('\n')
}

func (c *capture) String() string {
	if c.truncated {
		return c.b.String() + "[output truncated]\n"
	}
	return c.b.String()
}
