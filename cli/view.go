package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/skyward-sh/skyward/executor"
	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/planner"
)

// operationView shows plan, apply and destroy, for people or machines.
type operationView interface {
	Plan(p *planner.Plan)
	Event(ev executor.Event)
	ApplyDone(operation string, added, changed, destroyed int)
	Error(err error)
	// Warn shows a warning before the plan; compact shows its summary only.
	Warn(w warning, compact bool)
	// Close stops any background progress display.
	Close()
}

func (m *Meta) operationView(jsonOut, verbose bool) operationView {
	if jsonOut {
		v := m.jsonView()
		v.verbose = verbose
		return v
	}
	v := &humanView{m: m, w: m.Stdout, running: map[string]time.Time{}, stop: make(chan struct{}), verbose: verbose}
	if isTerminal(m.Stdout) {
		return newLiveView(v)
	}
	go v.progress()
	return v
}

// jsonView returns the command's JSON lines view, starting it (with its
// version line) at the first call.
func (m *Meta) jsonView() *jsonView {
	if m.jv == nil {
		m.jv = &jsonView{w: m.Stdout}
		m.jv.emit("info", "skyward "+Version, "version", map[string]any{"skyward": Version, "ui": "1.2"})
	}
	return m.jv
}

// warning is a problem that does not stop the command.
type warning struct{ summary, detail string }

// ---- human ----

type humanView struct {
	m       *Meta
	verbose bool
	w       io.Writer
	mu      sync.Mutex
	running map[string]time.Time // "op addr" -> start
	stop    chan struct{}
	once    sync.Once
}

func (v *humanView) colors() planner.Colors { return v.m.colors() }

func (v *humanView) Plan(p *planner.Plan) { p.Render(v.w, v.colors()) }

func verbs(op planner.Op) (ing, done, noun string) {
	switch op {
	case planner.OpCreate:
		return "Creating", "Creation complete", "creating"
	case planner.OpUpdate:
		return "Modifying", "Modifications complete", "modifying"
	default:
		return "Destroying", "Destruction complete", "destroying"
	}
}

func (v *humanView) Event(ev executor.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	ing, done, _ := verbs(ev.Op)
	key := string(ev.Op) + " " + ev.Address
	switch ev.Type {
	case executor.ApplyStart:
		v.running[key] = time.Now()
		if ev.ID != "" && ev.Op != planner.OpCreate {
			fmt.Fprintf(v.w, "%s: %s... [id=%s]\n", ev.Address, ing, shortID(ev.ID))
		} else {
			fmt.Fprintf(v.w, "%s: %s...\n", ev.Address, ing)
		}
	case executor.ApplyComplete:
		delete(v.running, key)
		if ev.ID != "" && ev.Op != planner.OpDelete {
			fmt.Fprintf(v.w, "%s: %s after %s [id=%s]\n", ev.Address, done, round(ev.Elapsed), shortID(ev.ID))
		} else {
			fmt.Fprintf(v.w, "%s: %s after %s\n", ev.Address, done, round(ev.Elapsed))
		}
	case executor.ApplyErrored:
		delete(v.running, key)
	case executor.NodePhase:
		switch b := ev.Bootstrap; {
		case ev.Detail != "":
			fmt.Fprintf(v.w, "%s: %s\n", ev.Address, ev.Detail)
		case b != nil && b.Status == "" && v.verbose:
			fmt.Fprintf(v.w, "%s: %s: %s\n", ev.Address, b.Phase, b.Line)
		case b != nil && b.Status == "started":
			fmt.Fprintf(v.w, "%s: bootstrapping: %s...\n", ev.Address, b.Phase)
		case b != nil && b.Status == "completed":
			fmt.Fprintf(v.w, "%s: bootstrapping: %s complete after %s\n", ev.Address, b.Phase, round(b.Duration))
		case b != nil && b.Status == "skipped" && v.verbose:
			fmt.Fprintf(v.w, "%s: bootstrapping: %s unchanged, skipped\n", ev.Address, b.Phase)
		case b == nil && ev.Phase != "creating" && ev.Phase != "bootstrapping":
			fmt.Fprintf(v.w, "%s: %s\n", ev.Address, ev.Phase)
		}
	}
}

