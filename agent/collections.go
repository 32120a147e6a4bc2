package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// ErrNotFound is returned for a key, set member or queue item that is not
// there.
var ErrNotFound = errors.New("not found")

// sessionTTL is the lease, in seconds, of a barrier waiter or a lock
// holder: a node lost for that long lets the lock go and fails the
// barrier's other waiters.
var sessionTTL = 5

// Store is a client of the pool's collections store, for the collection
// commands a task runs on a node. Every operation is linearizable. A
// Store is safe for concurrent use; Close it when done.
type Store struct {
	c      *clientv3.Client
	prefix string
	// who names this process in barriers and locks: "dev/2 (pid 42)".
	who string
}

// OpenStore connects to the store of the node's pool, from the agent's
// configuration and store.json under root (Root on a node). It waits,
// until ctx is done, for the agent to have written store.json.
func OpenStore(ctx context.Context, root string) (*Store, error) {
	cfg, err := readConfig(filepath.Join(root, "agent.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("this is not a skyward node, or not its agent's user (%w)", err)
		}
		return nil, err
	}
	if cfg.Replicas == 0 {
		return nil, fmt.Errorf("pool %s has no collections store", cfg.Pool)
	}
	var info StoreInfo
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		b, err := os.ReadFile(filepath.Join(root, storeFile))
		if err == nil {
			if err := json.Unmarshal(b, &info); err != nil {
				return nil, fmt.Errorf("read %s: %w", storeFile, err)
			}
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the store of pool %s is not up yet (see %s): %w", cfg.Pool, filepath.Join(root, "agent.log"), ctx.Err())
		case <-time.After(wait):
		}
	}
	askStoreStart(ctx, cfg, info)
	ca, err := newStoreCA(cfg.Token, cfg.Pool)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := ca.clientTLS()
	if err != nil {
		return nil, err
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:            info.Endpoints,
		TLS:                  tlsCfg,
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to the store: %w", err)
	}
	return &Store{c: c, prefix: "/skyward/" + cfg.Pool + "/", who: fmt.Sprintf("%s/%d (pid %d)", cfg.Pool, cfg.Node, os.Getpid())}, nil
}

// askStoreStart asks the head to start the store (it starts at its first
// use) and waits, until ctx is done, for a member to accept connections.
// Errors are left to the operations: the head may be gone while other
// members serve.
func askStoreStart(ctx context.Context, cfg Config, info StoreInfo) {
	// accepts reports whether a member accepts connections, asking all
	// at once (a lost node's address answers nothing until the timeout).
	accepts := func() bool {
		ok := make(chan bool, len(info.Endpoints))
		for _, ep := range info.Endpoints {
			go func() {
				u, err := url.Parse(ep)
				if err != nil {
					ok <- false
					return
				}
				c, err := net.DialTimeout("tcp", u.Host, time.Second)
				if err == nil {
					c.Close()
				}
				ok <- err == nil
			}()
		}
		for range info.Endpoints {
			if <-ok {
				return true
			}
		}
		return false
	}
	if accepts() { // started already: the usual case
		return
	}
	head := net.JoinHostPort(cfg.HeadAddr, strconv.Itoa(cfg.ClusterPort))
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(hctx, http.MethodPost, "http://"+head+"/v1/store/start", nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Token)
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
	}
	for !accepts() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Close closes the connection.
func (s *Store) Close() error { return s.c.Close() }

func (s *Store) key(kind, name string) string { return s.prefix + kind + "/" + name }

// Put sets key to value.
func (s *Store) Put(ctx context.Context, key, value string) error {
	_, err := s.c.Put(ctx, s.key("kv", key), value)
	return err
}

// Get returns key's value, or ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (string, error) {
	r, err := s.c.Get(ctx, s.key("kv", key))
	if err != nil {
		return "", err
	}
	if len(r.Kvs) == 0 {
		return "", ErrNotFound
	}
	return string(r.Kvs[0].Value), nil
}

// Delete removes key; ErrNotFound when it was not there.
func (s *Store) Delete(ctx context.Context, key string) error {
	r, err := s.c.Delete(ctx, s.key("kv", key))
	if err != nil {
		return err
	}
	if r.Deleted == 0 {
		return ErrNotFound
	}
	return nil
}

// KV is one key and its value.
type KV struct{ Key, Value string }

// List returns the keys that start with prefix, and their values, in key
// order.
func (s *Store) List(ctx context.Context, prefix string) ([]KV, error) {
	base := s.key("kv", "")
	r, err := s.c.Get(ctx, base+prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, err
	}
	out := make([]KV, len(r.Kvs))
	for i, kv := range r.Kvs {
		out[i] = KV{Key: strings.TrimPrefix(string(kv.Key), base), Value: string(kv.Value)}
	}
	return out, nil
}

