package runpod

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/providers/internal/batch"
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

// newBatchWaiter waits for every booting pod with one GET /pods a poll,
// so that a pool of N pods costs one request a poll, not N, against
// RunPod's rate limits. Every poll that lists a pod settles its waiters
// (Wait decides whether it runs); a pod not listed settles once
// visibleAfter has passed.
func newBatchWaiter(p *Provider) *batch.Waiter[apiPod] {
	return &batch.Waiter[apiPod]{
		Poll: func([]string) (map[string]apiPod, error) { return listPods(p) },
		Settled: func(_ apiPod, found bool, waited time.Duration) bool {
			return found || waited > visibleAfter
		},
		First: firstPoll, Max: maxPoll,
	}
}

// Wait implements providers.Waiter: it returns the node once its pod runs
// with a public SSH endpoint. A pod seen exited twice in a row (so that
// one just started again is not taken for one that exited) fails it, and
// so does one that a poll no longer lists.
func (p *Provider) Wait(ctx context.Context, o providers.Object) (providers.Object, error) {
	exited, since := 0, time.Now()
	for {
		r, err := p.waiter.Next(ctx, o.ID, since)
		switch {
		case err != nil:
			return providers.Object{}, err
		case r.Err != nil:
			return providers.Object{}, r.Err
		case !r.Found:
			return providers.Object{}, fmt.Errorf("pod %s is gone: %w", o.ID, providers.ErrNotFound)
		}
		// Listed once: missing from a later poll, it is gone.
		since = time.Time{}
		pod := r.Value
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
		return providers.Object{}, providers.Stopped(fmt.Errorf("pod %s exited while booting (%s: %s); RunPod's API serves no pod logs: read them in the console under Pods, %s, Logs",
			o.ID, pod.DesiredStatus, why, pod.Name))
	}
}

// listPods reads every pod of the account, by id.
func listPods(p *Provider) (map[string]apiPod, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var pods []apiPod
	if err := p.api.rest(ctx, http.MethodGet, "/pods", nil, &pods); err != nil {
		return nil, fmt.Errorf("wait for pods: %w", err)
	}
	out := make(map[string]apiPod, len(pods))
	for _, pod := range pods {
		out[pod.ID] = pod
	}
	return out, nil
}
