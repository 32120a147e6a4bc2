package aws

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/skyward-sh/skyward/providers"
)

// Keys of a pool object's Private map.
const (
	privKeyName = "key_name"
	privSG      = "security_group_id"
	privVPC     = "vpc_id"
	privSubnet  = "subnet_id"
)

// dependencyTimeout bounds the retries of a security group's delete while
// instances that use it are still terminating.
const dependencyTimeout = 5 * time.Minute

// poolName names a pool's key pair and security group.
func poolName(lineage, pool string) string { return "skyward-" + short(lineage) + "-" + pool }

// tags are the tags of an object of r: the provider's extra tags, then
// the skyward tags (which the extra tags cannot override), and Name.
func (p *Provider) tags(r providers.Resource, name string) []types.Tag {
	m := map[string]string{}
	for k, v := range p.cfg.Tags {
		m[k] = v
	}
	for k, v := range r.Labels {
		m[k] = v
	}
	m[providers.LabelManaged] = "true"
	if r.Lineage != "" {
		m[providers.LabelLineage] = r.Lineage
	}
	if r.Address != "" {
		m[providers.LabelAddress] = r.Address
	}
	m["Name"] = name
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]types.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, types.Tag{Key: sdk.String(k), Value: sdk.String(m[k])})
	}
	return out
}

func tagSpec(rt types.ResourceType, tags []types.Tag) types.TagSpecification {
	return types.TagSpecification{ResourceType: rt, Tags: tags}
}

// network resolves, once, the subnet nodes go to and its VPC.
func (p *Provider) network(ctx context.Context) (subnet, vpc string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.vpcID != "" {
		return p.subnet, p.vpcID, nil
	}
	in := &ec2.DescribeSubnetsInput{}
	if p.cfg.SubnetID != "" {
		in.SubnetIds = []string{p.cfg.SubnetID}
	} else {
		in.Filters = []types.Filter{{Name: sdk.String("default-for-az"), Values: []string{"true"}}}
	}
	out, err := p.ec2.DescribeSubnets(ctx, in)
	if err != nil {
		return "", "", p.apiError("find the subnet", err)
	}
	if len(out.Subnets) == 0 {
		if p.cfg.SubnetID != "" {
			return "", "", fmt.Errorf("subnet %q not found in %s", p.cfg.SubnetID, p.awsCfg.Region)
		}
		return "", "", fmt.Errorf("region %s has no default VPC with default subnets; set subnet_id", p.awsCfg.Region)
	}
	sort.Slice(out.Subnets, func(i, j int) bool {
		return sdk.ToString(out.Subnets[i].AvailabilityZone) < sdk.ToString(out.Subnets[j].AvailabilityZone)
	})
	s := out.Subnets[0]
	p.subnet, p.vpcID = sdk.ToString(s.SubnetId), sdk.ToString(s.VpcId)
	return p.subnet, p.vpcID, nil
}

func (p *Provider) createPool(ctx context.Context, r providers.Resource) (providers.Object, error) {
	if r.AuthorizedKey == "" {
		return providers.Object{}, fmt.Errorf("%s: no SSH public key given for the key pair", r.Address)
	}
	subnet, vpc, err := p.network(ctx)
	if err != nil {
		return providers.Object{}, err
	}
	name := poolName(r.Lineage, r.Pool)
	tags := p.tags(r, name)
	importKey := func() error {
		_, err := p.ec2.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: sdk.String(name),
			PublicKeyMaterial: []byte(r.AuthorizedKey),
			TagSpecifications: []types.TagSpecification{tagSpec(types.ResourceTypeKeyPair, tags)}})
		return err
	}
	err = importKey()
	if errorCode(err) == "InvalidKeyPair.Duplicate" {
		// Left by a create of this lineage that did not finish; the pool
		// has a new key now.
		if _, derr := p.ec2.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: sdk.String(name)}); derr != nil {
			return providers.Object{}, p.apiError("replace the key pair "+name, derr)
		}
		err = importKey()
	}
	if err != nil {
		return providers.Object{}, p.apiError("import the key pair", err)
	}
	sg, err := p.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:         sdk.String(name),
		Description:       sdk.String("skyward pool " + r.Pool + ": SSH from ssh_cidr, all traffic within the pool"),
		VpcId:             sdk.String(vpc),
		TagSpecifications: []types.TagSpecification{tagSpec(types.ResourceTypeSecurityGroup, tags)},
	})
	if err != nil {
		err = p.apiError("create the security group", err)
		return providers.Object{}, errors.Join(err, p.deleteKeyPair(context.WithoutCancel(ctx), name))
	}
	sgID := sdk.ToString(sg.GroupId)
	_, err = p.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: sdk.String(sgID),
		IpPermissions: []types.IpPermission{
			{IpProtocol: sdk.String("tcp"), FromPort: sdk.Int32(22), ToPort: sdk.Int32(22),
				IpRanges: []types.IpRange{{CidrIp: sdk.String(p.cfg.SSHCIDR), Description: sdk.String("skyward: SSH")}}},
			{IpProtocol: sdk.String("-1"), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: sdk.String(sgID), Description: sdk.String("skyward: within the pool")}}},
		},
	})
	if err != nil {
		err = p.apiError("authorize the security group", err)
		o := providers.Object{Kind: providers.KindPool, ID: sgID, Private: map[string]string{privKeyName: name}}
		return providers.Object{}, errors.Join(err, p.deletePool(context.WithoutCancel(ctx), o))
	}
	return providers.Object{Kind: providers.KindPool, Address: r.Address, ID: sgID, Lineage: r.Lineage, Running: true,
		Private: map[string]string{privKeyName: name, privSG: sgID, privVPC: vpc, privSubnet: subnet}}, nil
}

