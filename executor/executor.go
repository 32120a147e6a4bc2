// Package executor carries out a plan: it walks the plan's provisioning
// graph in parallel through the providers, brings nodes up to the point
// where they answer SSH with their pinned host key, and writes the state
// after every step that finishes. It is the only package that writes state.
package executor

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/skyward-sh/skyward/cluster"
	"github.com/skyward-sh/skyward/planner"
	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/state"
)

// StateWriter persists a state; every state.Backend implements it.
type StateWriter interface {
	Write(*state.State) error
}

// EventType names an executor event after Terraform's machine-readable UI.
type EventType string

const (
	ApplyStart    EventType = "apply_start"
	ApplyComplete EventType = "apply_complete"
	ApplyErrored  EventType = "apply_errored"
	NodePhase     EventType = "node_phase"
)

// Event reports progress of one step.
type Event struct {
	Type    EventType
	Address string
	Op      planner.Op
	Action  planner.Action
	ID      string        // provider id, when known
	Elapsed time.Duration // since the step started
	Phase   string        // for NodePhase: creating, connecting, bootstrapping, starting, joining, ready
	// Bootstrap is set on bootstrapping events that report a bootstrap
	// phase or one line of its output.
	Bootstrap *cluster.PhaseEvent
	Detail    string // a note on the phase
	Err       error  // for ApplyErrored
}

// Executor applies plans. Fields must be set before Apply and not changed
// while it runs.
type Executor struct {
	// Providers by provider address; every provider a plan's changes name
	// must be present.
	Providers map[string]providers.Provider
	State     StateWriter
	Keys      state.KeyStore
	// AgentBinary is the static skyward binary providers copy onto nodes.
	AgentBinary string
	// Parallelism bounds the steps running at once (default 10).
	Parallelism int
	// Events receives progress; it is called from many goroutines and
	// must not block for long. nil means no events.
	Events func(Event)
	// Stop, when closed, means no new step may start; running steps
	// finish. nil means never.
	Stop <-chan struct{}
	// SSHTimeout bounds the wait for a new node's SSH server (default 90s).
	SSHTimeout time.Duration
	// CreateTimeout, if positive, bounds the wait for a created node to
	// run with an SSH endpoint instead of its provider's CreateTimeout.
	CreateTimeout time.Duration
	// ReconnectDelay is the first wait before reconnecting to a node
	// whose SSH connection dropped; it doubles on each retry (default
	// 500ms).
	ReconnectDelay time.Duration
	// ConfigDir is the directory image includes and local pip paths are
	// relative to.
	ConfigDir string
}

// Result is what Apply did.
type Result struct {
	State  *state.State
	Done   []string // step IDs that finished
	Failed []string // step IDs that failed
	// Skipped are steps not run because a dependency failed or Stop was
	// closed.
	Skipped []string
	// Interrupted is true when Stop was closed before every step started.
	Interrupted bool
}

// ErrInterrupted is returned when Stop cut the apply short.
var ErrInterrupted = errors.New("apply interrupted; the state holds every step that finished")

// Apply carries out p against st (the state p was planned from; not
// modified) and returns the new state, which has been written after every
// finished step. The error joins every step failure (a step skipped because
// of another failure is not reported again).
func (e *Executor) Apply(ctx context.Context, p *planner.Plan, st *state.State) (*Result, error) {
	par := e.Parallelism
	if par <= 0 {
		par = 10
	}
	w := &walk{e: e, st: st.DeepCopy(), res: &Result{}, plan: p,
		sem: make(chan struct{}, par), done: map[string]chan struct{}{}, ok: map[string]bool{}}
	if w.st.Lineage == "" {
		w.st.Lineage = p.Lineage
	}
	if err := w.recordProviderConfigs(); err != nil {
		return w.res, err
	}
	steps := p.Steps()
	sem, done := w.sem, w.done
	for _, s := range steps {
		done[s.ID] = make(chan struct{})
	}
	var errs []error
	var errMu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[s.ID])
			for _, d := range s.Deps {
				if ch, found := done[d]; found {
					<-ch
				}
				if !w.succeeded(d) {
					w.record(&w.res.Skipped, s.ID)
					return
				}
			}
			acquired := false
			select {
			case sem <- struct{}{}:
				acquired = true
			case <-e.stop():
			case <-ctx.Done():
			}
			if !acquired || e.stopped() || ctx.Err() != nil {
				if acquired {
					<-sem
				}
				w.record(&w.res.Skipped, s.ID)
				w.mu.Lock()
				w.res.Interrupted = true
				w.mu.Unlock()
				return
			}
			sl := &slot{sem: sem, held: true}
			defer sl.release()
			start := time.Now()
			e.emit(Event{Type: ApplyStart, Address: s.Change.Address, Op: s.Op, Action: s.Change.Action, ID: s.Change.PriorID})
			id, err := w.run(context.WithValue(ctx, slotKey{}, sl), s)
			if err != nil {
				e.emit(Event{Type: ApplyErrored, Address: s.Change.Address, Op: s.Op, Action: s.Change.Action, Elapsed: time.Since(start), Err: err})
				errMu.Lock()
				errs = append(errs, err)
				errMu.Unlock()
				w.record(&w.res.Failed, s.ID)
				return
			}
			e.emit(Event{Type: ApplyComplete, Address: s.Change.Address, Op: s.Op, Action: s.Change.Action, ID: id, Elapsed: time.Since(start)})
			w.mu.Lock()
			w.ok[s.ID] = true
			w.mu.Unlock()
			w.record(&w.res.Done, s.ID)
		}()
	}
	wg.Wait()
	w.closeHeads()
	w.res.State = w.st
	if w.res.Interrupted {
		errs = append(errs, ErrInterrupted)
	}
	return w.res, errors.Join(errs...)
}

