package executor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/skyward-sh/skyward/agent"
	"github.com/skyward-sh/skyward/cluster"
	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/planner"
	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/state"
)

// joinTimeout bounds the wait for a node's agent to join the head.
const joinTimeout = 2 * time.Minute

// bringUp takes a node that exists on its provider through the phases the
// pipeline shares across providers: connecting (SSH with the pinned host
// key), bootstrapping (agent binary, then the image recipe), starting (the
// agent daemon) and joining (the head accepted it). bake says whether node
// 0 may be snapshotted for its recipe after the bootstrap.
//
// Every step is idempotent, so when the SSH connection drops the node is
// reconnected (with a backoff, up to reconnects times) and brought up
// again from the start.
func (w *walk) bringUp(ctx context.Context, p providers.Provider, c *planner.Change, rec *state.Resource, opt bringUpOpts) error {
	for attempt := 0; ; attempt++ {
		lost, err := w.bringUpOnce(ctx, p, c, rec, opt)
		// What a lost attempt left on the node is not known.
		opt.fresh = false
		if err == nil || !lost || attempt == reconnects || ctx.Err() != nil {
			return err
		}
		delay := w.e.reconnectDelay() << attempt
		w.e.emit(Event{Type: NodePhase, Address: c.Address, Op: planner.OpCreate, Action: c.Action, Phase: "connecting",
			Detail: fmt.Sprintf("connection lost (%v); reconnecting in %s", err, delay)})
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
}

// bringUpOpts are the facts about a node that spare bringUp some steps.
type bringUpOpts struct {
	// bake: node 0 may be snapshotted for its recipe after the bootstrap.
	bake bool
	// fresh: the provider has just created the node, so no agent runs on
	// it, and a provider that InstallsAgent has put the current binary
	// there.
	fresh bool
	// prebaked: the node started from a prebaked image, which may hold a
	// binary already.
	prebaked bool
}

// reconnects bounds how often a node whose SSH connection dropped is
// reconnected during one bring-up.
const reconnects = 3

func (e *Executor) reconnectDelay() time.Duration {
	if e.ReconnectDelay > 0 {
		return e.ReconnectDelay
	}
	return 500 * time.Millisecond
}

// bringUpOnce is one attempt of bringUp; lost reports whether it failed
// because the SSH connection ended.
func (w *walk) bringUpOnce(ctx context.Context, p providers.Provider, c *planner.Change, rec *state.Resource, opt bringUpOpts) (lost bool, err error) {
	cl, err := w.connect(ctx, p, c, rec)
	if err != nil {
		return false, err
	}
	if *c.Index == 0 && w.poolSize(c.Pool) > 1 {
		// The pool's workers announce themselves over it: no dial of
		// their own once the head's agent runs.
		w.shareHead(c.Pool, cl)
	} else {
		defer cl.Close()
	}
	err = w.bringUpOn(ctx, cl, p, c, rec, opt)
	// The connection's end is noticed a moment after the call that failed
	// on it.
	for i := 0; err != nil && i < 10; i++ {
		if cl.Lost() {
			return true, err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false, err
}

// bringUpOn runs bringUp's steps after connecting, over cl.
func (w *walk) bringUpOn(ctx context.Context, cl *cluster.Client, p providers.Provider, c *planner.Change, rec *state.Resource, opt bringUpOpts) error {
	var err error
	w.phase(c, "bootstrapping")
	newBinary := false
	switch {
	case w.e.AgentBinary == "":
	case opt.fresh && p.Capabilities().InstallsAgent:
		// The provider put the binary there with its sum.
	case opt.fresh && !opt.prebaked:
		if err = cluster.InstallAgent(ctx, cl, w.e.AgentBinary); err != nil {
			return err
		}
		newBinary = true
	default:
		if newBinary, err = cluster.EnsureAgent(ctx, cl, w.e.AgentBinary); err != nil {
			return err
		}
	}
	recipe, err := w.recipe(c)
	if err != nil {
		return err
	}
	token, err := PoolToken(w.e.Keys, c.Pool)
	if err != nil {
		return fmt.Errorf("%s: %w", c.Address, err)
	}
	// A node just created whose head's address is known starts its agent
	// in the bootstrap's own command, once every phase is done; a head
	// that is baked first cannot.
	head, merged := "", false
	if opt.fresh && !(opt.bake && *c.Index == 0 && bakes(p, c)) {
		head, merged = w.knownHeadAddr(ctx, p, c, rec)
	}
	// Waits on the head end when this apply's step for the head fails.
	hctx, hcancel := context.WithCancel(ctx)
	defer hcancel()
	headFailed := w.headFailed(c)
	if headFailed != nil {
		go func() {
			select {
			case <-headFailed:
				hcancel()
			case <-hctx.Done():
			}
		}()
	}
	headErr := func(err error) error {
		select {
		case <-headFailed:
			return w.headErr(c, providers.NodeAddress(c.Pool, 0))
		default:
		}
		return err
	}
	// A worker is admitted by the head only once the controller has told
	// the head its address, and it is ready when the head lists it.
	// The announcement runs while the node's agent starts: the agent
	// retries its join until the head admits it.
	var headCl *cluster.Client
	addr, _ := rec.Attributes["private_ip"].(string)
	type announced struct {
		cl  *cluster.Client
		err error
	}
	var (
		announceOnce sync.Once
		announcing   chan announced // set once the announcement has started
		received     bool
	)
	startAnnounce := func() {
		if *c.Index == 0 {
			return
		}
		announceOnce.Do(func() {
			ch := make(chan announced, 1)
			go func() {
				cl, err := w.announce(hctx, c, token, addr)
				ch <- announced{cl, err}
			}()
			announcing = ch
		})
	}
	defer func() {
		announceOnce.Do(func() {})          // none starts after this
		if announcing != nil && !received { // the agent did not start
			hcancel()
			<-announcing // its connection is the pool's, closed with the apply
		}
	}()
	agentConfig := func(head string) cluster.AgentConfig {
		return cluster.AgentConfig{
			Pool:        c.Pool,
			Node:        *c.Index,
			NumNodes:    w.poolSize(c.Pool),
			HeadAddr:    head,
			ClusterPort: agent.ClusterPort,
			ControlAddr: agent.ControlAddr,
			Token:       token,
			Concurrency: int(num(c.After, "concurrency")),
			Env:         stringMap(c.After["env"]),
			TTL:         stringAt(c.After, "ttl"),
			// A plan made before pools had a collections store setting
			// has no replicas: the default, one member on the head.
			Replicas: max(int(num(c.After, "replicas")), 1),
		}
	}
	bootstrapEvent := func(ev cluster.PhaseEvent) {
		w.e.emit(Event{Type: NodePhase, Address: c.Address, Op: planner.OpCreate, Action: c.Action,
			Phase: "bootstrapping", Bootstrap: &ev})
	}
	if merged {
		starting := func() {
			w.phase(c, "starting")
			startAnnounce()
		}
		if err := cluster.BootstrapAndStart(ctx, cl, recipe, agentConfig(head), bootstrapEvent, starting); err != nil {
			return err
		}
	} else {
		if err := cluster.Bootstrap(ctx, cl, recipe, bootstrapEvent); err != nil {
			return err
		}
		if opt.bake && *c.Index == 0 {
			w.bake(ctx, p, c, rec)
		}
		w.phase(c, "starting")
		if head, err = w.headAddr(ctx, p, c, rec); err != nil {
			return err
		}
		startAnnounce()
		// A fresh node has no agent to compare with: it is started at once.
		if err := cluster.StartAgent(ctx, cl, agentConfig(head), newBinary || opt.fresh); err != nil {
			return err
		}
	}
	if *c.Index == 0 {
		w.headUp(c.Pool)
	} else {
		startAnnounce() // started already, unless no line reported the agent's start
		a := <-announcing
		received = true
		if a.err != nil {
			return headErr(a.err)
		}
		headCl = a.cl // the pool's, closed with the apply
	}

	w.phase(c, "joining")
	jctx, cancel := context.WithTimeout(hctx, joinTimeout)
	defer cancel()
	if headCl == nil {
		_, err = cluster.WaitJoined(jctx, cl)
	} else {
		err = cluster.WaitMember(jctx, headCl, *c.Index, addr)
	}
	if err != nil {
		return headErr(fmt.Errorf("%s: join %s: %w", c.Address, head, err))
	}
	return nil
}

// headUpChan returns the channel closed once the agent of the pool's head
// has started in this apply.
func (w *walk) headUpChan(pool string) chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.headsUp == nil {
		w.headsUp = map[string]chan struct{}{}
	}
	ch, ok := w.headsUp[pool]
	if !ok {
		ch = make(chan struct{})
		w.headsUp[pool] = ch
	}
	return ch
}

// headUp says that the agent of the pool's head has started.
func (w *walk) headUp(pool string) {
	ch := w.headUpChan(pool)
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// announce connects to the head of the node's pool and tells its agent
// that the node has the private address addr. It returns the connection
// to the head, for the caller to wait on and close.
func (w *walk) announce(ctx context.Context, c *planner.Change, token, addr string) (*cluster.Client, error) {
	headAddr := providers.NodeAddress(c.Pool, 0)
	if addr == "" {
		return nil, fmt.Errorf("%s: the provider reported no private address", c.Address)
	}
	// A head this apply creates or updates is reached once its agent runs
	// (again): by then its host key is pinned, it is no longer being baked
	// (which moves its authorized keys aside for a moment) and a restart
	// of its agent is over.
	if hc := w.plan.Change(headAddr); hc != nil && hc.Action != planner.NoOp && hc.Action != planner.Delete {
		up := w.headUpChan(c.Pool)
		err := idle(ctx, func() error {
			select {
			case <-up:
				return nil
			case <-ctx.Done():
				return fmt.Errorf("%s: waiting for the head %s: %w", c.Address, headAddr, ctx.Err())
			}
		})
		if err != nil {
			return nil, err
		}
	}
	r := w.get(headAddr)
	if r == nil {
		return nil, fmt.Errorf("%s: the head %s is not in the state", c.Address, headAddr)
	}
	signer, err := PoolSigner(w.e.Keys, c.Pool)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Address, err)
	}
	ep, err := NodeEndpoint(r, signer)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Address, err)
	}
	actx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	hcl, err := w.headClient(actx, c.Pool, ep)
	if err != nil {
		return nil, fmt.Errorf("%s: reach the head %s: %w", c.Address, headAddr, err)
	}
	if err := cluster.AnnounceMember(actx, hcl, token, *c.Index, addr, w.poolSize(c.Pool)); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Address, err)
	}
	return hcl, nil
}

