package executor_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/crypto/ssh"

	"github.com/skyward-sh/skyward/agent"
	"github.com/skyward-sh/skyward/executor"
	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/internal/skytest"
	"github.com/skyward-sh/skyward/planner"
	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/state"
)

// applyTimeout bounds every Apply in these tests, so that a hang fails the
// test instead of the whole run.
const applyTimeout = 5 * time.Second

var errBoom = errors.New("boom")

// recordingWriter counts state writes and records, per address, the
// statuses the written states went through ("removed" once gone).
type recordingWriter struct {
	w       executor.StateWriter
	mu      sync.Mutex
	n       int
	last    map[string]string
	history map[string][]string
}

func (r *recordingWriter) Write(s *state.State) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	seen := map[string]bool{}
	for _, res := range s.Resources {
		seen[res.Address] = true
		if r.last[res.Address] != string(res.Status) {
			r.last[res.Address] = string(res.Status)
			r.history[res.Address] = append(r.history[res.Address], string(res.Status))
		}
	}
	for addr := range r.last {
		if !seen[addr] {
			delete(r.last, addr)
			r.history[addr] = append(r.history[addr], "removed")
		}
	}
	return r.w.Write(s)
}

func (r *recordingWriter) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// phaseLog records the NodePhase phases of each address, without
// consecutive repeats.
type phaseLog struct {
	mu     sync.Mutex
	phases map[string][]string
}

func (l *phaseLog) event(ev executor.Event) {
	if ev.Type != executor.NodePhase {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ps := l.phases[ev.Address]
	if len(ps) == 0 || ps[len(ps)-1] != ev.Phase {
		l.phases[ev.Address] = append(ps, ev.Phase)
	}
}

// of returns the phases addr went through.
func (l *phaseLog) of(addr string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.phases[addr])
}

type harness struct {
	t      *testing.T
	prov   *fakeProvider
	file   *state.File
	keys   *state.Keys
	writes *recordingWriter
	phases *phaseLog
	exec   *executor.Executor
}

func newHarness(t *testing.T) *harness {
	dir := t.TempDir()
	h := &harness{
		t:      t,
		prov:   newFakeProvider(t),
		file:   &state.File{Dir: filepath.Join(dir, "state")},
		keys:   &state.Keys{Dir: filepath.Join(dir, "keys")},
		phases: &phaseLog{phases: map[string][]string{}},
	}
	h.writes = &recordingWriter{w: h.file, last: map[string]string{}, history: map[string][]string{}}
	h.exec = &executor.Executor{
		Providers:      map[string]providers.Provider{"container": h.prov},
		State:          h.writes,
		Keys:           h.keys,
		Events:         h.phases.event,
		SSHTimeout:     3 * time.Second,
		ReconnectDelay: 10 * time.Millisecond,
	}
	return h
}

// apply plans cfg against prior and applies the plan.
func (h *harness) apply(cfg *hclspec.Config, prior *state.State, opts planner.Options) (*planner.Plan, *executor.Result, error) {
	h.t.Helper()
	p, err := planner.Build(cfg, prior, skytest.Registry(), opts)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	res, err := h.exec.Apply(ctx, p, prior)
	if ctx.Err() != nil {
		h.t.Errorf("Apply was still running after %s (err: %v)", applyTimeout, err)
	}
	if res == nil {
		h.t.Fatalf("Apply returned no result (err: %v)", err)
	}
	return p, res, err
}

// mustApply applies cfg to prior and fails the test unless every step
// finished.
func (h *harness) mustApply(cfg *hclspec.Config, prior *state.State) *state.State {
	h.t.Helper()
	_, res, err := h.apply(cfg, prior, planner.Options{})
	if err != nil {
		h.t.Fatalf("setup apply: %v", err)
	}
	return res.State
}

// checkFile fails the test unless the state file holds st.
func (h *harness) checkFile(st *state.State) {
	h.t.Helper()
	got, err := h.file.Read()
	if err != nil {
		h.t.Fatal(err)
	}
	if got == nil {
		// Nothing finished, so nothing was written.
		if len(st.Resources) > 0 || h.writes.count() > 0 {
			h.t.Errorf("no state file after %d writes; the returned state holds %v", h.writes.count(), statuses(st))
		}
		return
	}
	if diff := cmp.Diff(st, got, cmpopts.EquateEmpty()); diff != "" {
		h.t.Errorf("state file differs from the returned state (-returned +file):\n%s", diff)
	}
}