// progress prints "Still creating..." for steps running 10s and more.
func (v *humanView) progress() {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-v.stop:
			return
		case now := <-t.C:
			v.mu.Lock()
			keys := make([]string, 0, len(v.running))
			for k := range v.running {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				op, addr, _ := strings.Cut(k, " ")
				_, _, noun := verbs(planner.Op(op))
				fmt.Fprintf(v.w, "%s: Still %s... [%s elapsed]\n", addr, noun, now.Sub(v.running[k]).Truncate(time.Second))
			}
			v.mu.Unlock()
		}
	}
}

func (v *humanView) ApplyDone(operation string, added, changed, destroyed int) {
	c := v.colors()
	if operation == "destroy" {
		fmt.Fprintf(v.w, "\n%s%sDestroy complete! Resources: %d destroyed.%s\n", c.Bold, c.Create, destroyed, c.Reset)
		return
	}
	fmt.Fprintf(v.w, "\n%s%sApply complete! Resources: %d added, %d changed, %d destroyed.%s\n", c.Bold, c.Create, added, changed, destroyed, c.Reset)
}

func (v *humanView) Error(err error) {
	fmt.Fprintf(v.m.Stderr, "%s %v\n", v.m.errorPrefix(), err)
}

func (v *humanView) Warn(w warning, compact bool) {
	c := v.colors()
	if compact || w.detail == "" {
		fmt.Fprintf(v.m.Stderr, "%s%sWarning:%s %s\n", c.Bold, c.Update, c.Reset, w.summary)
		return
	}
	fmt.Fprintf(v.m.Stderr, "%s%sWarning:%s %s\n\n%s\n\n", c.Bold, c.Update, c.Reset, w.summary, w.detail)
}

func (v *humanView) Close() { v.once.Do(func() { close(v.stop) }) }

