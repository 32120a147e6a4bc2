package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skyward-sh/skyward/agent"
	"github.com/skyward-sh/skyward/executor"
	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/state"
)

// The collection commands (kv, counter, set, queue, barrier, lock) are what
// tasks run on a node to share state across the pool; `kv`, `counter`,
// `set` and `queue` also work from the controller, where they run on one of
// the pool's nodes over SSH.

// Exit codes of the collection commands.
const (
	exitNotFound = 2
	exitTimeout  = 124
)

// nodeRoot is skyward's directory on a node; tests set another.
var nodeRoot = agent.Root

// opTimeout bounds one operation that does not wait by design.
const opTimeout = 30 * time.Second

func collectionCommands() []command {
	return []command{
		{name: "kv", args: "put KEY VALUE [KEY VALUE]... | get KEY [KEY]... | del KEY | list [-prefix P]", synopsis: "Read and write the pool's key-value store",
			help: "Read and write the pool's key-value store. On a node (in a task) it reaches the store\n" +
				"directly; elsewhere it runs on a node of the applied pool (-pool, when there are several)\n" +
				"over SSH. get prints the values, one a line in the order asked; a missing key exits 2.\n" +
				"Several pairs or keys are several operations, sent at once. list prints KEY=VALUE lines.",
			run: collection("kv", runKV)},
		{name: "counter", args: "NAME incr [N] | decr [N] | get | reset", synopsis: "Change or read a pool-wide counter",
			help: "Change or read a pool-wide counter (it starts at 0); prints its value.", run: collection("counter", runCounter)},
		{name: "set", args: "NAME add|rm|has|list [MEMBER]", synopsis: "Change or read a pool-wide set",
			help: "Change or read a pool-wide set of strings. has exits 0 or 2; rm of a missing member exits 2.",
			run:  collection("set", runSet)},
		{name: "queue", args: "NAME put VALUE | get [-timeout D]", synopsis: "Put to or take from a pool-wide queue",
			help: "Put to or take from a pool-wide FIFO queue: every item is taken exactly once. get waits\n" +
				"for an item (up to -timeout, then exits 124).",
			run: collection("queue", runQueue)},
		{name: "barrier", args: "NAME -n N [-timeout D]", synopsis: "Wait until N tasks reach a barrier (on a node)",
			help: "Wait until N processes wait at barrier NAME, then release them all. Exits 124 after\n" +
				"-timeout (default 10m); when a waiter's node is lost, or a waiter gives up, every other\n" +
				"waiter fails at once, naming it. Runs on nodes only.",
			run: collection("barrier", runBarrier)},
		{name: "lock", args: "NAME [-timeout D] -- COMMAND...", synopsis: "Run a command holding a pool-wide lock (on a node)",
			help: "Take the pool-wide lock NAME (waiting up to -timeout, then exit 124), run COMMAND, give\n" +
				"the lock back and exit with COMMAND's exit code. A holder whose node is lost loses the\n" +
				"lock after 5s. Runs on nodes only.",
			run: collection("lock", runLock)},
	}
}

// collectionRun is the body of one collection command on a node.
type collectionRun func(m *Meta, s *agent.Store, args []string) error

// collection wraps a command: on a node it opens the store and runs body;
// elsewhere it runs the same command on a node of the pool, over SSH.
func collection(name string, body collectionRun) func(m *Meta, args []string) error {
	return func(m *Meta, args []string) error {
		for _, a := range args {
			if a == "--" {
				break
			}
			if a == "-h" || a == "--help" || a == "-help" {
				return helpRequest{}
			}
		}
		if _, err := os.Stat(nodeRoot + "/agent.json"); err != nil {
			if name == "barrier" || name == "lock" {
				return fmt.Errorf("%s runs on a pool's nodes, in a task (this machine is not one)", name)
			}
			return m.remoteCollection(name, args)
		}
		ctx, cancel := signal.NotifyContext(m.Ctx, os.Interrupt, syscall.SIGTERM)
		defer cancel()
		octx, ocancel := context.WithTimeout(ctx, opTimeout)
		s, err := agent.OpenStore(octx, nodeRoot)
		ocancel()
		if err != nil {
			return err
		}
		defer s.Close()
		mm := *m
		mm.Ctx = ctx
		return collectionErr(body(&mm, s, args))
	}
}