func stepIDs(p *planner.Plan, op planner.Op, kind string) []string {
	var ids []string
	for _, s := range p.Steps() {
		if (op == "" || s.Op == op) && (kind == "" || s.Change.Type == kind) {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// statuses maps the addresses in st to their status.
func statuses(st *state.State) map[string]string {
	out := map[string]string{}
	for _, r := range st.Resources {
		out[r.Address] = string(r.Status)
	}
	return out
}

func str(r *state.Resource, k string) string {
	s, _ := r.Attributes[k].(string)
	return s
}

// index returns the position of the first entry matching, or -1.
func index(log []entry, phase, op, addr string) int {
	return slices.IndexFunc(log, func(e entry) bool { return e.Phase == phase && e.Op == op && e.Address == addr })
}

// ops lists the "op address" of the calls begun, sorted.
func ops(log []entry) []string {
	var out []string
	for _, e := range log {
		if e.Phase == "begin" {
			out = append(out, e.Op+" "+e.Address)
		}
	}
	slices.Sort(out)
	return out
}

var sortStrings = cmpopts.SortSlices(func(a, b string) bool { return a < b })

func TestApplyCreate(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		nodes int
	}{
		"one node":    {nodes: 1},
		"three nodes": {nodes: 3},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			p, res, err := h.apply(skytest.Config(tt.nodes, 1, "img:1"), state.New("lineage-1"), planner.Options{})
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			steps := stepIDs(p, "", "")
			if diff := cmp.Diff(steps, res.Done, sortStrings); diff != "" {
				t.Errorf("Done (-want +got):\n%s", diff)
			}
			if len(res.Failed)+len(res.Skipped) > 0 || res.Interrupted {
				t.Errorf("Failed %q, Skipped %q, Interrupted %v; want none", res.Failed, res.Skipped, res.Interrupted)
			}

			want := map[string]string{"pool.dev": "ready"}
			for i := range tt.nodes {
				want[providers.NodeAddress("dev", i)] = "ready"
			}
			if diff := cmp.Diff(want, statuses(res.State)); diff != "" {
				t.Fatalf("state (-want +got):\n%s", diff)
			}
			if res.State.Lineage != "lineage-1" {
				t.Errorf("lineage %q, want lineage-1", res.State.Lineage)
			}

			pool := res.State.Get("pool.dev")
			if got := str(pool, "network"); got != "net-dev" {
				t.Errorf("pool network %q, want the provider's net-dev", got)
			}
			if got := str(pool, "ssh_public_key"); !strings.HasPrefix(got, "ssh-ed25519 ") {
				t.Errorf("pool ssh_public_key %q, want an ed25519 key", got)
			}
			token, err := h.keys.Read("dev/token")
			if err != nil {
				t.Fatal(err)
			}
			head := res.State.Get("pool.dev.node[0]")
			for i := range tt.nodes {
				addr := providers.NodeAddress("dev", i)
				r := res.State.Get(addr)
				n := h.prov.node(r.ID)
				if n == nil {
					t.Fatalf("%s: ID %q is no node the provider created", addr, r.ID)
				}
				hk := str(r, "host_key")
				if !strings.HasPrefix(hk, "ssh-ed25519 ") || hk != n.hostKey {
					t.Errorf("%s: host_key %q, want the ed25519 key the node presents, %q", addr, hk, n.hostKey)
				}
				// The private half is kept under the keys directory.
				priv, err := h.keys.Read("dev/node-" + strconv.Itoa(i) + "/ssh_host_ed25519_key")
				if err != nil {
					t.Fatal(err)
				}
				signer, err := ssh.ParsePrivateKey(priv)
				if err != nil {
					t.Fatal(err)
				}
				if got := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))); got != hk {
					t.Errorf("%s: stored host key is %q, state pins %q", addr, got, hk)
				}
				if _, err := time.Parse(time.RFC3339, str(r, "created_at")); err != nil {
					t.Errorf("%s: created_at: %v", addr, err)
				}
				facts := planner.Facts(n.object())
				for _, k := range []string{"ssh_host", "ssh_port", "ssh_user", "private_ip"} {
					if str(r, k) != facts[k] || facts[k] == "" {
						t.Errorf("%s: %s = %q, want the provider's %q", addr, k, str(r, k), facts[k])
					}
				}
				if str(r, "host_key_source") != "installed" || str(r, "ssh_server") != "skyward" {
					t.Errorf("%s: host_key_source %q, ssh_server %q; want installed, skyward", addr, str(r, "host_key_source"), str(r, "ssh_server"))
				}
				if diff := cmp.Diff([]string{"pool.dev"}, r.Dependencies); diff != "" {
					t.Errorf("%s: dependencies (-want +got):\n%s", addr, diff)
				}
				// The record was saved while the node was brought up, then
				// again once ready.
				if diff := cmp.Diff([]string{"creating", "ready"}, h.writes.history[addr]); diff != "" {
					t.Errorf("%s: statuses written (-want +got):\n%s", addr, diff)
				}
				wantPhases := []string{"creating", "connecting", "bootstrapping", "starting", "joining", "ready"}
				if diff := cmp.Diff(wantPhases, h.phases.phases[addr]); diff != "" {
					t.Errorf("%s: phases (-want +got):\n%s", addr, diff)
				}
				// A new node's agent starts in its bootstrap's command; a
				// worker whose head had no address yet when it was
				// bootstrapped, in a command of its own.
				starts := n.agentStarts()
				if len(starts) != 1 || (i == 0 && starts[0] != "bootstrap") {
					t.Errorf("%s: agent starts %q, want one, in the bootstrap for the head", addr, starts)
				}
				// The workers announce themselves over the head's own
				// connection: every node takes one.
				if got := n.connections(); got != 1 {
					t.Errorf("%s: %d SSH connections, want 1", addr, got)
				}
				cfg, err := n.agentConfig()
				if err != nil {
					t.Fatalf("%s: agent config: %v", addr, err)
				}
				wantCfg := agent.Config{Pool: "dev", Node: i, NumNodes: tt.nodes, HeadAddr: str(head, "private_ip"),
					ClusterPort: agent.ClusterPort, ControlAddr: agent.ControlAddr, Token: string(token), Concurrency: 1, Replicas: 1}
				if diff := cmp.Diff(wantCfg, cfg, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("%s: agent config (-want +got):\n%s", addr, diff)
				}
				req := h.prov.resources[addr]
				if req.PoolObject == nil || req.PoolObject.Private["network"] != "net-dev" {
					t.Errorf("%s: Create got pool object %+v, want the pool's attributes", addr, req.PoolObject)
				}
				if req.Labels[providers.LabelLineage] != "lineage-1" || req.Labels[providers.LabelAddress] != addr {
					t.Errorf("%s: Create got labels %v", addr, req.Labels)
				}
			}

			h.checkFile(res.State)
			// One write for the pool, and for each node its "creating"
			// record and its "ready" one.
			if got, min := h.writes.count(), len(steps)+tt.nodes; got < min {
				t.Errorf("%d state writes, want at least %d", got, min)
			}
			if got := res.State.Serial; got != uint64(h.writes.count()) {
				t.Errorf("serial %d after %d writes from serial 0", got, h.writes.count())
			}
		})
	}
}

