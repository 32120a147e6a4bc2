package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/skyward-sh/skyward/executor"
	"github.com/skyward-sh/skyward/planner"
	"github.com/skyward-sh/skyward/state"
)

func runShow(m *Meta, args []string) error {
	fs := newFlagSet("show")
	jsonOut := fs.Bool("json", false, "Print Terraform's JSON representation of the state or plan.")
	pos, _, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return fmt.Errorf("show takes at most one plan file, got %q", pos)
	}
	if len(pos) == 1 {
		p, err := planner.ReadPlanFile(pos[0])
		if err != nil {
			return err
		}
		if *jsonOut {
			return writeJSON(m.Stdout, p.JSON(Version))
		}
		p.Render(m.Stdout, m.colors())
		return nil
	}
	st, err := m.stateOrEmpty()
	if err != nil {
		return err
	}
	if *jsonOut {
		js := planner.StateJSON(st)
		js.TerraformVersion = Version
		return writeJSON(m.Stdout, js)
	}
	if len(st.Resources) == 0 {
		fmt.Fprintln(m.Stdout, "The state is empty.")
		return nil
	}
	for i, r := range st.Resources {
		if i > 0 {
			fmt.Fprintln(m.Stdout)
		}
		showResource(m, r)
	}
	return nil
}

func (m *Meta) warningPrefix() string {
	if m.Color {
		return "\x1b[33m\x1b[1mWarning:\x1b[0m"
	}
	return "Warning:"
}

func (m *Meta) colors() planner.Colors {
	if m.Color {
		return planner.ANSIColors
	}
	return planner.Colors{}
}

// stateOrEmpty reads the state; a missing one is an empty state.
func (m *Meta) stateOrEmpty() (*state.State, error) {
	st, err := m.readState()
	if err != nil || st != nil {
		return st, err
	}
	return state.New(""), nil
}

// resourceAt returns the resource at a state address.
func (m *Meta) resourceAt(addr string) (*state.Resource, error) {
	st, err := m.stateOrEmpty()
	if err != nil {
		return nil, err
	}
	r := st.Get(addr)
	if r == nil {
		return nil, fmt.Errorf("no resource %s in the state", addr)
	}
	return r, nil
}

func showResource(m *Meta, r *state.Resource) {
	fmt.Fprintf(m.Stdout, "# %s:", r.Address)
	if r.Status != state.StatusReady {
		fmt.Fprintf(m.Stdout, " (%s)", r.Status)
	}
	fmt.Fprintln(m.Stdout)
	name := r.Pool
	if r.Index != nil {
		name = fmt.Sprintf("%s/%d", r.Pool, *r.Index)
	}
	fmt.Fprintf(m.Stdout, "%s %q {\n", r.Type, name)
	attrs := planner.MaskAttributes(r.Attributes, r.Sensitive)
	keys := make([]string, 0, len(r.Attributes)+1)
	for k := range r.Attributes {
		keys = append(keys, k)
	}
	keys = append(keys, "id")
	sort.Strings(keys)
	width := 0
	for _, k := range keys {
		width = max(width, len(k))
	}
	for _, k := range keys {
		v := any(r.ID)
		if k != "id" {
			v = attrs[k]
		}
		fmt.Fprintf(m.Stdout, "    %-*s = %s\n", width, k, formatAttr(v))
	}
	fmt.Fprintln(m.Stdout, "}")
}