// headConn is a connection to a pool's head, dialed once for its workers.
type headConn struct {
	once sync.Once
	cl   *cluster.Client
	err  error
}

// headClient returns the connection to the head of pool at ep that the
// pool's workers share in this apply (closed when the apply ends), dialing
// it for the first of them; one that was lost is dialed again.
func (w *walk) headClient(ctx context.Context, pool string, ep cluster.Endpoint) (*cluster.Client, error) {
	for attempt := 0; ; attempt++ {
		w.mu.Lock()
		if w.heads == nil {
			w.heads = map[string]*headConn{}
		}
		h := w.heads[pool]
		if h == nil {
			h = &headConn{}
			w.heads[pool] = h
		}
		w.mu.Unlock()
		h.once.Do(func() {
			// Not the first worker's context: its end must not fail the
			// others.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), joinTimeout)
			defer cancel()
			h.cl, h.err = cluster.WaitDial(dctx, ep, 50*time.Millisecond)
		})
		if h.err != nil {
			return nil, h.err
		}
		if !h.cl.Lost() || attempt == reconnects {
			return h.cl, nil
		}
		w.mu.Lock()
		if w.heads[pool] == h {
			delete(w.heads, pool)
			w.lostHeads = append(w.lostHeads, h)
		}
		w.mu.Unlock()
	}
}

