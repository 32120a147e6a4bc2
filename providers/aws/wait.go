package aws

import (
	"context"
	"fmt"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/providers/internal/batch"
)

// Poll intervals of the waiter: the first look soon after RunInstances,
// then backing off to the interval EC2's own waiters use.
var (
	firstPoll = 250 * time.Millisecond
	maxPoll   = 5 * time.Second
)

// visibleAfter is how long after Wait starts an instance that
// DescribeInstances does not show yet still counts as on its way: EC2's
// API is eventually consistent right after RunInstances.
var visibleAfter = 30 * time.Second

// newBatchWaiter waits for many instances with one DescribeInstances a
// poll for all of them, so that a pool of N nodes costs no N calls a poll.
// An instance settles once it runs or is gone.
func newBatchWaiter(p *Provider) *batch.Waiter[types.Instance] {
	return &batch.Waiter[types.Instance]{
		Poll: func(ids []string) (map[string]types.Instance, error) { return describe(p, ids) },
		Settled: func(inst types.Instance, found bool, waited time.Duration) bool {
			if !found {
				return waited > visibleAfter
			}
			return gone(inst) || inst.State != nil && inst.State.Name == types.InstanceStateNameRunning
		},
		First: firstPoll, Max: maxPoll,
	}
}

// Wait implements providers.Waiter: it returns the node once its instance
// runs with an address to reach it at.
func (p *Provider) Wait(ctx context.Context, o providers.Object) (providers.Object, error) {
	for {
		r, err := p.waiter.Next(ctx, o.ID, time.Now())
		if err != nil {
			return providers.Object{}, err
		}
		if r.Err != nil {
			return providers.Object{}, fmt.Errorf("%s: wait: %w", o.Address, r.Err)
		}
		if !r.Found || gone(r.Value) {
			return providers.Object{}, fmt.Errorf("%s: instance %s is gone: %w", o.Address, o.ID, providers.ErrNotFound)
		}
		got := p.nodeObject(r.Value)
		if got.Running && got.SSH.IsZero() {
			return providers.Object{}, fmt.Errorf("%s: instance %s runs but has no public address to reach it at; "+
				`set ssh_address = "private" (controller inside the VPC), ssh_proxy_command, or a subnet that assigns public addresses`, o.Address, o.ID)
		}
		if got.Running {
			return got, nil
		}
	}
}

// describe reads the given instances, 200 ids a filter (a filter, unlike
// InstanceIds, does not fail on an id that is unknown).
func describe(p *Provider, ids []string) (map[string]types.Instance, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := map[string]types.Instance{}
	for start := 0; start < len(ids); start += 200 {
		batch := ids[start:min(start+200, len(ids))]
		pg := ec2.NewDescribeInstancesPaginator(p.ec2, &ec2.DescribeInstancesInput{
			Filters: []types.Filter{{Name: sdk.String("instance-id"), Values: batch}}})
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			if err != nil {
				return nil, p.apiError("wait for instances", err)
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
