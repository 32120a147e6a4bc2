package aws

import (
	"context"
	"fmt"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/skyward-sh/skyward/providers"
)

// Create implements providers.Provider. A node's Create returns once
// RunInstances has answered, with the instance pending; Wait waits for it.
func (p *Provider) Create(ctx context.Context, r providers.Resource) (providers.Object, error) {
	switch r.Kind {
	case providers.KindPool:
		return p.createPool(ctx, r)
	case providers.KindNode:
		return p.createNode(ctx, r)
	}
	return providers.Object{}, fmt.Errorf("create: unknown resource kind %q", r.Kind)
}

// Read implements providers.Provider. A terminated instance is not found.
func (p *Provider) Read(ctx context.Context, o providers.Object) (providers.Object, error) {
	switch o.Kind {
	case providers.KindPool:
		return p.readPool(ctx, o)
	case providers.KindNode:
		return p.readNode(ctx, o)
	}
	return providers.Object{}, fmt.Errorf("read: unknown object kind %q", o.Kind)
}

// Update implements providers.Provider: it starts a stopped instance.
// Every other change of a node replaces it.
func (p *Provider) Update(ctx context.Context, o providers.Object, _ providers.Resource) (providers.Object, error) {
	switch o.Kind {
	case providers.KindPool:
		return p.readPool(ctx, o)
	case providers.KindNode:
		return p.updateNode(ctx, o)
	}
	return providers.Object{}, fmt.Errorf("update: unknown object kind %q", o.Kind)
}

// Delete implements providers.Provider: a node's instance is terminated
// (Delete does not wait for it to be gone); a pool's security group is
// deleted once no instance uses it any more, then its key pair.
func (p *Provider) Delete(ctx context.Context, o providers.Object) error {
	switch o.Kind {
	case providers.KindPool:
		return p.deletePool(ctx, o)
	case providers.KindNode:
		return p.deleteNode(ctx, o)
	}
	return fmt.Errorf("delete: unknown object kind %q", o.Kind)
}

// List implements providers.Provider with one paginated DescribeInstances,
// one paginated DescribeSecurityGroups and one DescribeKeyPairs, all
// filtered by the lineage tag, whatever the number of nodes. Terminated
// and shutting-down instances are gone. A key pair without its security
// group (a pool create that did not finish) is listed as the pool's
// object, so that it is adopted or destroyed too.
func (p *Provider) List(ctx context.Context, lineage string) ([]providers.Object, error) {
	if lineage == "" {
		return nil, fmt.Errorf("list: no lineage given")
	}
	filter := []types.Filter{{Name: sdk.String("tag:" + providers.LabelLineage), Values: []string{lineage}}}
	var out []providers.Object
	sgs := ec2.NewDescribeSecurityGroupsPaginator(p.ec2, &ec2.DescribeSecurityGroupsInput{MaxResults: sdk.Int32(1000), Filters: filter})
	for sgs.HasMorePages() {
		page, err := sgs.NextPage(ctx)
		if err != nil {
			return nil, p.apiError("list security groups", err)
		}
		for _, g := range page.SecurityGroups {
			out = append(out, poolObject(g))
		}
	}
	kps, err := p.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: filter})
	if err != nil {
		return nil, p.apiError("list key pairs", err)
	}
	groups := map[string]bool{}
	for _, o := range out {
		groups[o.Private[privKeyName]] = true
	}
	for _, k := range kps.KeyPairs {
		if name := sdk.ToString(k.KeyName); !groups[name] {
			t := tagMap(k.Tags)
			out = append(out, providers.Object{Kind: providers.KindPool, Address: t[providers.LabelAddress], ID: sdk.ToString(k.KeyPairId),
				Lineage: t[providers.LabelLineage], Running: true, Private: map[string]string{privKeyName: name}})
		}
	}
	insts := ec2.NewDescribeInstancesPaginator(p.ec2, &ec2.DescribeInstancesInput{MaxResults: sdk.Int32(1000), Filters: append(filter, types.Filter{
		Name: sdk.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}})})
	for insts.HasMorePages() {
		page, err := insts.NextPage(ctx)
		if err != nil {
			return nil, p.apiError("list instances", err)
		}
		for _, res := range page.Reservations {
			for _, i := range res.Instances {
				if !gone(i) {
					out = append(out, p.nodeObject(i))
				}
			}
		}
	}
	return out, nil
}