func TestApplyParallelism(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		parallelism      int
		wantMin, wantMax int // bounds of the provider calls seen at once
	}{
		"two at a time": {parallelism: 2, wantMin: 2, wantMax: 2},
		"ten at a time": {parallelism: 10, wantMin: 3, wantMax: 6},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.exec.Parallelism = tt.parallelism
			h.prov.delay["create node"] = 200 * time.Millisecond
			p, res, err := h.apply(skytest.Config(6, 1, "img:1"), state.New("lineage-1"), planner.Options{})
			if err != nil {
				t.Errorf("Apply: %v", err)
			}
			if got := h.prov.maxConcurrent(); got < tt.wantMin || got > tt.wantMax {
				t.Errorf("%d provider calls ran at once, want %d to %d", got, tt.wantMin, tt.wantMax)
			}
			if diff := cmp.Diff(stepIDs(p, "", ""), res.Done, sortStrings); diff != "" {
				t.Errorf("Done (-want +got):\n%s", diff)
			}
		})
	}
}

// TestApplyReconnects drops a node's SSH connections during its bootstrap:
// the node is reconnected and brought up from the start, up to a bound.
func TestApplyReconnects(t *testing.T) {
	t.Parallel()
	t.Run("twice", func(t *testing.T) {
		h := newHarness(t)
		h.prov.dropBootstrap["pool.dev.node[1]"] = 2
		_, res, err := h.apply(skytest.Config(2, 1, "img:1"), state.New("lineage-1"), planner.Options{})
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		want := []string{"creating", "connecting", "bootstrapping", "connecting", "bootstrapping", "connecting", "bootstrapping", "starting", "joining", "ready"}
		if diff := cmp.Diff(want, h.phases.of("pool.dev.node[1]")); diff != "" {
			t.Errorf("phases of pool.dev.node[1] (-want +got):\n%s", diff)
		}
		if got := statuses(res.State)["pool.dev.node[1]"]; got != "ready" {
			t.Errorf("pool.dev.node[1] is %q, want ready", got)
		}
	})
	t.Run("too often", func(t *testing.T) {
		h := newHarness(t)
		h.prov.dropBootstrap["pool.dev.node[1]"] = 100
		_, res, err := h.apply(skytest.Config(2, 1, "img:1"), state.New("lineage-1"), planner.Options{})
		if err == nil || !strings.Contains(err.Error(), "pool.dev.node[1]: bootstrap: ") {
			t.Fatalf("Apply: %v, want pool.dev.node[1]'s bootstrap error", err)
		}
		if n := strings.Count(strings.Join(h.phases.of("pool.dev.node[1]"), " "), "connecting"); n != 4 {
			t.Errorf("connected %d times, want 4 (1 + 3 reconnects)", n)
		}
		if got := statuses(res.State)["pool.dev.node[1]"]; got != "tainted" {
			t.Errorf("pool.dev.node[1] is %q, want tainted", got)
		}
	})
}