// timeoutError is a wait that ran out of its -timeout.
type timeoutError struct{ what string }

func (e timeoutError) Error() string { return e.what }

// notFoundError is a key or member that is not there.
type notFoundError struct{ what string }

func (e notFoundError) Error() string { return e.what }

// collectionErr prints what went wrong and maps it to the exit code.
func collectionErr(err error) error {
	var te timeoutError
	var nf notFoundError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &nf):
		fmt.Fprintln(os.Stderr, nf.what)
		return exitCodeError{exitNotFound}
	case errors.As(err, &te):
		fmt.Fprintln(os.Stderr, te.what)
		return exitCodeError{exitTimeout}
	}
	return err
}

// withTimeout is ctx bounded by a user's -timeout (0: none), and the
// error to report when it ran out.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

func timedOut(ctx context.Context, err error, what string) error {
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded {
		return timeoutError{what}
	}
	return err
}

func op(m *Meta) (context.Context, context.CancelFunc) { return context.WithTimeout(m.Ctx, opTimeout) }

func runKV(m *Meta, s *agent.Store, args []string) error {
	fs := newFlagSet("kv")
	prefix := fs.String("prefix", "", "list: only keys that start with this.")
	pos, _, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return errors.New("kv: want put KEY VALUE, get KEY, del KEY or list [-prefix P]")
	}
	ctx, cancel := op(m)
	defer cancel()
	usage := fmt.Errorf("kv %s: want put KEY VALUE [KEY VALUE]..., get KEY [KEY]..., del KEY or list [-prefix P]", pos[0])
	switch verb := pos[0]; {
	case verb == "put" && len(pos) >= 3 && len(pos)%2 == 1:
	case verb == "get" && len(pos) >= 2:
	case (verb == "del") && len(pos) == 2, verb == "list" && len(pos) == 1:
	default:
		return usage
	}
	switch pos[0] {
	case "put":
		// Several pairs: one write each, up to kvInFlight at once.
		pairs := pos[1:]
		return forEach(ctx, len(pairs)/2, func(ctx context.Context, i int) error {
			return s.Put(ctx, pairs[2*i], pairs[2*i+1])
		})
	case "get":
		keys := pos[1:]
		vals := make([]*string, len(keys))
		err := forEach(ctx, len(keys), func(ctx context.Context, i int) error {
			v, err := s.Get(ctx, keys[i])
			if errors.Is(err, agent.ErrNotFound) {
				return nil
			}
			vals[i] = &v
			return err
		})
		if err != nil {
			return err
		}
		var missing []string
		for i, v := range vals {
			if v == nil {
				missing = append(missing, strconv.Quote(keys[i]))
				continue
			}
			fmt.Fprintln(m.Stdout, *v)
		}
		if len(missing) > 0 {
			return notFoundError{"kv: no key " + strings.Join(missing, ", ")}
		}
	case "del":
		if err := s.Delete(ctx, pos[1]); errors.Is(err, agent.ErrNotFound) {
			return notFoundError{fmt.Sprintf("kv: no key %q", pos[1])}
		} else if err != nil {
			return err
		}
	case "list":
		kvs, err := s.List(ctx, *prefix)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			fmt.Fprintf(m.Stdout, "%s=%s\n", kv.Key, kv.Value)
		}
	}
	return nil
}

// kvInFlight is how many operations one kv command has under way at once.
const kvInFlight = 32

