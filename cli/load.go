package cli

import (
	"context"
	"debug/elf"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/skyward-sh/skyward/agent"
	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/planner"
	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/state"
)

// dataDir is the directory skyward keeps its data in.
const dataDir = ".skyward"

// varFlags are the flags that set input variables.
type varFlags struct {
	vars, files stringList
}

// register adds -var and -var-file to fs.
func (v *varFlags) register(fs *flag.FlagSet) {
	fs.Var(&v.vars, "var", "Set an input variable: -var '`NAME=VALUE`'; repeatable, later ones win.")
	fs.Var(&v.files, "var-file", "Read input variables from an HCL (or .json) `FILE`; repeatable, later ones win.")
}

// loadConfig loads the configuration, printing diagnostics. The error is
// errSilent when diagnostics were printed.
func (m *Meta) loadConfig(v *varFlags, poolValues map[string]cty.Value) (*hclspec.Config, error) {
	opts := hclspec.LoadOptions{
		Environ:         os.Environ(),
		ProviderSchemas: m.Registry.Schemas(),
		PoolValues:      poolValues,
	}
	if v != nil {
		opts.Vars, opts.VarFiles = v.vars, v.files
	}
	cfg, diags := hclspec.Load(m.Dir, opts)
	if len(diags) > 0 {
		var files map[string]*hcl.File
		if cfg != nil {
			files = cfg.Files
		}
		m.printDiags(files, diags)
	}
	if diags.HasErrors() {
		return nil, errSilent
	}
	return cfg, nil
}

// quietConfig loads the configuration for what a saved plan does not keep
// (sensitive provider arguments); nil when it does not load.
func (m *Meta) quietConfig() *hclspec.Config {
	cfg, diags := hclspec.Load(m.Dir, hclspec.LoadOptions{Environ: os.Environ(), ProviderSchemas: m.Registry.Schemas()})
	if diags.HasErrors() {
		return nil
	}
	return cfg
}

func (m *Meta) printDiags(files map[string]*hcl.File, diags hcl.Diagnostics) {
	files, diags = relativeDiags(m.Dir, files, diags)
	if m.json {
		for _, d := range diags {
			m.jsonView().Diagnostic(hclspec.NewJSONDiagnostic(d, files))
		}
		return
	}
	if m.compactWarnings && !diags.HasErrors() {
		for _, d := range diags {
			where := ""
			if d.Subject != nil {
				where = fmt.Sprintf(" (%s line %d)", d.Subject.Filename, d.Subject.Start.Line)
			}
			fmt.Fprintf(m.Stderr, "%s %s%s\n", m.warningPrefix(), d.Summary, where)
		}
		return
	}
	width := uint(100)
	if err := hclspec.DiagnosticsText(m.Stderr, files, diags, m.Color, width); err != nil {
		fmt.Fprintf(m.Stderr, "Error: %v\n", err)
	}
}

// readState reads the state from the backend; a missing state is
// returned as nil.
func (m *Meta) readState() (*state.State, error) {
	be, err := m.backend()
	if err != nil {
		return nil, err
	}
	return be.Read(m.Ctx)
}

// lock takes the backend's state lock for a command. With enabled false
// (-lock=false) it takes none and returns a lock whose Unlock does nothing.
func (m *Meta) lock(command string, enabled bool, timeout time.Duration) (state.Unlocker, error) {
	if !enabled {
		return noLock{}, os.MkdirAll(filepath.Join(m.Dir, dataDir), 0o700)
	}
	be, err := m.backend()
	if err != nil {
		return nil, err
	}
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		who += "@" + h
	}
	if err := os.MkdirAll(filepath.Join(m.Dir, dataDir), 0o700); err != nil {
		return nil, err
	}
	return be.Lock(m.Ctx, state.LockInfo{PID: os.Getpid(), Command: "skyward " + command, Who: who, Created: time.Now().UTC(),
		Operation: command, Version: Version}, timeout)
}

// liveState is st with what its providers say now, read with one list
// per provider and written nowhere: the SSH endpoints nodes have now (a
// restarted container has a new port), nodes stopped (attribute running =
// false) and nodes gone (dropped). When a provider cannot be asked, the
// recorded state is returned, with a warning.
func (m *Meta) liveState(st *state.State) *state.State {
	if st == nil || st.Lineage == "" || len(st.Resources) == 0 {
		return st
	}
	provs, err := m.buildProviders(m.providerConfigs(nil, st), m.quietConfig())
	if err == nil {
		ctx, cancel := context.WithTimeout(m.Ctx, 15*time.Second)
		defer cancel()
		var live *state.State
		if live, _, err = planner.Refresh(ctx, st, provs); err == nil {
			return live
		}
	}
	fmt.Fprintf(m.Stderr, "Warning: cannot ask the providers for the nodes' current addresses (%v); using the recorded ones.\n", err)
	return st
}

// noLock is the lock of -lock=false.
type noLock struct{}

func (noLock) Unlock() error { return nil }