func TestApplyFailures(t *testing.T) {
	t.Parallel()
	all := []string{"pool.dev", "pool.dev.node[0]", "pool.dev.node[1]", "pool.dev.node[2]"}
	tests := map[string]struct {
		setup func(p *fakeProvider)
		// wantErr are substrings of the error; wantErrIs, if set, must be
		// in its chain.
		wantErr   []string
		wantErrIs error
		// wantNamed are the addresses the error names (as "addr:").
		wantNamed   []string
		wantStatus  map[string]string
		wantFailed  []string
		wantSkipped []string
		wantCreates []string
		// sshTimeout is the executor's, one second unless set.
		sshTimeout time.Duration
	}{
		"node create fails": {
			setup:       func(p *fakeProvider) { p.fail["create pool.dev.node[1]"] = errBoom },
			wantErr:     []string{"pool.dev.node[1]: create: boom"},
			wantErrIs:   errBoom,
			wantNamed:   []string{"pool.dev.node[1]"},
			wantStatus:  map[string]string{"pool.dev": "ready", "pool.dev.node[0]": "ready", "pool.dev.node[2]": "ready"},
			wantFailed:  []string{"create pool.dev.node[1]"},
			wantCreates: []string{"create pool.dev", "create pool.dev.node[0]", "create pool.dev.node[1]", "create pool.dev.node[2]"},
		},
		"node never answers SSH": {
			setup:       func(p *fakeProvider) { p.badPort["pool.dev.node[1]"] = true },
			wantErr:     []string{"pool.dev.node[1]: connect: "},
			wantNamed:   []string{"pool.dev.node[1]"},
			wantStatus:  map[string]string{"pool.dev": "ready", "pool.dev.node[0]": "ready", "pool.dev.node[1]": "tainted", "pool.dev.node[2]": "ready"},
			wantFailed:  []string{"create pool.dev.node[1]"},
			wantCreates: []string{"create pool.dev", "create pool.dev.node[0]", "create pool.dev.node[1]", "create pool.dev.node[2]"},
		},
		// The dial gives up on the reason the provider gives, long before
		// the SSH timeout (sshTimeout below).
		"node gone while connecting": {
			setup: func(p *fakeProvider) {
				p.badPort["pool.dev.node[1]"] = true
				p.gone["pool.dev.node[1]"] = true
			},
			sshTimeout:  time.Minute,
			wantErr:     []string{"pool.dev.node[1]: stopped while skyward waited for its SSH server: fake: read ", ": object not found"},
			wantErrIs:   providers.ErrNotFound,
			wantNamed:   []string{"pool.dev.node[1]"},
			wantStatus:  map[string]string{"pool.dev": "ready", "pool.dev.node[0]": "ready", "pool.dev.node[1]": "tainted", "pool.dev.node[2]": "ready"},
			wantFailed:  []string{"create pool.dev.node[1]"},
			wantCreates: []string{"create pool.dev", "create pool.dev.node[0]", "create pool.dev.node[1]", "create pool.dev.node[2]"},
		},
		"node bootstrap fails": {
			setup:       func(p *fakeProvider) { p.badBootstrap["pool.dev.node[1]"] = true },
			wantErr:     []string{"pool.dev.node[1]: bootstrap: setup: exit status 2", "setup: no such file"},
			wantNamed:   []string{"pool.dev.node[1]"},
			wantStatus:  map[string]string{"pool.dev": "ready", "pool.dev.node[0]": "ready", "pool.dev.node[1]": "tainted", "pool.dev.node[2]": "ready"},
			wantFailed:  []string{"create pool.dev.node[1]"},
			wantCreates: []string{"create pool.dev", "create pool.dev.node[0]", "create pool.dev.node[1]", "create pool.dev.node[2]"},
		},
		"pool create fails": {
			setup:       func(p *fakeProvider) { p.fail["create pool.dev"] = errBoom },
			wantErr:     []string{"pool.dev: create: boom"},
			wantErrIs:   errBoom,
			wantNamed:   []string{"pool.dev"},
			wantStatus:  map[string]string{},
			wantFailed:  []string{"create pool.dev"},
			wantSkipped: []string{"create pool.dev.node[0]", "create pool.dev.node[1]", "create pool.dev.node[2]"},
			wantCreates: []string{"create pool.dev"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.exec.SSHTimeout = time.Second
			if tt.sshTimeout > 0 {
				h.exec.SSHTimeout = tt.sshTimeout
			}
			tt.setup(h.prov)
			_, res, err := h.apply(skytest.Config(3, 1, "img:1"), state.New("lineage-1"), planner.Options{})
			if err == nil {
				t.Fatal("Apply succeeded, want an error")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if tt.wantErrIs != nil && !errors.Is(err, tt.wantErrIs) {
				t.Errorf("error %q does not wrap %q", err, tt.wantErrIs)
			}
			for _, addr := range all {
				named := strings.Count(err.Error(), addr+":") > 0
				if want := slices.Contains(tt.wantNamed, addr); named != want {
					t.Errorf("error names %s: %v, want %v; error:\n%v", addr, named, want, err)
				}
			}
			// The failure is reported once.
			if n := strings.Count(err.Error(), tt.wantErr[0]); n != 1 {
				t.Errorf("error reports %q %d times:\n%v", tt.wantErr[0], n, err)
			}
			if diff := cmp.Diff(tt.wantStatus, statuses(res.State), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("state (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantFailed, res.Failed, sortStrings, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Failed (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSkipped, res.Skipped, sortStrings, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Skipped (-want +got):\n%s", diff)
			}
			var creates []string
			for _, c := range ops(h.prov.takeLog()) {
				if strings.HasPrefix(c, "create ") {
					creates = append(creates, c)
				}
			}
			if diff := cmp.Diff(tt.wantCreates, creates); diff != "" {
				t.Errorf("Create calls (-want +got):\n%s", diff)
			}
			if res.Interrupted {
				t.Error("Interrupted is true, want false")
			}
			h.checkFile(res.State)
		})
	}
}

// A worker waits for its head's address; when the head cannot be created,
// the wait must end with the apply.
func TestApplyHeadCreateFails(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.prov.fail["create pool.dev.node[0]"] = errBoom
	start := time.Now()
	_, res, err := h.apply(skytest.Config(3, 1, "img:1"), state.New("lineage-1"), planner.Options{})
	if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "pool.dev.node[0]: create: boom") {
		t.Errorf("error %v, want pool.dev.node[0]'s create failure", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Apply took %s with the head's create failed at once", elapsed.Round(time.Millisecond))
	}
	got := statuses(res.State)
	if _, ok := got["pool.dev.node[0]"]; ok {
		t.Errorf("pool.dev.node[0] is in state as %q, want absent", got["pool.dev.node[0]"])
	}
	for _, addr := range []string{"pool.dev.node[1]", "pool.dev.node[2]"} {
		if got[addr] == "ready" || got[addr] == "creating" {
			t.Errorf("%s is %q without a head, want tainted or absent", addr, got[addr])
		}
	}
}

func TestApplyStop(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		// stopOn says which call's start closes Stop.
		stopOn func(op, addr string) bool
	}{
		"while the pool is created": {
			stopOn: func(op, addr string) bool { return op == "create" && addr == "pool.dev" },
		},
		"while the first node is created": {
			stopOn: func(op, addr string) bool { return op == "create" && strings.Contains(addr, ".node[") },
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			stop := make(chan struct{})
			h.exec.Stop = stop
			h.exec.Parallelism = 1
			h.prov.delay["create node"] = 100 * time.Millisecond
			h.prov.delay["create pool.dev"] = 100 * time.Millisecond
			var once sync.Once
			var stoppedIn string
			h.prov.onBegin = func(op, addr string) {
				if tt.stopOn(op, addr) {
					once.Do(func() {
						stoppedIn = addr
						close(stop)
					})
				}
			}
			p, res, err := h.apply(skytest.Config(3, 1, "img:1"), state.New("lineage-1"), planner.Options{})
			if stoppedIn == "" {
				t.Fatal("Stop was never closed")
			}
			if !res.Interrupted {
				t.Error("Interrupted is false")
			}
			// The step running when Stop closed finished; nothing else
			// started. A worker that was running cannot join a head that
			// was never created, so it fails and is tainted.
			t.Logf("Stop closed while %s was created", stoppedIn)
			worker := stoppedIn != "pool.dev" && stoppedIn != "pool.dev.node[0]"
			wantDone := slices.Compact([]string{"create pool.dev", "create " + stoppedIn})
			wantStatus := map[string]string{"pool.dev": "ready", stoppedIn: "ready"}
			var wantFailed []string
			if worker {
				wantDone, wantFailed = wantDone[:1], []string{"create " + stoppedIn}
				wantStatus[stoppedIn] = "tainted"
				want := stoppedIn + ": the head pool.dev.node[0] was not created"
				if !errors.Is(err, executor.ErrInterrupted) || !strings.Contains(err.Error(), want) {
					t.Errorf("error %v, want ErrInterrupted and %q", err, want)
				}
			} else if !errors.Is(err, executor.ErrInterrupted) || err.Error() != executor.ErrInterrupted.Error() {
				t.Errorf("error %v, want only ErrInterrupted", err)
			}
			if diff := cmp.Diff(wantFailed, res.Failed, sortStrings); diff != "" {
				t.Errorf("Failed (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantDone, res.Done, sortStrings); diff != "" {
				t.Errorf("Done (-want +got):\n%s", diff)
			}
			var wantSkipped []string
			for _, id := range stepIDs(p, "", "") {
				if !slices.Contains(wantDone, id) && !slices.Contains(wantFailed, id) {
					wantSkipped = append(wantSkipped, id)
				}
			}
			if diff := cmp.Diff(wantSkipped, res.Skipped, sortStrings); diff != "" {
				t.Errorf("Skipped (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(slices.Compact([]string{"create pool.dev", "create " + stoppedIn}), ops(h.prov.takeLog())); diff != "" {
				t.Errorf("provider calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantStatus, statuses(res.State)); diff != "" {
				t.Errorf("state (-want +got):\n%s", diff)
			}
			h.checkFile(res.State)
		})
	}
}

func TestApplyDestroy(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		nodes, parallelism int
	}{
		"one node":                   {nodes: 1},
		"three nodes":                {nodes: 3},
		"three nodes, one at a time": {nodes: 3, parallelism: 1},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			cfg := skytest.Config(tt.nodes, 1, "img:1")
			prior := h.mustApply(cfg, state.New("lineage-1"))
			h.prov.takeLog()
			h.exec.Parallelism = tt.parallelism

			p, res, err := h.apply(cfg, prior, planner.Options{Destroy: true})
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if diff := cmp.Diff(stepIDs(p, "", ""), res.Done, sortStrings); diff != "" {
				t.Errorf("Done (-want +got):\n%s", diff)
			}
			log := h.prov.takeLog()
			poolAt := index(log, "begin", "delete", "pool.dev")
			if poolAt < 0 {
				t.Fatalf("the pool was not deleted; calls: %v", log)
			}
			for i := range tt.nodes {
				addr := providers.NodeAddress("dev", i)
				if end := index(log, "end", "delete", addr); end < 0 || end > poolAt {
					t.Errorf("%s: delete ended at call %d, the pool's began at %d; want the node first", addr, end, poolAt)
				}
				if id := prior.Get(addr).ID; !h.prov.node(id).isClosed() {
					t.Errorf("%s: node %s still serves SSH", addr, id)
				}
			}
			if len(res.State.Resources) != 0 {
				t.Errorf("state holds %v, want nothing", statuses(res.State))
			}
			h.checkFile(res.State)
			if _, err := os.Stat(filepath.Join(h.keys.Dir, "dev")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the pool's keys are still there: %v", err)
			}
			if live := h.prov.live(); len(live) != 0 {
				t.Errorf("nodes left on the provider: %v", live)
			}
		})
	}
}