// forEach calls op for 0 to n-1, up to kvInFlight at once, and returns the
// first error.
func forEach(ctx context.Context, n int, op func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, kvInFlight)
	errs := make(chan error, n)
	for i := 0; i < n && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			if err := op(ctx, i); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	for range kvInFlight {
		sem <- struct{}{} // every op has returned
	}
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

func runCounter(m *Meta, s *agent.Store, args []string) error {
	pos, _, err := parseArgs(newFlagSet("counter"), args)
	if err != nil {
		return err
	}
	usage := errors.New("counter: want NAME incr [N], NAME decr [N], NAME get or NAME reset")
	if len(pos) < 2 || len(pos) > 3 {
		return usage
	}
	name, verb := pos[0], pos[1]
	ctx, cancel := op(m)
	defer cancel()
	delta := int64(1)
	if len(pos) == 3 {
		if verb != "incr" && verb != "decr" {
			return usage
		}
		if delta, err = strconv.ParseInt(pos[2], 10, 64); err != nil {
			return fmt.Errorf("counter %s %s: %q is not an integer", name, verb, pos[2])
		}
	}
	var v int64
	switch verb {
	case "incr":
		v, err = s.CounterAdd(ctx, name, delta)
	case "decr":
		v, err = s.CounterAdd(ctx, name, -delta)
	case "get":
		v, err = s.CounterGet(ctx, name)
	case "reset":
		err = s.CounterReset(ctx, name)
	default:
		return usage
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(m.Stdout, v)
	return nil
}

func runSet(m *Meta, s *agent.Store, args []string) error {
	pos, _, err := parseArgs(newFlagSet("set"), args)
	if err != nil {
		return err
	}
	usage := errors.New("set: want NAME add MEMBER, NAME rm MEMBER, NAME has MEMBER or NAME list")
	if len(pos) < 2 {
		return usage
	}
	name, verb := pos[0], pos[1]
	if (verb == "list") != (len(pos) == 2) || len(pos) > 3 {
		return usage
	}
	ctx, cancel := op(m)
	defer cancel()
	switch verb {
	case "add":
		_, err = s.SetAdd(ctx, name, pos[2])
		return err
	case "rm":
		if err := s.SetRemove(ctx, name, pos[2]); errors.Is(err, agent.ErrNotFound) {
			return notFoundError{fmt.Sprintf("set %s: no member %q", name, pos[2])}
		} else if err != nil {
			return err
		}
	case "has":
		ok, err := s.SetHas(ctx, name, pos[2])
		if err != nil {
			return err
		}
		if !ok {
			return exitCodeError{exitNotFound}
		}
	case "list":
		members, err := s.SetList(ctx, name)
		if err != nil {
			return err
		}
		for _, mb := range members {
			fmt.Fprintln(m.Stdout, mb)
		}
	default:
		return usage
	}
	return nil
}

func runQueue(m *Meta, s *agent.Store, args []string) error {
	fs := newFlagSet("queue")
	timeout := fs.Duration("timeout", 0, "get: how long to wait for an item (0: as long as it takes).")
	pos, _, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 3 && pos[1] == "put":
		ctx, cancel := op(m)
		defer cancel()
		return s.QueuePut(ctx, pos[0], pos[2])
	case len(pos) == 2 && pos[1] == "get":
		ctx, cancel := withTimeout(m.Ctx, *timeout)
		defer cancel()
		v, err := s.QueueGet(ctx, pos[0])
		if err != nil {
			return timedOut(ctx, err, fmt.Sprintf("queue %s: no item within %s", pos[0], *timeout))
		}
		fmt.Fprintln(m.Stdout, v)
		return nil
	}
	return errors.New("queue: want NAME put VALUE or NAME get [-timeout D]")
}

func runBarrier(m *Meta, s *agent.Store, args []string) error {
	fs := newFlagSet("barrier")
	n := fs.Int("n", 0, "How many processes the barrier waits for.")
	timeout := fs.Duration("timeout", 10*time.Minute, "How long to wait at most.")
	pos, _, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *n < 1 {
		return errors.New("barrier: want NAME -n N [-timeout D] (N >= 1)")
	}
	ctx, cancel := withTimeout(m.Ctx, *timeout)
	defer cancel()
	err = s.Barrier(ctx, pos[0], *n)
	return timedOut(ctx, err, fmt.Sprintf("barrier %s: fewer than %d waiters within %s", pos[0], *n, *timeout))
}