func round(d time.Duration) time.Duration {
	if d < 100*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	if d < time.Second {
		return d.Round(10 * time.Millisecond)
	}
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ---- JSON lines, after Terraform's machine-readable UI ----

type jsonView struct {
	mu      sync.Mutex
	w       io.Writer
	verbose bool
}

func (v *jsonView) emit(level, msg, typ string, fields map[string]any) {
	obj := map[string]any{
		"@level":     level,
		"@message":   msg,
		"@module":    "skyward.ui",
		"@timestamp": time.Now().Format(time.RFC3339Nano),
		"type":       typ,
	}
	for k, f := range fields {
		obj[k] = f
	}
	b, _ := json.Marshal(obj)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.w.Write(append(b, '\n'))
}

func resourceJSON(addr, typ, pool string, index *int, provider string) map[string]any {
	var key any
	if index != nil {
		key = *index
	}
	return map[string]any{
		"addr": addr, "module": "", "resource": addr, "implied_provider": provider,
		"resource_type": typ, "resource_name": pool, "resource_key": key,
	}
}

func (v *jsonView) Plan(p *planner.Plan) {
	for _, n := range append(append([]string(nil), p.Warnings...), p.Notes...) {
		v.emit("warn", n, "diagnostic", map[string]any{"diagnostic": map[string]any{"severity": "warning", "summary": n, "detail": ""}})
	}
	for _, c := range p.Changes {
		if c.Action == planner.NoOp {
			continue
		}
		ch := map[string]any{
			"resource": resourceJSON(c.Address, c.Type, c.Pool, c.Index, c.Provider),
			"action":   c.Action.UIAction(),
		}
		if c.Reason != "" {
			ch["reason"] = c.Reason
		}
		v.emit("info", fmt.Sprintf("%s: Plan to %s", c.Address, c.Action.UIAction()), "planned_change", map[string]any{"change": ch})
	}
	add, change, destroy := p.Counts()
	v.emit("info", p.Summary(), "change_summary", map[string]any{"changes": map[string]any{
		"add": add, "change": change, "import": 0, "remove": destroy, "operation": "plan"}})
}

func (v *jsonView) Event(ev executor.Event) {
	ing, done, _ := verbs(ev.Op)
	action := map[planner.Op]string{planner.OpCreate: "create", planner.OpUpdate: "update", planner.OpDelete: "delete"}[ev.Op]
	pool, idx, _ := planner.ParseAddress(ev.Address)
	var index *int
	typ := "pool"
	if idx >= 0 {
		index, typ = &idx, "node"
	}
	hook := map[string]any{"resource": resourceJSON(ev.Address, typ, pool, index, ""), "action": action}
	switch ev.Type {
	case executor.ApplyStart:
		msg := fmt.Sprintf("%s: %s...", ev.Address, ing)
		if ev.ID != "" {
			hook["id_key"], hook["id_value"] = "id", ev.ID
		}
		v.emit("info", msg, "apply_start", map[string]any{"hook": hook})
	case executor.ApplyComplete:
		hook["elapsed_seconds"] = int(ev.Elapsed.Seconds())
		if ev.ID != "" {
			hook["id_key"], hook["id_value"] = "id", ev.ID
		}
		v.emit("info", fmt.Sprintf("%s: %s after %s", ev.Address, done, round(ev.Elapsed)), "apply_complete", map[string]any{"hook": hook})
	case executor.ApplyErrored:
		hook["elapsed_seconds"] = int(ev.Elapsed.Seconds())
		v.emit("error", fmt.Sprintf("%s: %s errored after %s", ev.Address, strings.TrimSuffix(done, " complete"), round(ev.Elapsed)), "apply_errored", map[string]any{"hook": hook})
	case executor.NodePhase:
		hook["phase"] = ev.Phase
		fields := map[string]any{"hook": hook, "phase": ev.Phase}
		msg := fmt.Sprintf("%s: %s", ev.Address, ev.Phase)
		if b := ev.Bootstrap; b != nil {
			if b.Status == "" && !v.verbose {
				return
			}
			bs := map[string]any{"phase": b.Phase}
			if b.Status != "" {
				bs["status"] = b.Status
				msg += fmt.Sprintf(": %s %s", b.Phase, b.Status)
			} else {
				bs["stream"], bs["line"] = b.Stream, b.Line
				msg += fmt.Sprintf(": %s: %s", b.Phase, b.Line)
			}
			if b.Duration > 0 {
				bs["duration_ms"] = b.Duration.Milliseconds()
			}
			if b.Status == "failed" {
				bs["exit_code"] = b.ExitCode
			}
			fields["bootstrap"] = bs
		}
		if ev.Detail != "" {
			fields["detail"] = ev.Detail
			msg += ": " + ev.Detail
		}
		v.emit("info", msg, "node_phase", fields)
	}
}

func (v *jsonView) ApplyDone(operation string, added, changed, destroyed int) {
	msg := fmt.Sprintf("Apply complete! Resources: %d added, %d changed, %d destroyed.", added, changed, destroyed)
	if operation == "destroy" {
		msg = fmt.Sprintf("Destroy complete! Resources: %d destroyed.", destroyed)
	}
	v.emit("info", msg, "change_summary", map[string]any{"changes": map[string]any{
		"add": added, "change": changed, "import": 0, "remove": destroyed, "operation": operation}})
}

func (v *jsonView) Error(err error) {
	summary, detail := err.Error(), ""
	var de *diagError
	if errors.As(err, &de) {
		summary, detail = de.summary, de.detail
	}
	v.emit("error", "Error: "+summary, "diagnostic", map[string]any{"diagnostic": map[string]any{
		"severity": "error", "summary": summary, "detail": detail}})
}

func (v *jsonView) Warn(w warning, compact bool) {
	v.emit("warn", "Warning: "+w.summary, "diagnostic", map[string]any{"diagnostic": map[string]any{
		"severity": "warning", "summary": w.summary, "detail": w.detail}})
}

// Diagnostic emits a config diagnostic, with its range and snippet.
func (v *jsonView) Diagnostic(d hclspec.JSONDiagnostic) {
	level := "error"
	if d.Severity == "warning" {
		level = "warn"
	}
	v.emit(level, capitalize(d.Severity)+": "+d.Summary, "diagnostic", map[string]any{"diagnostic": d})
}

func (v *jsonView) Close() {}