// CounterAdd adds delta to the counter (which starts at 0) and returns its
// new value. It compares and swaps, so concurrent adds never lose one.
func (s *Store) CounterAdd(ctx context.Context, name string, delta int64) (int64, error) {
	key := s.key("counter", name)
	r, err := s.c.Get(ctx, key)
	if err != nil {
		return 0, err
	}
	kvs := r.Kvs
	for {
		var cur, rev int64
		if len(kvs) > 0 {
			rev = kvs[0].ModRevision
			if cur, err = strconv.ParseInt(string(kvs[0].Value), 10, 64); err != nil {
				return 0, fmt.Errorf("counter %s holds %q, not a number", name, kvs[0].Value)
			}
		}
		if delta == 0 {
			return cur, nil
		}
		next := cur + delta
		// A lost race answers with the value that won it: no second read.
		t, err := s.c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpPut(key, strconv.FormatInt(next, 10))).
			Else(clientv3.OpGet(key)).Commit()
		if err != nil {
			return 0, err
		}
		if t.Succeeded {
			return next, nil
		}
		kvs = t.Responses[0].GetResponseRange().Kvs
	}
}

// CounterGet returns the counter's value; 0 for one never changed.
func (s *Store) CounterGet(ctx context.Context, name string) (int64, error) {
	return s.CounterAdd(ctx, name, 0)
}

// CounterReset sets the counter to 0.
func (s *Store) CounterReset(ctx context.Context, name string) error {
	_, err := s.c.Put(ctx, s.key("counter", name), "0")
	return err
}

// SetAdd adds member to the set; added is false when it was there.
func (s *Store) SetAdd(ctx context.Context, name, member string) (added bool, err error) {
	key := s.key("set", name) + "/" + member
	t, err := s.c.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, "")).Commit()
	if err != nil {
		return false, err
	}
	return t.Succeeded, nil
}

// SetRemove removes member; ErrNotFound when it was not there.
func (s *Store) SetRemove(ctx context.Context, name, member string) error {
	r, err := s.c.Delete(ctx, s.key("set", name)+"/"+member)
	if err != nil {
		return err
	}
	if r.Deleted == 0 {
		return ErrNotFound
	}
	return nil
}

// SetHas reports whether member is in the set.
func (s *Store) SetHas(ctx context.Context, name, member string) (bool, error) {
	r, err := s.c.Get(ctx, s.key("set", name)+"/"+member, clientv3.WithCountOnly())
	if err != nil {
		return false, err
	}
	return r.Count > 0, nil
}

// SetList returns the set's members in order.
func (s *Store) SetList(ctx context.Context, name string) ([]string, error) {
	base := s.key("set", name) + "/"
	r, err := s.c.Get(ctx, base, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, err
	}
	out := make([]string, len(r.Kvs))
	for i, kv := range r.Kvs {
		out[i] = strings.TrimPrefix(string(kv.Key), base)
	}
	return out, nil
}

func uniqueSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// QueuePut appends value to the queue.
func (s *Store) QueuePut(ctx context.Context, name, value string) error {
	key := fmt.Sprintf("%s/%020d-%s", s.key("queue", name), time.Now().UnixNano(), uniqueSuffix())
	_, err := s.c.Put(ctx, key, value)
	return err
}

// QueueGet takes the oldest item off the queue, waiting for one until ctx
// is done. Each item is taken exactly once, by whichever getter deletes it
// first.
func (s *Store) QueueGet(ctx context.Context, name string) (string, error) {
	base := s.key("queue", name) + "/"
	for {
		r, err := s.c.Get(ctx, base, clientv3.WithPrefix(), clientv3.WithLimit(1),
			clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
		if err != nil {
			return "", err
		}
		if len(r.Kvs) > 0 {
			kv := r.Kvs[0]
			t, err := s.c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision)).
				Then(clientv3.OpDelete(string(kv.Key))).Commit()
			if err != nil {
				return "", err
			}
			if t.Succeeded {
				return string(kv.Value), nil
			}
			continue // another getter took it
		}
		if err := s.waitPut(ctx, base, r.Header.Revision+1); err != nil {
			return "", err
		}
	}
}

// waitPut waits for a put under prefix at or after revision rev.
func (s *Store) waitPut(ctx context.Context, prefix string, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := s.c.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithFilterDelete())
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return err
		}
		if len(resp.Events) > 0 {
			return nil
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("the store's watch ended")
}