// poolObject maps a listed security group to the pool's object.
func poolObject(g types.SecurityGroup) providers.Object {
	t := tagMap(g.Tags)
	id := sdk.ToString(g.GroupId)
	return providers.Object{Kind: providers.KindPool, Address: t[providers.LabelAddress], ID: id, Lineage: t[providers.LabelLineage], Running: true,
		Private: map[string]string{privKeyName: sdk.ToString(g.GroupName), privSG: id, privVPC: sdk.ToString(g.VpcId)}}
}

// keyPairOnly reports whether a pool object is a key pair whose security
// group was never made.
func keyPairOnly(o providers.Object) bool { return strings.HasPrefix(o.ID, "key-") }

func (p *Provider) readPool(ctx context.Context, o providers.Object) (providers.Object, error) {
	if keyPairOnly(o) {
		out, err := p.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyPairIds: []string{o.ID}})
		if errorCode(err) == "InvalidKeyPair.NotFound" || err == nil && len(out.KeyPairs) == 0 {
			return providers.Object{}, fmt.Errorf("%s: key pair %s: %w", o.Address, o.ID, providers.ErrNotFound)
		}
		if err != nil {
			return providers.Object{}, p.apiError("read "+o.Address, err)
		}
		return o, nil
	}
	out, err := p.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{o.ID}})
	if errorCode(err) == "InvalidGroup.NotFound" || err == nil && len(out.SecurityGroups) == 0 {
		return providers.Object{}, fmt.Errorf("%s: security group %s: %w", o.Address, o.ID, providers.ErrNotFound)
	}
	if err != nil {
		return providers.Object{}, p.apiError("read "+o.Address, err)
	}
	got := poolObject(out.SecurityGroups[0])
	if s := o.Private[privSubnet]; s != "" {
		got.Private[privSubnet] = s
	}
	return got, nil
}

// deletePool deletes the security group, retrying while instances that
// use it are still terminating, then the key pair.
func (p *Provider) deletePool(ctx context.Context, o providers.Object) error {
	if keyPairOnly(o) {
		return p.deleteKeyPair(ctx, o.Private[privKeyName])
	}
	ctx, cancel := context.WithTimeout(ctx, dependencyTimeout)
	defer cancel()
	delay := 500 * time.Millisecond
	for {
		_, err := p.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: sdk.String(o.ID)})
		code := errorCode(err)
		if err == nil || code == "InvalidGroup.NotFound" {
			break
		}
		if code != "DependencyViolation" {
			return p.apiError("delete the security group "+o.ID, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("delete the security group %s: instances still use it after %s: %w", o.ID, dependencyTimeout, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
	name := o.Private[privKeyName]
	if name == "" {
		return nil
	}
	return p.deleteKeyPair(ctx, name)
}

func (p *Provider) deleteKeyPair(ctx context.Context, name string) error {
	_, err := p.ec2.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: sdk.String(name)})
	if err != nil && errorCode(err) != "InvalidKeyPair.NotFound" {
		return p.apiError("delete the key pair "+name, err)
	}
	return nil
}

func tagMap(tags []types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[sdk.ToString(t.Key)] = sdk.ToString(t.Value)
	}
	return m
}

// short is the first 8 characters of a lineage, used in names.
func short(lineage string) string {
	if len(lineage) > 8 {
		return lineage[:8]
	}
	return lineage
}
