package runpod

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/skyward-sh/skyward/providers"
)

// Poll intervals of the waiter: a first look soon after the create, then
// backing off.
var (
	firstPoll = 250 * time.Millisecond
	maxPoll   = 3 * time.Second
)

// visibleAfter is how long a pod that GET /pods does not list yet still
// counts as on its way: its create has returned its id, so only a lag of
// the list could hide it.
var visibleAfter = 30 * time.Second

// batchWaiter waits for every booting pod with one GET /pods a poll, so
// that a pool of N pods costs one request a poll, not N, against RunPod's
// rate limits.
type batchWaiter struct {
	p       *Provider
	mu      sync.Mutex
	waiting map[string]*podWait // pod id -> its waiters
	running bool
}

type podWait struct {
	chans []chan podResult
	since time.Time
	seen  bool // an earlier poll listed the pod: missing now, it is gone
}

// podResult is what a poll saw of one pod.
type podResult struct {
	pod   apiPod
	found bool
	err   error
}

func newBatchWaiter(p *Provider) *batchWaiter {
	return &batchWaiter{p: p, waiting: map[string]*podWait{}}
}

// Wait implements providers.Waiter: it returns the node once its pod runs
// with a public SSH endpoint. A pod seen exited twice in a row (so that
// one just started again is not taken for one that exited) fails it.
func (p *Provider) Wait(ctx context.Context, o providers.Object) (providers.Object, error) {
	exited, seen := 0, false
	for {
		ch := p.waiter.add(o.ID, seen)
		var r podResult
		select {
		case <-ctx.Done():
			p.waiter.remove(o.ID, ch)
			return providers.Object{}, ctx.Err()
		case r = <-ch:
		}
		switch {
		case r.err != nil:
			return providers.Object{}, r.err
		case !r.found:
			return providers.Object{}, fmt.Errorf("pod %s is gone: %w", o.ID, providers.ErrNotFound)
		}
		pod := r.pod
		seen = true
		if got := nodeObject(pod, o.Address, o.Lineage, o.Private["cluster"]); got.Running {
			return got, nil
		}
		if pod.DesiredStatus != "EXITED" && pod.DesiredStatus != "TERMINATED" {
			exited = 0
			continue
		}
		if exited++; exited < 2 {
			continue
		}
		why := pod.LastStatusChange
		if why == "" {
			why = "no reason given"
		}
		return providers.Object{}, fmt.Errorf("pod %s exited while booting (%s: %s); RunPod's API serves no pod logs: read them in the console under Pods, %s, Logs",
			o.ID, pod.DesiredStatus, why, pod.Name)
	}
}

// add registers a waiter for the next poll's view of pod id; seen says
// that an earlier poll listed it.
func (w *batchWaiter) add(id string, seen bool) chan podResult {
	ch := make(chan podResult, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.waiting[id]
	if e == nil {
		e = &podWait{since: time.Now()}
		w.waiting[id] = e
	}
	e.seen = e.seen || seen
	e.chans = append(e.chans, ch)
	if !w.running {
		w.running = true
		go w.loop()
	}
	return ch
}

func (w *batchWaiter) remove(id string, ch chan podResult) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.waiting[id]
	if e == nil {
		return
	}
	for i, c := range e.chans {
		if c == ch {
			e.chans = append(e.chans[:i], e.chans[i+1:]...)
			break
		}
	}
	if len(e.chans) == 0 {
		delete(w.waiting, id)
	}
}

// loop polls while anyone waits. Every waiter gets each poll's view of
// its pod (Wait decides whether it runs), except a pod the list has never
// shown, which is reported missing only once visibleAfter has passed.
func (w *batchWaiter) loop() {
	delay := firstPoll
	for {
		time.Sleep(delay)
		w.mu.Lock()
		if len(w.waiting) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		pods, err := w.list()
		w.mu.Lock()
		for id, e := range w.waiting {
			pod, ok := pods[id]
			if err == nil && !ok && !e.seen && time.Since(e.since) <= visibleAfter {
				continue
			}
			for _, ch := range e.chans {
				ch <- podResult{pod: pod, found: ok, err: err}
			}
			delete(w.waiting, id)
		}
		w.mu.Unlock()
		delay = min(2*delay, maxPoll)
	}
}

// list reads every pod of the account, by id.
func (w *batchWaiter) list() (map[string]apiPod, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var pods []apiPod
	if err := w.p.api.rest(ctx, http.MethodGet, "/pods", nil, &pods); err != nil {
		return nil, fmt.Errorf("wait for pods: %w", err)
	}
	out := make(map[string]apiPod, len(pods))
	for _, pod := range pods {
		out[pod.ID] = pod
	}
	return out, nil
}
