package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/skyward-sh/skyward/executor"
	"github.com/skyward-sh/skyward/planner"
)

// liveView is the terminal view of an apply: the plan, then one line per
// resource redrawn in place with its phase and elapsed time.
type liveView struct {
	*humanView
	mu      sync.Mutex
	rows    []*liveRow
	byAddr  map[string]*liveRow
	drawn   int // lines of the last frame
	stopped chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	now     func() time.Time
}

type liveRow struct {
	addr    string
	status  string // pending, creating, connecting, ready, destroyed, failed...
	id      string
	started time.Time
	ended   time.Time
	failed  bool
}

func newLiveView(h *humanView) *liveView {
	return &liveView{humanView: h, byAddr: map[string]*liveRow{}, stopped: make(chan struct{}), now: time.Now}
}

func (v *liveView) Plan(p *planner.Plan) {
	v.humanView.Plan(p)
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, c := range p.Changes {
		if c.Action == planner.NoOp {
			continue
		}
		r := &liveRow{addr: c.Address, status: "pending"}
		v.rows = append(v.rows, r)
		v.byAddr[c.Address] = r
	}
}

// start begins redrawing; called once the apply starts.
func (v *liveView) start() {
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-v.stopped:
				return
			case <-t.C:
				v.redraw()
			}
		}
	}()
}

func (v *liveView) Event(ev executor.Event) {
	v.mu.Lock()
	r := v.byAddr[ev.Address]
	if r == nil {
		v.mu.Unlock()
		return
	}
	now := v.now()
	switch ev.Type {
	case executor.ApplyStart:
		if r.started.IsZero() {
			r.started = now
		}
		r.ended = time.Time{}
		r.status = map[planner.Op]string{planner.OpCreate: "creating", planner.OpUpdate: "updating", planner.OpDelete: "destroying"}[ev.Op]
	case executor.NodePhase:
		r.status = ev.Phase
		if b := ev.Bootstrap; b != nil && b.Phase != "" {
			r.status = "bootstrapping: " + b.Phase
		}
	case executor.ApplyComplete:
		r.ended = now
		r.id = ev.ID
		r.status = map[planner.Op]string{planner.OpCreate: "ready", planner.OpUpdate: "ready", planner.OpDelete: "destroyed"}[ev.Op]
	case executor.ApplyErrored:
		r.ended, r.failed, r.status = now, true, "failed"
	}
	v.mu.Unlock()
	v.redraw()
}

// frame renders the rows.
func (v *liveView) frame() []string {
	now := v.now()
	width := 0
	for _, r := range v.rows {
		width = max(width, len(r.addr))
	}
	lines := make([]string, 0, len(v.rows))
	c := v.colors()
	for _, r := range v.rows {
		color := ""
		switch {
		case r.failed:
			color = c.Delete
		case r.status == "ready" || r.status == "destroyed":
			color = c.Create
		case r.status != "pending":
			color = c.Update
		}
		elapsed := ""
		if !r.started.IsZero() {
			end := r.ended
			if end.IsZero() {
				end = now
			}
			elapsed = round(end.Sub(r.started)).String()
		}
		id := ""
		if r.id != "" {
			id = "id=" + shortID(r.id)
		}
		lines = append(lines, strings.TrimRight(fmt.Sprintf("  %-*s  %s%-24s%s %8s  %s", width, r.addr, color, r.status, c.Reset, elapsed, id), " "))
	}
	return lines
}

func (v *liveView) redraw() {
	v.mu.Lock()
	defer v.mu.Unlock()
	var b strings.Builder
	if v.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", v.drawn)
	}
	for _, l := range v.frame() {
		b.WriteString("\r\x1b[2K" + l + "\n")
	}
	v.drawn = len(v.rows)
	io.WriteString(v.w, b.String())
}

// finish stops redrawing and draws the final frame, so that what is
// printed next stands below it.
func (v *liveView) finish() {
	v.once.Do(func() {
		close(v.stopped)
		v.wg.Wait()
		if v.drawn > 0 {
			v.redraw()
		}
	})
}

func (v *liveView) ApplyDone(operation string, added, changed, destroyed int) {
	v.finish()
	v.humanView.ApplyDone(operation, added, changed, destroyed)
}

func (v *liveView) Error(err error) {
	v.finish()
	v.humanView.Error(err)
}

func (v *liveView) Warn(w warning, compact bool) { v.humanView.Warn(w, compact) }

func (v *liveView) Close() {
	v.finish()
	v.humanView.Close()
}