// shareHead makes cl, a connection to the head of pool, the one its
// workers share (see headClient); the walk closes it when the apply ends.
func (w *walk) shareHead(pool string, cl *cluster.Client) {
	h := &headConn{cl: cl}
	h.once.Do(func() {})
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.heads == nil {
		w.heads = map[string]*headConn{}
	}
	if old := w.heads[pool]; old != nil {
		w.lostHeads = append(w.lostHeads, old)
	}
	w.heads[pool] = h
}

// closeHeads closes the connections to the heads.
func (w *walk) closeHeads() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range w.heads {
		w.lostHeads = append(w.lostHeads, h)
	}
	for _, h := range w.lostHeads {
		if h.cl != nil {
			h.cl.Close()
		}
	}
	w.heads, w.lostHeads = nil, nil
}

// recipe is the bootstrap recipe of a node's image, from its desired
// attributes.
func (w *walk) recipe(c *planner.Change) (cluster.Recipe, error) {
	excl, err := hclspec.NewExcludes(stringList(c.After["excludes"]))
	if err != nil {
		return cluster.Recipe{}, fmt.Errorf("%s: excludes: %w", c.Address, err)
	}
	pip := stringList(c.After["pip"])
	var local []string
	for _, item := range pip {
		if hclspec.IsLocalPip(item) {
			local = append(local, item)
		}
	}
	return cluster.Recipe{
		Env:      stringMap(c.After["env"]),
		Apt:      stringList(c.After["apt"]),
		Pip:      pip,
		LocalPip: local,
		Setup:    stringList(c.After["setup"]),
		Includes: stringList(c.After["includes"]),
		Exclude:  excl,
		Dir:      w.e.ConfigDir,
	}, nil
}