// buildProviders builds a provider for every address in cfgs. Sensitive
// arguments, which plans and state never keep, come from the provider
// blocks of cfg when it has them (cfg may be nil).
func (m *Meta) buildProviders(cfgs map[string]planner.ProviderConfig, cfg *hclspec.Config) (map[string]providers.Provider, error) {
	out := map[string]providers.Provider{}
	for addr, pc := range cfgs {
		f, ok := m.Registry.Lookup(pc.Type)
		if !ok {
			return nil, fmt.Errorf("provider %s: unknown provider type %q", addr, pc.Type)
		}
		secrets := cty.NilVal
		if cfg != nil {
			if p, ok := cfg.Providers[addr]; ok && p.Type == pc.Type {
				secrets = p.Config
			}
		}
		v, err := planner.ProviderValue(f, pc, secrets)
		if err != nil {
			return nil, fmt.Errorf("provider %s: %w", addr, err)
		}
		p, err := f.New(v)
		if err != nil {
			return nil, fmt.Errorf("provider %s: %w", addr, err)
		}
		out[addr] = p
	}
	return out, nil
}

// providerConfigs returns the configuration of every provider the config
// declares or uses, and of every provider the state's pools were created
// with that the config no longer has.
func (m *Meta) providerConfigs(cfg *hclspec.Config, st *state.State) map[string]planner.ProviderConfig {
	out := map[string]planner.ProviderConfig{}
	if cfg != nil {
		for addr, p := range cfg.Providers {
			f, _ := m.Registry.Lookup(p.Type)
			out[addr] = planner.NewProviderConfig(p, f)
		}
	}
	if st != nil {
		for _, r := range st.Resources {
			if _, ok := out[r.Provider]; ok {
				continue
			}
			if pc, err := planner.ProviderFromState(st, r.Pool); err == nil {
				out[r.Provider] = pc
			}
		}
	}
	return out
}

// agentBinary returns the static skyward binary to copy onto nodes:
// SKYWARD_AGENT_BINARY, else this executable.
func agentBinary() (string, error) {
	path := os.Getenv("SKYWARD_AGENT_BINARY")
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("find the skyward binary to copy to nodes: %w", err)
		}
		path = exe
	}
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("agent binary %s: not a Linux executable (%v); set SKYWARD_AGENT_BINARY to a static linux build of skyward", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("agent binary %s is dynamically linked and cannot run on nodes; install a static skyward "+
				"(make install, or CGO_ENABLED=0 go install github.com/skyward-sh/skyward@latest) or set SKYWARD_AGENT_BINARY to a static build", path)
		}
	}
	if agent.SumCacheDir == "" {
		if d, err := os.UserCacheDir(); err == nil {
			agent.SumCacheDir = filepath.Join(d, "skyward", "sums")
		}
	}
	// Every node needs the binary's sum; have it ready by then.
	go agent.FileSum(path)
	return path, nil
}

// poolValues builds the `pool.NAME` values of expressions from state.
func poolValues(st *state.State) map[string]cty.Value {
	if st == nil {
		return nil
	}
	nodes := map[string][]cty.Value{}
	for _, r := range st.Resources {
		if r.Type != string(providers.KindNode) || r.Index == nil || strings.Contains(r.Address, "#") {
			continue
		}
		str := func(k string) cty.Value {
			s, _ := r.Attributes[k].(string)
			return cty.StringVal(s)
		}
		port := cty.NumberIntVal(0)
		if s, _ := r.Attributes["ssh_port"].(string); s != "" {
			var n int64
			fmt.Sscanf(s, "%d", &n)
			port = cty.NumberIntVal(n)
		}
		nodes[r.Pool] = append(nodes[r.Pool], cty.ObjectVal(map[string]cty.Value{
			"id": cty.StringVal(r.ID), "index": cty.NumberIntVal(int64(*r.Index)),
			"private_ip": str("private_ip"), "public_ip": str("public_ip"),
			"ssh_host": str("ssh_host"), "ssh_port": port, "ssh_user": str("ssh_user"),
		}))
	}
	out := map[string]cty.Value{}
	for pool, ns := range nodes {
		out[pool] = cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(pool), "nodes": cty.TupleVal(ns)})
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// relativeDiags names files relative to the working directory, as
// Terraform does ("on main.sky.hcl line 2").
func relativeDiags(dir string, files map[string]*hcl.File, diags hcl.Diagnostics) (map[string]*hcl.File, hcl.Diagnostics) {
	rel := func(name string) string {
		if r, err := filepath.Rel(dir, name); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
		return name
	}
	relRange := func(r *hcl.Range) *hcl.Range {
		if r == nil {
			return nil
		}
		c := *r
		c.Filename = rel(c.Filename)
		return &c
	}
	outFiles := make(map[string]*hcl.File, len(files))
	for name, f := range files {
		outFiles[rel(name)] = f
	}
	out := make(hcl.Diagnostics, len(diags))
	for i, d := range diags {
		c := *d
		c.Subject, c.Context = relRange(d.Subject), relRange(d.Context)
		out[i] = &c
	}
	return outFiles, out
}