// Barrier waits until n processes wait at the barrier name, then releases
// them all together; the barrier is then ready for its next round. It
// returns ctx's error when ctx ends first (the others then fail), and an
// error naming the waiter when one leaves before the release: its node was
// lost (its lease ran out) or it gave up.
func (s *Store) Barrier(ctx context.Context, name string, n int) error {
	if n < 1 {
		return fmt.Errorf("barrier %s: -n must be 1 or more", name)
	}
	base := s.key("barrier", name) + "/"
	genKey := base + "gen"
	lease, err := s.c.Grant(ctx, int64(sessionTTL))
	if err != nil {
		return err
	}
	ka, err := s.c.KeepAlive(ctx, lease.ID)
	if err != nil {
		return err
	}
	go func() {
		for range ka { // drain the keep-alive answers
		}
	}()
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _ = s.c.Revoke(rctx, lease.ID)
	}()

	// Join the current round: the round number is compared when the
	// waiter's key is written, so that a waiter never lands in a round
	// already released.
	var round, genRev, joinRev int64
	var waiter string
	for {
		r, err := s.c.Get(ctx, genKey)
		if err != nil {
			return err
		}
		round, genRev = 0, 0
		if len(r.Kvs) > 0 {
			genRev = r.Kvs[0].ModRevision
			round, _ = strconv.ParseInt(string(r.Kvs[0].Value), 10, 64)
		}
		waiter = fmt.Sprintf("%sr%d/w/%s", base, round, uniqueSuffix())
		t, err := s.c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(genKey), "=", genRev)).
			Then(clientv3.OpPut(waiter, s.who, clientv3.WithLease(lease.ID))).Commit()
		if err != nil {
			return err
		}
		if t.Succeeded {
			joinRev = t.Header.Revision
			break
		}
	}
	roundPrefix := fmt.Sprintf("%sr%d/", base, round)
	released := roundPrefix + "released"
	release := func() error {
		// Whoever sees n waiters first releases the round and opens the
		// next one.
		_, err := s.c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(genKey), "=", genRev)).
			Then(clientv3.OpPut(genKey, strconv.FormatInt(round+1, 10)), clientv3.OpPut(released, "")).Commit()
		return err
	}
	r, err := s.c.Get(ctx, roundPrefix+"w/", clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithRev(joinRev))
	if err != nil {
		return err
	}
	count := r.Count
	if count >= int64(n) {
		if err := release(); err != nil {
			return err
		}
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := s.c.Watch(wctx, roundPrefix, clientv3.WithPrefix(), clientv3.WithRev(joinRev+1), clientv3.WithPrevKV())
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return fmt.Errorf("barrier %s: %w", name, err)
		}
		for _, ev := range resp.Events {
			key := string(ev.Kv.Key)
			switch {
			case key == released:
				return nil
			case ev.Type == clientv3.EventTypePut && ev.IsCreate():
				if count++; count >= int64(n) {
					if err := release(); err != nil {
						return err
					}
				}
			case ev.Type == clientv3.EventTypeDelete && ev.PrevKv != nil:
				who := string(ev.PrevKv.Value)
				if w, ok := strings.CutSuffix(who, " gave up"); ok {
					return fmt.Errorf("barrier %s: %s gave up waiting before the barrier released", name, w)
				}
				return fmt.Errorf("barrier %s: %s was lost while waiting (its node stopped answering)", name, who)
			}
		}
	}
	if ctx.Err() != nil {
		// Tell the others why this waiter leaves, then leave.
		pctx, pcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer pcancel()
		_, _ = s.c.Put(pctx, waiter, s.who+" gave up", clientv3.WithLease(lease.ID))
		return ctx.Err()
	}
	return fmt.Errorf("barrier %s: the store's watch ended", name)
}

// Lock takes the lock name, waiting until ctx is done, and returns the
// function that gives it back and a channel closed if the lock is lost
// (this node stopped reaching the store for longer than its lease).
func (s *Store) Lock(ctx context.Context, name string) (unlock func(), lost <-chan struct{}, err error) {
	sess, err := concurrency.NewSession(s.c, concurrency.WithTTL(sessionTTL))
	if err != nil {
		return nil, nil, err
	}
	m := concurrency.NewMutex(sess, s.key("lock", name))
	if err := m.Lock(ctx); err != nil {
		sess.Close()
		return nil, nil, err
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = m.Unlock(uctx)
		sess.Close()
	}, sess.Done(), nil
}