func runLock(m *Meta, s *agent.Store, args []string) error {
	fs := newFlagSet("lock")
	timeout := fs.Duration("timeout", 0, "How long to wait for the lock (0: as long as it takes).")
	pos, rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || len(rest) == 0 {
		return errors.New("lock: want NAME [-timeout D] -- COMMAND...")
	}
	wctx, cancel := withTimeout(m.Ctx, *timeout)
	defer cancel()
	unlock, lost, err := s.Lock(wctx, pos[0])
	if err != nil {
		return timedOut(wctx, err, fmt.Sprintf("lock %s: not taken within %s", pos[0], *timeout))
	}
	defer unlock()
	cmd := exec.CommandContext(m.Ctx, rest[0], rest[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, m.Stdout, m.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("lock %s: %w", pos[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-lost:
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("lock %s: lost the lock (the store stopped answering); the command was killed", pos[0])
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return exitCodeError{max(ee.ExitCode(), 1)}
	}
	return err
}

// remoteCollection runs a collection command on a node of an applied pool,
// over SSH: the head first, then the other nodes while one cannot be
// reached.
func (m *Meta) remoteCollection(name string, args []string) error {
	var pool string
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if v, ok := strings.CutPrefix(strings.TrimLeft(a, "-"), "pool="); ok && strings.HasPrefix(a, "-") {
			pool = v
			continue
		}
		if strings.TrimLeft(a, "-") == "pool" && strings.HasPrefix(a, "-") && i+1 < len(args) {
			pool, i = args[i+1], i+1
			continue
		}
		rest = append(rest, a)
	}
	st, err := m.stateOrEmpty()
	if err != nil {
		return err
	}
	byPool := map[string][]*state.Resource{}
	for _, r := range st.Resources {
		if r.Type == string(providers.KindNode) && r.Index != nil && !strings.Contains(r.Address, "#") {
			byPool[r.Pool] = append(byPool[r.Pool], r)
		}
	}
	if pool == "" {
		if len(byPool) != 1 {
			names := make([]string, 0, len(byPool))
			for p := range byPool {
				names = append(names, p)
			}
			sort.Strings(names)
			if len(names) == 0 {
				return fmt.Errorf("%s: no applied pool here (and this is not a node): run skyward apply first", name)
			}
			return fmt.Errorf("%s: several pools are applied (%s): say which with -pool NAME", name, strings.Join(names, ", "))
		}
		for p := range byPool {
			pool = p
		}
	}
	nodes := byPool[pool]
	if len(nodes) == 0 {
		return fmt.Errorf("%s: pool %q is not applied", name, pool)
	}
	sort.Slice(nodes, func(i, j int) bool { return *nodes[i].Index < *nodes[j].Index })
	live := m.liveState(st)
	var errs []error
	for _, r := range nodes {
		if lr := live.Get(r.Address); lr == nil || lr.Attributes["running"] == false {
			errs = append(errs, fmt.Errorf("%s is not running", r.Address))
			continue
		}
		cl, err := executor.DialNode(m.Ctx, m.keys(), r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		argv := append([]string{agent.BinaryPath, name}, rest...)
		q := make([]string, len(argv))
		for i, a := range argv {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		code, err := cl.Run(m.Ctx, cl.Sudo(strings.Join(q, " ")), m.Stdin, m.Stdout, m.Stderr)
		cl.Close()
		if err != nil {
			return err
		}
		if code != 0 {
			return exitCodeError{code}
		}
		return nil
	}
	return fmt.Errorf("%s: no node of pool %q could be reached: %w", name, pool, errors.Join(errs...))
}
