package aws

import (
	"context"
	"fmt"
	"sync"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/skyward-sh/skyward/providers"
)

// Poll intervals of the waiter: the first look soon after RunInstances,
// then backing off to the interval EC2's own waiters use.
var (
	firstPoll = 250 * time.Millisecond
	maxPoll   = 5 * time.Second
)

// batchWaiter waits for many instances with one DescribeInstances a poll
// for all of them, so that a pool of N nodes costs no N calls a poll.
type batchWaiter struct {
	p       *Provider
	mu      sync.Mutex
	waiting map[string]*waitEntry // instance id -> waiters
	running bool
}

type waitEntry struct {
	chans []chan waitResult
	since time.Time
}

// visibleAfter is how long after Wait starts an instance that
// DescribeInstances does not show yet still counts as on its way: EC2's
// API is eventually consistent right after RunInstances.
var visibleAfter = 30 * time.Second

type waitResult struct {
	inst  types.Instance
	found bool
	err   error
}

func newBatchWaiter(p *Provider) *batchWaiter {
	return &batchWaiter{p: p, waiting: map[string]*waitEntry{}}
}

// Wait implements providers.Waiter: it returns the node once its instance
// runs with an address to reach it at.
func (p *Provider) Wait(ctx context.Context, o providers.Object) (providers.Object, error) {
	for {
		ch := p.waiter.add(o.ID)
		select {
		case <-ctx.Done():
			p.waiter.remove(o.ID, ch)
			return providers.Object{}, ctx.Err()
		case r := <-ch:
			if r.err != nil {
				return providers.Object{}, fmt.Errorf("%s: wait: %w", o.Address, r.err)
			}
			if !r.found || gone(r.inst) {
				return providers.Object{}, fmt.Errorf("%s: instance %s is gone: %w", o.Address, o.ID, providers.ErrNotFound)
			}
			got := p.nodeObject(r.inst)
			if got.Running && got.SSH.IsZero() {
				return providers.Object{}, fmt.Errorf("%s: instance %s runs but has no public address to reach it at; "+
					`set ssh_address = "private" (controller inside the VPC), ssh_proxy_command, or a subnet that assigns public addresses`, o.Address, o.ID)
			}
			if got.Running {
				return got, nil
			}
		}
	}
}

// add registers a waiter for the next poll that sees id running or gone.
func (w *batchWaiter) add(id string) chan waitResult {
	ch := make(chan waitResult, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.waiting[id]
	if e == nil {
		e = &waitEntry{since: time.Now()}
		w.waiting[id] = e
	}
	e.chans = append(e.chans, ch)
	if !w.running {
		w.running = true
		go w.loop()
	}
	return ch
}

func (w *batchWaiter) remove(id string, ch chan waitResult) {
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

// loop polls while anyone waits.
func (w *batchWaiter) loop() {
	delay := firstPoll
	for {
		time.Sleep(delay)
		w.mu.Lock()
		ids := make([]string, 0, len(w.waiting))
		for id := range w.waiting {
			ids = append(ids, id)
		}
		if len(ids) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		found, err := w.describe(ids)
		w.mu.Lock()
		for _, id := range ids {
			e := w.waiting[id]
			if e == nil {
				continue
			}
			inst, ok := found[id]
			settled := err != nil || ok && (gone(inst) || inst.State != nil && inst.State.Name == types.InstanceStateNameRunning) ||
				!ok && time.Since(e.since) > visibleAfter
			if !settled {
				continue
			}
			for _, ch := range e.chans {
				ch <- waitResult{inst: inst, found: ok, err: err}
			}
			delete(w.waiting, id)
		}
		w.mu.Unlock()
		delay = min(2*delay, maxPoll)
	}
}

// describe reads the given instances, 200 ids a filter (a filter, unlike
// InstanceIds, does not fail on an id that is unknown).
func (w *batchWaiter) describe(ids []string) (map[string]types.Instance, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := map[string]types.Instance{}
	for start := 0; start < len(ids); start += 200 {
		batch := ids[start:min(start+200, len(ids))]
		pg := ec2.NewDescribeInstancesPaginator(w.p.ec2, &ec2.DescribeInstancesInput{
			Filters: []types.Filter{{Name: sdk.String("instance-id"), Values: batch}}})
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			if err != nil {
				return nil, w.p.apiError("wait for instances", err)
			}
			for _, res := range page.Reservations {
				for _, i := range res.Instances {
					out[sdk.ToString(i.InstanceId)] = i
				}
			}
		}
	}
	return out, nil
}