// bakeKey identifies what a prebaked image holds on top of its provider's
// base image: the recipe's apt and pip (with the contents of local pip
// files).
func bakeKey(after map[string]any) string {
	b, _ := json.Marshal([]any{after["apt"], after["pip"], after["pip_files_hash"]})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// hasPackages reports whether a node's recipe installs anything worth
// baking.
func hasPackages(after map[string]any) bool {
	return len(stringList(after["apt"])) > 0 || len(stringList(after["pip"])) > 0
}

// bakedImage returns the prebaked image for the node's recipe, or "".
func (w *walk) bakedImage(ctx context.Context, p providers.Provider, c *planner.Change) string {
	b, ok := p.(providers.Baker)
	if !ok || !hasPackages(c.After) {
		return ""
	}
	img, found, err := b.BakedImage(ctx, bakeKey(c.After))
	if err != nil || !found {
		return ""
	}
	return img
}

// bakes reports whether p snapshots nodes of c's recipe: a Baker, for a
// recipe with packages to spare later nodes.
func bakes(p providers.Provider, c *planner.Change) bool {
	_, ok := p.(providers.Baker)
	return ok && hasPackages(c.After)
}

// bake snapshots node 0 after its bootstrap so that later nodes with the
// same recipe skip apt and pip; the provider keeps the node's secrets out
// of the image. A failure only costs the speed-up, so it is reported and
// not returned.
func (w *walk) bake(ctx context.Context, p providers.Provider, c *planner.Change, rec *state.Resource) {
	if !bakes(p, c) {
		return
	}
	b := p.(providers.Baker)
	key := bakeKey(c.After)
	if _, found, err := b.BakedImage(ctx, key); err != nil || found {
		return
	}
	obj := providers.Object{Kind: providers.KindNode, Address: rec.Address, ID: rec.ID, Lineage: w.st.Lineage}
	img, err := b.Bake(ctx, obj, key)
	detail := "prebaked as " + img
	if err != nil {
		detail = fmt.Sprintf("prebake skipped: %v", err)
	}
	w.e.emit(Event{Type: NodePhase, Address: c.Address, Op: planner.OpCreate, Action: c.Action,
		Phase: "bootstrapping", Detail: detail})
}

// headAddr is the address of node 0 of the node's pool where the other
// nodes join it: its private address when the provider's nodes share a
// private network or the head reports one all the same (see
// providers.Capabilities.PrivateNetwork), else its public one. When this
// apply creates node 0, wait (without holding a parallelism slot) until
// its new record is in the state, and fail if its step fails.
func (w *walk) headAddr(ctx context.Context, p providers.Provider, c *planner.Change, rec *state.Resource) (string, error) {
	kind := "private"
	if !p.Capabilities().PrivateNetwork {
		kind = "public"
	}
	joinIP := w.joinIP(p)
	if *c.Index == 0 {
		if ip := joinIP(rec); ip != "" {
			return ip, nil
		}
		if w.poolSize(c.Pool) == 1 {
			return "127.0.0.1", nil // a head of its own: nothing joins it over the network
		}
		return "", fmt.Errorf("%s: the provider reported no %s address for the head", c.Address, kind)
	}
	head := providers.NodeAddress(c.Pool, 0)
	creating := w.plans(head)
	usable := func() string { return w.usableHeadIP(c, joinIP) }
	if ip := usable(); ip != "" {
		return ip, nil
	}
	if !creating {
		return "", fmt.Errorf("%s: the head %s has no %s address in the state", c.Address, head, kind)
	}
	headDone := w.done[string(planner.OpCreate)+" "+head]
	var ip string
	err := idle(ctx, func() error {
		for {
			// Taken before looking, so that a save in between is not
			// missed.
			changed := w.changes()
			if ip = usable(); ip != "" {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: waiting for the head %s: %w", c.Address, head, ctx.Err())
			case <-headDone:
				if ip = usable(); ip != "" {
					return nil
				}
				return w.headErr(c, head)
			case <-changed:
			}
		}
	})
	return ip, err
}

// joinIP returns the address a node of provider p is joined at: its
// private one, or where nodes share no private network, its public one
// when it has no private one.
func (w *walk) joinIP(p providers.Provider) func(*state.Resource) string {
	shared := p.Capabilities().PrivateNetwork
	return func(r *state.Resource) string {
		ip, _ := r.Attributes["private_ip"].(string)
		if ip == "" && !shared {
			ip, _ = r.Attributes["public_ip"].(string)
		}
		return ip
	}
}

// usableHeadIP is the address (joinIP) of the worker c's head, once the
// state holds the head this apply brings up; "" until then.
func (w *walk) usableHeadIP(c *planner.Change, joinIP func(*state.Resource) string) string {
	head := providers.NodeAddress(c.Pool, 0)
	r := w.get(head)
	if r == nil {
		return ""
	}
	if hc := w.plan.Change(head); w.plans(head) && r.ID == hc.PriorID {
		return ""
	}
	return joinIP(r)
}

// knownHeadAddr is headAddr when it needs no wait: ok is false while a
// worker's head has no address in the state yet.
func (w *walk) knownHeadAddr(ctx context.Context, p providers.Provider, c *planner.Change, rec *state.Resource) (string, bool) {
	if *c.Index > 0 && w.usableHeadIP(c, w.joinIP(p)) == "" {
		return "", false
	}
	ip, err := w.headAddr(ctx, p, c, rec)
	return ip, err == nil
}

// headErr says why a node cannot join a head this apply did not bring up.
func (w *walk) headErr(c *planner.Change, head string) error {
	w.mu.Lock()
	failed := slices.Contains(w.res.Failed, string(planner.OpCreate)+" "+head)
	w.mu.Unlock()
	if failed {
		return fmt.Errorf("%s: the head %s failed", c.Address, head)
	}
	return fmt.Errorf("%s: the head %s was not created", c.Address, head)
}

// headFailed returns a channel closed when this apply's create step of
// the node's head has finished without success; nil when the apply does
// not create the head or the node is the head.
func (w *walk) headFailed(c *planner.Change) <-chan struct{} {
	head := providers.NodeAddress(c.Pool, 0)
	if *c.Index == 0 || !w.plans(head) {
		return nil
	}
	id := string(planner.OpCreate) + " " + head
	done := w.done[id]
	if done == nil {
		return nil
	}
	ch := make(chan struct{})
	go func() {
		<-done
		if !w.succeeded(id) {
			close(ch)
		}
	}()
	return ch
}

// plans reports whether the plan being applied creates addr.
func (w *walk) plans(addr string) bool {
	c := w.plan.Change(addr)
	return c != nil && (c.Action == planner.Create || c.Action == planner.DeleteThenCreate)
}

// poolSize is the number of nodes the pool has once the plan is applied.
func (w *walk) poolSize(pool string) int {
	n := 0
	for _, c := range w.plan.Changes {
		if c.Pool == pool && c.Index != nil && c.After != nil {
			n++
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.st.Resources {
		if r.Pool == pool && r.Index != nil && w.plan.Change(r.Address) == nil {
			n++
		}
	}
	return n
}

// CheckAgents asks the agent of every ready node in st whether it runs,
// over SSH, a few nodes at a time, and returns the addresses of nodes whose
// agent is down or that cannot be reached.
func CheckAgents(ctx context.Context, st *state.State, keys state.KeyStore) map[string]error {
	out := map[string]error{}
	type result struct {
		addr string
		err  error
	}
	var nodes []*state.Resource
	for _, r := range st.Resources {
		if r.Type == string(providers.KindNode) && r.Status == state.StatusReady && r.Attributes["running"] != false {
			nodes = append(nodes, r)
		}
	}
	results := make(chan result, len(nodes))
	sem := make(chan struct{}, 10)
	for _, r := range nodes {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			results <- result{r.Address, checkAgent(ctx, r, keys)}
		}()
	}
	for range nodes {
		if res := <-results; res.err != nil {
			out[res.addr] = res.err
		}
	}
	return out
}

func checkAgent(ctx context.Context, r *state.Resource, keys state.KeyStore) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl, err := DialNode(cctx, keys, r)
	if err != nil {
		return err
	}
	defer cl.Close()
	_, err = cluster.AgentStatus(cctx, cl)
	return err
}

// IsAgentDown reports whether CheckAgents' error says the agent is down
// (rather than the node being unreachable).
func IsAgentDown(err error) bool { return errors.Is(err, cluster.ErrAgentDown) }

func num(m map[string]any, k string) float64 { f, _ := m[k].(float64); return f }

func stringAt(m map[string]any, k string) string { s, _ := m[k].(string); return s }

func stringList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func stringMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := make(map[string]string, len(m))
	for k, e := range m {
		if s, ok := e.(string); ok {
			out[k] = s
		}
	}
	return out
}