func TestApplyUpdateInPlace(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		before, after *hclspec.Config
		wantMemory    float64
	}{
		"memory":           {before: skytest.Config(2, 1, "img:1"), after: skytest.Config(2, 2, "img:1"), wantMemory: 2},
		"memory, one node": {before: skytest.Config(1, 1, "img:1"), after: skytest.Config(1, 4, "img:1"), wantMemory: 4},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			prior := h.mustApply(tt.before, state.New("lineage-1"))
			h.prov.takeLog()

			p, res, err := h.apply(tt.after, prior, planner.Options{})
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			want := stepIDs(p, planner.OpUpdate, "node")
			if len(want) != len(prior.Resources)-1 {
				t.Fatalf("plan updates %v, want every node", want)
			}
			if diff := cmp.Diff(want, ops(h.prov.takeLog())); diff != "" {
				t.Errorf("provider calls (-want +got):\n%s", diff)
			}
			for _, old := range prior.Resources {
				r := res.State.Get(old.Address)
				if r == nil {
					t.Fatalf("%s is gone from state", old.Address)
				}
				if r.ID != old.ID || r.Status != state.StatusReady {
					t.Errorf("%s: ID %q status %q, want %q ready", old.Address, r.ID, r.Status, old.ID)
				}
				if old.Type != "node" {
					continue
				}
				if got := r.Attributes["memory_gb"]; got != tt.wantMemory {
					t.Errorf("%s: memory_gb %v, want %v", old.Address, got, tt.wantMemory)
				}
				if got, want := str(r, "memory_limit"), strconv.FormatFloat(tt.wantMemory, 'g', -1, 64); got != want {
					t.Errorf("%s: provider fact memory_limit %q, want %q", old.Address, got, want)
				}
				for _, k := range []string{"host_key", "created_at", "private_ip"} {
					if str(r, k) != str(old, k) || str(r, k) == "" {
						t.Errorf("%s: %s %q, want it kept: %q", old.Address, k, str(r, k), str(old, k))
					}
				}
			}
			h.checkFile(res.State)
		})
	}
}

