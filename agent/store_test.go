package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// freePort returns a TCP port free on ip now.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// storeNode is one agent of a test pool, with its own root.
type storeNode struct {
	d    *Daemon
	root string
	stop func()
}

// startStoreNode runs an agent with a store under a fresh root and writes
// its agent.json there, for OpenStore.
func startStoreNode(t *testing.T, cfg Config, expected map[int]string) *storeNode {
	t.Helper()
	d, err := NewDaemon(cfg, t.Logf)
	if err != nil {
		t.Fatalf("NewDaemon: %v", err)
	}
	d.root = t.TempDir()
	for node, addr := range expected {
		d.expected[node] = addr
	}
	if cfg.Node == 0 {
		// What the commands read: the port the head's cluster API got.
		cfg.ClusterPort = d.ClusterAddr().(*net.TCPAddr).Port
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(d.root, "agent.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	n := &storeNode{d: d, root: d.root}
	n.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("Run did not return within 20s")
			}
		})
	}
	t.Cleanup(n.stop)
	return n
}

func (n *storeNode) open(t *testing.T) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := OpenStore(ctx, n.root)
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func singleStore(t *testing.T) *storeNode {
	cfg := Config{Pool: "dev", NumNodes: 1, HeadAddr: "127.0.0.1", ControlAddr: "127.0.0.1:0", Token: testToken,
		Replicas: 1, StoreClientPort: freePort(t, "127.0.0.1"), StorePeerPort: freePort(t, "127.0.0.1")}
	return startStoreNode(t, cfg, nil)
}

func TestStoreCollections(t *testing.T) {
	old := sessionTTL
	sessionTTL = 2
	t.Cleanup(func() { sessionTTL = old })
	n := singleStore(t)
	s := n.open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("kv", func(t *testing.T) {
		if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get of a missing key: %v, want ErrNotFound", err)
		}
		for k, v := range map[string]string{"a": "1", "ab": `{"x": 2}`, "b": "3"} {
			if err := s.Put(ctx, k, v); err != nil {
				t.Fatal(err)
			}
		}
		if v, err := s.Get(ctx, "ab"); err != nil || v != `{"x": 2}` {
			t.Errorf("Get(ab) = %q, %v", v, err)
		}
		kvs, err := s.List(ctx, "a")
		if err != nil || fmt.Sprint(kvs) != `[{a 1} {ab {"x": 2}}]` {
			t.Errorf("List(a) = %v, %v", kvs, err)
		}
		if err := s.Delete(ctx, "a"); err != nil {
			t.Errorf("Delete(a): %v", err)
		}
		if err := s.Delete(ctx, "a"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second Delete(a): %v, want ErrNotFound", err)
		}
	})

	t.Run("counter", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 10 {
					if _, err := s.CounterAdd(ctx, "c", 1); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		if v, err := s.CounterAdd(ctx, "c", -5); err != nil || v != 195 {
			t.Errorf("counter after 200 incr and a decr of 5: %d, %v; want 195", v, err)
		}
		if err := s.CounterReset(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		if v, _ := s.CounterGet(ctx, "c"); v != 0 {
			t.Errorf("counter after reset: %d", v)
		}
	})

	// 100 writers at once, each losing races to the others: none lost.
	t.Run("counter contention", func(t *testing.T) {
		const writers = 100
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if _, err := s.CounterAdd(ctx, "contended", 1); err != nil {
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if v, err := s.CounterGet(ctx, "contended"); err != nil || v != writers {
			t.Errorf("counter after %d concurrent incr: %d, %v", writers, v, err)
		}
	})

	t.Run("set", func(t *testing.T) {
		if added, _ := s.SetAdd(ctx, "s", "x"); !added {
			t.Error("first add: not added")
		}
		if added, _ := s.SetAdd(ctx, "s", "x"); added {
			t.Error("second add of the same member: added")
		}
		s.SetAdd(ctx, "s", "a")
		if m, _ := s.SetList(ctx, "s"); fmt.Sprint(m) != "[a x]" {
			t.Errorf("members %v", m)
		}
		if ok, _ := s.SetHas(ctx, "s", "nope"); ok {
			t.Error("has a member never added")
		}
		if err := s.SetRemove(ctx, "s", "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("remove of a missing member: %v", err)
		}
	})

	t.Run("queue", func(t *testing.T) {
		const items = 60
		var mu sync.Mutex
		var got []string
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					gctx, gcancel := context.WithTimeout(ctx, 2*time.Second)
					v, err := s.QueueGet(gctx, "q")
					gcancel()
					if err != nil {
						if !errors.Is(err, context.DeadlineExceeded) {
							t.Error(err)
						}
						return
					}
					mu.Lock()
					got = append(got, v)
					mu.Unlock()
				}
			}()
		}
		for i := range items {
			if err := s.QueuePut(ctx, "q", fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
		wg.Wait()
		sort.Slice(got, func(i, j int) bool { return len(got[i]) < len(got[j]) || len(got[i]) == len(got[j]) && got[i] < got[j] })
		var want []string
		for i := range items {
			want = append(want, fmt.Sprint(i))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("items taken: %v\nwant each once: %v", got, want)
		}
	})

	t.Run("lock", func(t *testing.T) {
		var inside, overlaps, runs atomic.Int32
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				other := n.open(t) // a session of its own, as another process
				for range 3 {
					unlock, _, err := other.Lock(ctx, "l")
					if err != nil {
						t.Error(err)
						return
					}
					if inside.Add(1) > 1 {
						overlaps.Add(1)
					}
					time.Sleep(10 * time.Millisecond)
					inside.Add(-1)
					runs.Add(1)
					unlock()
				}
			}()
		}
		wg.Wait()
		if overlaps.Load() != 0 || runs.Load() != 12 {
			t.Errorf("%d critical sections of 12 ran, %d overlapped", runs.Load(), overlaps.Load())
		}
		// Taken, the lock times out for another.
		unlock, _, err := s.Lock(ctx, "l")
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		other := n.open(t)
		wctx, wcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer wcancel()
		if _, _, err := other.Lock(wctx, "l"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Lock of a held lock: %v, want a deadline error", err)
		}
	})

	t.Run("barrier", func(t *testing.T) {
		// Two rounds of the same barrier, 3 waiters each.
		for round := range 2 {
			var wg sync.WaitGroup
			var released atomic.Int32
			for i := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if i == 2 {
						time.Sleep(300 * time.Millisecond)
					}
					if err := n.open(t).Barrier(ctx, "b", 3); err != nil {
						t.Errorf("round %d: %v", round, err)
						return
					}
					released.Add(1)
				}()
			}
			wg.Wait()
			if released.Load() != 3 {
				t.Fatalf("round %d: %d of 3 released", round, released.Load())
			}
		}
	})

	t.Run("barrier_timeout", func(t *testing.T) {
		wctx, wcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer wcancel()
		err := s.Barrier(wctx, "alone", 2)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a barrier nobody else reaches: %v, want a deadline error", err)
		}
	})

	t.Run("barrier_waiter_lost", func(t *testing.T) {
		// A waiter whose process stops answering (its client closed,
		// like a killed node) fails the others once its lease ends.
		lost := n.open(t)
		lost.who = "dev/2 (pid 4242)"
		go lost.Barrier(ctx, "gone", 3)
		time.Sleep(500 * time.Millisecond)
		start := time.Now()
		errc := make(chan error, 1)
		go func() { errc <- s.Barrier(ctx, "gone", 3) }()
		time.Sleep(300 * time.Millisecond)
		lost.c.Close()
		select {
		case err := <-errc:
			if err == nil || !strings.Contains(err.Error(), "dev/2 (pid 4242) was lost") {
				t.Errorf("barrier with a lost waiter: %v", err)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("the waiter failed after %s", d)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the waiter did not fail within 30s of another's loss")
		}
	})
}