func formatAttr(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case nil:
		return "null"
	case planner.MaskedValue:
		return planner.SensitiveText
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func runGraph(m *Meta, args []string) error {
	fs := newFlagSet("graph")
	var vars varFlags
	vars.register(fs)
	if _, _, err := parseArgs(fs, args); err != nil {
		return err
	}
	cfg, err := m.loadConfig(&vars, nil)
	if err != nil {
		return err
	}
	st, err := m.stateOrEmpty()
	if err != nil {
		return err
	}
	p, err := planner.Build(cfg, st, m.Registry, planner.Options{})
	if err != nil {
		return err
	}
	return p.WriteDOT(m.Stdout)
}

func runState(m *Meta, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("state: missing subcommand: list, show ADDR or rm ADDR...; see skyward state -h")
	}
	if strings.HasPrefix(args[0], "-") {
		// state -h: the subcommands and the options of state rm.
		fs := newFlagSet("state")
		var lock bool
		var timeout time.Duration
		registerLockFlags(fs, &lock, &timeout)
		if _, _, err := parseArgs(fs, args); err != nil {
			return err
		}
		return fmt.Errorf("state: missing subcommand: list, show ADDR or rm ADDR...; see skyward state -h")
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("state " + sub)
	var lock bool
	var lockTimeout time.Duration
	if sub == "rm" {
		registerLockFlags(fs, &lock, &lockTimeout)
	}
	jsonOut := new(bool)
	if sub == "show" {
		fs.BoolVar(jsonOut, "json", false, "Print the resource as JSON.")
	}
	pos, _, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		st, err := m.readState()
		if err != nil || st == nil {
			return err
		}
		for _, r := range st.Resources {
			if len(pos) > 0 && !matchesAny(r.Address, pos) {
				continue
			}
			fmt.Fprintln(m.Stdout, r.Address)
		}
		return nil
	case "show":
		if len(pos) != 1 {
			return fmt.Errorf("state show takes exactly one address")
		}
		addr, err := planner.CanonicalAddress(pos[0])
		if err != nil {
			return err
		}
		r, err := m.resourceAt(addr)
		if err != nil {
			return err
		}
		if *jsonOut {
			masked := r.DeepCopy()
			masked.Attributes = planner.MaskAttributes(r.Attributes, r.Sensitive)
			return writeJSON(m.Stdout, masked)
		}
		showResource(m, r)
		return nil
	case "rm":
		if len(pos) == 0 {
			return fmt.Errorf("state rm takes one or more addresses")
		}
		lk, err := m.lock("state rm", lock, lockTimeout)
		if err != nil {
			return err
		}
		defer lk.Unlock()
		st, err := m.readState()
		if err != nil {
			return err
		}
		if st == nil {
			return fmt.Errorf("there is no state")
		}
		var removed []string
		for _, a := range pos {
			addr, err := planner.CanonicalAddress(a)
			if err != nil {
				return err
			}
			matched := false
			for _, r := range append([]*state.Resource(nil), st.Resources...) {
				if r.Address == addr || (r.Index != nil && addr == "pool."+r.Pool) {
					st.Remove(r.Address)
					removed = append(removed, r.Address)
					matched = true
				}
			}
			if !matched {
				return fmt.Errorf("no resource %s in the state; nothing was removed", addr)
			}
		}
		if err := m.writeState(st); err != nil {
			return err
		}
		for _, a := range removed {
			fmt.Fprintf(m.Stdout, "Removed %s\n", a)
		}
		fmt.Fprintf(m.Stdout, "Successfully removed %d resource(s). The objects still exist on the provider; the next plan finds and adopts or destroys them.\n", len(removed))
		return nil
	}
	return fmt.Errorf("state: unknown subcommand %q (want list, show or rm)", sub)
}

func matchesAny(addr string, prefixes []string) bool {
	for _, p := range prefixes {
		if c, err := planner.CanonicalAddress(p); err == nil && (addr == c || strings.HasPrefix(addr, c+".")) {
			return true
		}
	}
	return false
}

func runStatus(m *Meta, args []string) error {
	fs := newFlagSet("status")
	jsonOut := fs.Bool("json", false, "Print the pools and nodes as a JSON object.")
	if _, _, err := parseArgs(fs, args); err != nil {
		return err
	}
	st, err := m.stateOrEmpty()
	if err != nil {
		return err
	}
	recorded := st
	st = m.liveState(st)
	type nodeStatus struct {
		Address   string `json:"address"`
		Pool      string `json:"pool"`
		Index     *int   `json:"index"`
		Phase     string `json:"phase"`
		ID        string `json:"id"`
		PrivateIP string `json:"private_ip"`
		PublicIP  string `json:"public_ip,omitempty"`
		SSH       string `json:"ssh"`
		SSHHost   string `json:"ssh_host,omitempty"`
		SSHPort   int    `json:"ssh_port,omitempty"`
		SSHUser   string `json:"ssh_user,omitempty"`
		// HostKey says how the pinned host key became known: "installed"
		// (by the provider, before the node existed) or "first-contact".
		HostKey string `json:"host_key,omitempty"`
		Agent   string `json:"agent,omitempty"`
		Age     string `json:"age,omitempty"`
	}
	var out []nodeStatus
	down := executor.CheckAgents(m.Ctx, st, m.keys())
	for _, rec := range recorded.Resources {
		// The phase says what the provider says now: a node stopped or
		// deleted behind skyward's back is not ready.
		r, phase := st.Get(rec.Address), string(rec.Status)
		switch {
		case r == nil:
			r, phase = rec, "gone"
		case r.Attributes["running"] == false:
			phase = "stopped"
		}
		s := func(k string) string { v, _ := r.Attributes[k].(string); return v }
		ns := nodeStatus{Address: r.Address, Pool: r.Pool, Index: r.Index, Phase: phase, ID: r.ID,
			PrivateIP: s("private_ip"), PublicIP: s("public_ip"), SSHHost: s("ssh_host"), SSHUser: s("ssh_user")}
		fmt.Sscanf(s("ssh_port"), "%d", &ns.SSHPort)
		if s("ssh_host") != "" {
			ns.SSH = fmt.Sprintf("%s@%s:%s", s("ssh_user"), s("ssh_host"), s("ssh_port"))
		}
		if r.Type == "node" {
			ns.HostKey = executor.HostKeySource(r)
		}
		if r.Type == "node" {
			switch err, isDown := down[r.Address]; {
			case phase != string(state.StatusReady):
				ns.Agent = "-"
			case isDown && executor.IsAgentDown(err):
				ns.Agent = "down"
			case isDown:
				ns.Agent = "unreachable"
			default:
				ns.Agent = "running"
			}
		}
		if created, ok := r.Attributes["created_at"].(string); ok {
			if t, err := time.Parse(time.RFC3339, created); err == nil {
				ns.Age = time.Since(t).Round(time.Second).String()
			}
		}
		out = append(out, ns)
	}
	if *jsonOut {
		if out == nil {
			out = []nodeStatus{}
		}
		return writeJSON(m.Stdout, map[string]any{"lineage": st.Lineage, "resources": out})
	}
	if len(out) == 0 {
		fmt.Fprintln(m.Stdout, "No pools. Run skyward apply to create them.")
		return nil
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tPHASE\tID\tPRIVATE IP\tPUBLIC IP\tSSH\tHOST KEY\tAGENT\tAGE")
	for _, n := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Address, n.Phase, shortID(n.ID), dash(n.PrivateIP), dash(n.PublicIP), dash(n.SSH), dash(n.HostKey), dash(n.Agent), n.Age)
	}
	return tw.Flush()
}