// recordProviderConfigs keeps the provider configuration recorded on pools
// that the plan leaves alone current, for changes to provider arguments
// that change no object (an endpoint, a profile): a later destroy from
// state alone then uses them. Nodes recorded before they kept their
// provider's arguments get them too.
func (w *walk) recordProviderConfigs() error {
	changed := false
	for _, c := range w.plan.Changes {
		if c.Action != planner.NoOp || c.After == nil {
			continue
		}
		r := w.st.Get(c.Address)
		if r == nil || reflect.DeepEqual(r.Attributes["provider_config"], c.After["provider_config"]) {
			continue
		}
		if _, recorded := r.Attributes["provider_config"]; c.Index != nil && recorded {
			continue // a node's differs only when the plan replaces it
		}
		r.Attributes["provider_config"] = c.After["provider_config"]
		changed = true
	}
	if !changed {
		return nil
	}
	return w.save(func(*state.State) {})
}

func (e *Executor) stop() <-chan struct{} {
	if e.Stop == nil {
		return nil
	}
	return e.Stop
}

func (e *Executor) stopped() bool {
	select {
	case <-e.stop():
		return true
	default:
		return false
	}
}

func (e *Executor) emit(ev Event) {
	if e.Events != nil {
		e.Events(ev)
	}
}

// walk is the state of one Apply.
type walk struct {
	e    *Executor
	plan *planner.Plan
	sem  chan struct{}            // one token per running step
	done map[string]chan struct{} // closed when a step has finished; read-only once Apply starts
	mu   sync.Mutex               // guards st, res and ok
	st   *state.State
	res  *Result
	ok   map[string]bool // steps that succeeded
	// headsUp holds, by pool, a channel closed once the pool's head has
	// started its agent in this apply (see headUp).
	headsUp map[string]chan struct{}
	// saved is closed, and replaced, by every save: steps that wait for
	// another step's resource to appear in the state wake on it.
	saved chan struct{}
	// heads holds, by pool, the connection to the head that the pool's
	// workers share to announce themselves and wait for their join.
	heads map[string]*headConn
	// lostHeads are connections to heads that were lost and replaced,
	// closed with the others.
	lostHeads []*headConn
}

// succeeded reports whether the step with the given ID finished without
// error.
func (w *walk) succeeded(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ok[id]
}

// slot is a running step's token in the parallelism semaphore. A step
// that waits on another step gives its token back while it waits, so
// that a small -parallelism cannot deadlock the walk.
type slot struct {
	sem  chan struct{}
	held bool
}

type slotKey struct{}

func (s *slot) release() {
	if s.held {
		s.held = false
		<-s.sem
	}
}

// acquire takes a token again; it fails only when ctx ends first.
func (s *slot) acquire(ctx context.Context) error {
	if s.held {
		return nil
	}
	select {
	case s.sem <- struct{}{}:
		s.held = true
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// idle runs wait with the step's token given back, and takes it again
// before returning.
func idle(ctx context.Context, wait func() error) error {
	sl, _ := ctx.Value(slotKey{}).(*slot)
	if sl == nil {
		return wait()
	}
	sl.release()
	err := wait()
	if aerr := sl.acquire(ctx); err == nil {
		err = aerr
	}
	return err
}

func (w *walk) record(list *[]string, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	*list = append(*list, id)
}

// save applies fn to the state and writes it, under the lock.
func (w *walk) save(fn func(st *state.State)) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	fn(w.st)
	w.changedLocked()
	if err := w.e.State.Write(w.st); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// changedLocked wakes the waiters on saved; w.mu is held.
func (w *walk) changedLocked() {
	if w.saved != nil {
		close(w.saved)
	}
	w.saved = make(chan struct{})
}

// changes returns a channel closed at the next change of the working
// state.
func (w *walk) changes() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.saved == nil {
		w.saved = make(chan struct{})
	}
	return w.saved
}

// get returns a copy of the resource at addr in the working state.
func (w *walk) get(addr string) *state.Resource {
	w.mu.Lock()
	defer w.mu.Unlock()
	if r := w.st.Get(addr); r != nil {
		return r.DeepCopy()
	}
	return nil
}

func (w *walk) provider(c *planner.Change) (providers.Provider, error) {
	p, ok := w.e.Providers[c.Provider]
	if !ok {
		return nil, fmt.Errorf("%s: provider %q is not configured", c.Address, c.Provider)
	}
	return p, nil
}

// run carries out one step and returns the provider id of the result.
func (w *walk) run(ctx context.Context, s *planner.Step) (string, error) {
	c := s.Change
	p, err := w.provider(c)
	if err != nil {
		return "", err
	}
	switch {
	case c.Type == string(providers.KindPool) && s.Op == planner.OpCreate:
		return w.createPool(ctx, p, c)
	case c.Type == string(providers.KindPool) && s.Op == planner.OpUpdate:
		return w.updatePool(ctx, c)
	case c.Type == string(providers.KindNode) && s.Op == planner.OpCreate:
		return w.createNode(ctx, p, c)
	case c.Type == string(providers.KindNode) && s.Op == planner.OpUpdate:
		return w.updateNode(ctx, p, c)
	case s.Op == planner.OpDelete:
		return "", w.delete(ctx, p, c)
	}
	return "", fmt.Errorf("%s: no way to %s a %s", c.Address, s.Op, c.Type)
}