func TestStoreRefusesOtherTokens(t *testing.T) {
	n := singleStore(t)
	n.open(t) // up
	// A client with another pool's token has the store's address but not
	// its authority.
	root := t.TempDir()
	cfg := n.d.cfg
	cfg.Token = "another-pool-token"
	b, _ := json.Marshal(cfg)
	os.WriteFile(filepath.Join(root, "agent.json"), b, 0o600)
	info, _ := os.ReadFile(filepath.Join(n.root, storeFile))
	os.WriteFile(filepath.Join(root, storeFile), info, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s, err := OpenStore(ctx, root)
	if err != nil {
		return // refused at once
	}
	defer s.Close()
	if err := s.Put(ctx, "k", "v"); err == nil {
		t.Fatal("a client with another token wrote to the store")
	}
}

func TestStoreReplicas(t *testing.T) {
	ips := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	for _, ip := range ips {
		if ln, err := net.Listen("tcp", ip+":0"); err != nil {
			// Linux answers on all of 127.0.0.0/8, so CI always can.
			if os.Getenv("CI") != "" {
				t.Fatalf("no loopback address %s here (%v), and CI is set: the replicas test must run", ip, err)
			}
			t.Skipf("no loopback address %s here: %v", ip, err)
		} else {
			ln.Close()
		}
	}
	client, peer := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	base := Config{Pool: "dev", NumNodes: 3, HeadAddr: ips[0], ControlAddr: "127.0.0.1:0", Token: testToken,
		Replicas: 3, StoreClientPort: client, StorePeerPort: peer}
	head := base
	head.ClusterPort = 0
	h := startStoreNode(t, head, map[int]string{1: ips[1], 2: ips[2]})
	port := h.d.ClusterAddr().(*net.TCPAddr).Port
	var nodes []*storeNode
	nodes = append(nodes, h)
	for i := 1; i < 3; i++ {
		cfg := base
		cfg.Node, cfg.ClusterPort = i, port
		nodes = append(nodes, startStoreNode(t, cfg, nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := nodes[1].open(t).Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	nodes[0].stop() // the head goes away
	s := nodes[2].open(t)
	if v, err := s.Get(ctx, "k"); err != nil || v != "v" {
		t.Fatalf("Get with the head gone: %q, %v", v, err)
	}
	if _, err := s.CounterAdd(ctx, "c", 1); err != nil {
		t.Fatalf("write with the head gone: %v", err)
	}
}

// The store starts at its first use, not with the agent: an apply pays
// nothing for a store no task uses.
func TestStoreStartsOnFirstUse(t *testing.T) {
	n := singleStore(t)
	info := filepath.Join(n.root, storeFile)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(info); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no store.json after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(n.d.cfg.StoreClientPort))
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("the store listens before anything asked for it")
	}
	if _, err := os.Stat(filepath.Join(n.root, "store")); err == nil {
		t.Fatal("the store has data before anything asked for it")
	}
	s := n.open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("first use: %v", err)
	}
}