func runOutput(m *Meta, args []string) error {
	fs := newFlagSet("output")
	jsonOut := fs.Bool("json", false, "Print the values as JSON.")
	raw := fs.Bool("raw", false, "Print a string value as it is, without quotes or a newline.")
	var vars varFlags
	vars.register(fs)
	pos, _, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	st, err := m.readState()
	if err != nil {
		return err
	}
	cfg, err := m.loadConfig(&vars, poolValues(st))
	if err != nil {
		return err
	}
	names := make([]string, 0, len(cfg.Outputs))
	for n := range cfg.Outputs {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 && len(pos) == 0 {
		if *jsonOut {
			fmt.Fprintln(m.Stdout, "{}")
			return nil
		}
		fmt.Fprintf(m.Stderr, "%s No outputs found\n\nThe configuration declares no output values. Declare one with an "+
			"output block, for example:\n\n  output \"head\" {\n    value = pool.dev.nodes[0].private_ip\n  }\n", m.warningPrefix())
		return nil
	}
	if len(pos) > 0 {
		o, ok := cfg.Outputs[pos[0]]
		if !ok {
			if len(names) == 0 {
				return fmt.Errorf("output %q not found; the config declares no outputs", pos[0])
			}
			return fmt.Errorf("output %q not found; the config declares %s", pos[0], strings.Join(names, ", "))
		}
		if !o.Value.IsWhollyKnown() {
			return fmt.Errorf("output %q is not known yet: run skyward apply first", o.Name)
		}
		if *jsonOut {
			b, err := ctyjson.Marshal(o.Value, o.Value.Type())
			if err != nil {
				return err
			}
			fmt.Fprintln(m.Stdout, string(b))
			return nil
		}
		if *raw && o.Value.Type() == cty.String {
			fmt.Fprint(m.Stdout, o.Value.AsString())
			return nil
		}
		fmt.Fprintln(m.Stdout, ctyString(o.Value))
		return nil
	}
	if *jsonOut {
		all := map[string]any{}
		for _, n := range names {
			o := cfg.Outputs[n]
			entry := map[string]any{"sensitive": o.Sensitive}
			if o.Value.IsWhollyKnown() {
				b, _ := ctyjson.Marshal(o.Value, o.Value.Type())
				entry["value"] = json.RawMessage(b)
				tb, _ := ctyjson.MarshalType(o.Value.Type())
				entry["type"] = json.RawMessage(tb)
			}
			all[n] = entry
		}
		return writeJSON(m.Stdout, all)
	}
	for _, n := range names {
		o := cfg.Outputs[n]
		switch {
		case o.Sensitive:
			fmt.Fprintf(m.Stdout, "%s = <sensitive>\n", n)
		case !o.Value.IsWhollyKnown():
			fmt.Fprintf(m.Stdout, "%s = (known after apply)\n", n)
		default:
			fmt.Fprintf(m.Stdout, "%s = %s\n", n, ctyString(o.Value))
		}
	}
	return nil
}

// ctyString renders a value the way Terraform's output command does for
// simple values, and as JSON otherwise.
func ctyString(v cty.Value) string {
	if v.IsNull() {
		return "null"
	}
	switch v.Type() {
	case cty.String:
		return fmt.Sprintf("%q", v.AsString())
	case cty.Number:
		return v.AsBigFloat().Text('f', -1)
	case cty.Bool:
		return fmt.Sprint(v.True())
	}
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return v.GoString()
	}
	return string(b)
}

// dash stands in for an empty table cell.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