func TestApplyReplace(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		delay map[string]time.Duration
	}{
		"base image": {},
		// The workers' replacements are up before the old head is gone:
		// they must still join the new head.
		"base image, slow head delete": {delay: map[string]time.Duration{"delete pool.dev.node[0]": 300 * time.Millisecond}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			prior := h.mustApply(skytest.Config(2, 1, "img:1"), state.New("lineage-1"))
			h.prov.takeLog()
			for k, d := range tt.delay {
				h.prov.delay[k] = d
			}

			p, res, err := h.apply(skytest.Config(2, 1, "img:2"), prior, planner.Options{})
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if diff := cmp.Diff(stepIDs(p, "", "node"), res.Done, sortStrings); diff != "" {
				t.Errorf("Done (-want +got):\n%s", diff)
			}
			log := h.prov.takeLog()
			head := res.State.Get("pool.dev.node[0]")
			for i := range 2 {
				addr := providers.NodeAddress("dev", i)
				old, r := prior.Get(addr), res.State.Get(addr)
				deleted := slices.IndexFunc(log, func(e entry) bool {
					return e.Phase == "end" && e.Op == "delete" && e.Address == addr && e.ID == old.ID
				})
				created := index(log, "begin", "create", addr)
				if deleted < 0 || created < 0 || deleted > created {
					t.Errorf("%s: old node deleted at call %d, new one created at %d; want delete first. Calls: %v", addr, deleted, created, log)
				}
				if r == nil || r.Status != state.StatusReady {
					t.Fatalf("%s: %+v, want a ready node", addr, r)
				}
				if r.ID == old.ID {
					t.Errorf("%s: ID %q kept, want a new node", addr, r.ID)
				}
				if got, _ := r.Attributes["provider_config"].(map[string]any); got["image"] != "img:2" {
					t.Errorf("%s: provider_config %v, want image img:2", addr, got)
				}
				n := h.prov.node(r.ID)
				if hk := str(r, "host_key"); hk == str(old, "host_key") || hk != n.hostKey {
					t.Errorf("%s: host_key %q, want the new node's %q", addr, hk, n.hostKey)
				}
				if !h.prov.node(old.ID).isClosed() {
					t.Errorf("%s: the old node %s still serves SSH", addr, old.ID)
				}
				cfg, err := n.agentConfig()
				if err != nil {
					t.Fatalf("%s: agent config: %v", addr, err)
				}
				if want := str(head, "private_ip"); cfg.HeadAddr != want {
					t.Errorf("%s: agent joins head %q, want the new head's %q (the old head had %q)",
						addr, cfg.HeadAddr, want, str(prior.Get("pool.dev.node[0]"), "private_ip"))
				}
			}
			if got := len(h.prov.live()); got != 2 {
				t.Errorf("%d nodes on the provider, want 2", got)
			}
			h.checkFile(res.State)
		})
	}
}

// TestApplyJoinsReportedPrivateIP: on a provider whose nodes share no
// private network in general, the workers of a pool whose nodes report
// private addresses (a RunPod Instant Cluster) join the head at its
// private address, not its public one; every Create is told the pool's
// size.
func TestApplyJoinsReportedPrivateIP(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.prov.noSharedNetwork = true
	_, res, err := h.apply(skytest.Config(3, 1, "img:1"), state.New("lineage-1"), planner.Options{})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	head := res.State.Get("pool.dev.node[0]")
	headIP := str(head, "private_ip")
	if !strings.HasPrefix(headIP, "10.0.0.") || !strings.HasPrefix(str(head, "public_ip"), "203.0.113.") {
		t.Fatalf("head private_ip %q, public_ip %q", headIP, str(head, "public_ip"))
	}
	for i := 1; i < 3; i++ {
		r := res.State.Get(providers.NodeAddress("dev", i))
		cfg, err := h.prov.node(r.ID).agentConfig()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.HeadAddr != headIP {
			t.Errorf("node %d joins %q, want the head's private address %q", i, cfg.HeadAddr, headIP)
		}
	}
	for _, addr := range []string{"pool.dev", "pool.dev.node[0]", "pool.dev.node[2]"} {
		if got := h.prov.poolSizes[addr]; got != 3 {
			t.Errorf("%s: created with PoolSize %d, want 3", addr, got)
		}
	}
}
