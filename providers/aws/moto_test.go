package aws_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/skyward-sh/skyward/cluster"
	"github.com/skyward-sh/skyward/internal/mototest"
	"github.com/skyward-sh/skyward/providers"
	awsprovider "github.com/skyward-sh/skyward/providers/aws"
	"github.com/skyward-sh/skyward/providers/aws/awstest"
	"github.com/skyward-sh/skyward/providers/providertest"
)

// motoSubnet is a VPC and subnet in moto with no Docker behind it, for
// tests whose instances need not boot.
func motoSubnet(t *testing.T, endpoint string) string {
	t.Helper()
	c := awstest.EC2(endpoint)
	ctx := context.Background()
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: sdk.String("10.9.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: sdk.String("10.9.0.0/20")})
	if err != nil {
		t.Fatal(err)
	}
	return sdk.ToString(sn.Subnet.SubnetId)
}

func newProvider(t testing.TB, cfg awsprovider.Config, opts ...awsprovider.Option) *awsprovider.Provider {
	t.Helper()
	p, err := awsprovider.New(cfg, append([]awsprovider.Option{awsprovider.WithCacheDir(t.TempDir())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPlanTimeErrors: what a user gets wrong fails Check or ValidateNodes,
// before anything is created, with one line that says what.
func TestPlanTimeErrors(t *testing.T) {
	moto := mototest.New(t)
	ctx := context.Background()
	ami, err := awstest.SeedAMI(ctx, moto.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	subnet := motoSubnet(t, moto.Endpoint)
	base := awsprovider.Config{Region: "us-east-1", Endpoint: moto.Endpoint, SubnetID: subnet, AMI: ami}
	small := []providers.NodeSpec{{Hostname: "dev-0", VCPUs: 1, MemoryGB: 1}}
	tests := map[string]struct {
		cfg   func(*awsprovider.Config)
		nodes []providers.NodeSpec
		check bool
		want  string
	}{
		"unknown region": {func(c *awsprovider.Config) { c.Region = "xx-nowhere-9" }, nil, true, `unknown region "xx-nowhere-9"`},
		"AMI not found":  {func(c *awsprovider.Config) { c.AMI = "ami-0123456789abcdef0" }, small, false, "AMI not found"},
		"no default AMI": {func(c *awsprovider.Config) { c.AMI = "" }, small, false,
			"AMI not found: the SSM parameter " + awsprovider.DefaultAMIParameter + " does not exist in us-east-1; set ami to an AMI id"},
		"no type fits": {nil, []providers.NodeSpec{{Hostname: "dev-0", VCPUs: 4096, MemoryGB: 1}}, false,
			"dev-0: no x86_64 instance type has 4096 vCPUs and 1 GB of memory"},
		"no subnet": {func(c *awsprovider.Config) { c.SubnetID = "subnet-0123456789abcdef0" }, small, false, "subnet"},
		"bad allocation": {nil, []providers.NodeSpec{{Hostname: "dev-0", Allocation: "reserved"}}, false,
			`dev-0: allocation = "reserved"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := base
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			p := newProvider(t, cfg)
			if tc.check {
				err = p.Check(ctx)
			} else {
				if err := p.Check(ctx); err != nil {
					t.Fatalf("check: %v", err)
				}
				err = p.ValidateNodes(ctx, tc.nodes)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %v, want one line with %q", err, tc.want)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		p := newProvider(t, base)
		if err := p.Check(ctx); err != nil {
			t.Fatal(err)
		}
		if err := p.ValidateNodes(ctx, small); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRunInstancesRequest checks what a node's RunInstances asks for, as
// moto records it.
func TestRunInstancesRequest(t *testing.T) {
	moto := mototest.New(t)
	ctx := context.Background()
	ami, err := awstest.SeedAMI(ctx, moto.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := newProvider(t, awsprovider.Config{Region: "us-east-1", Endpoint: moto.Endpoint, SubnetID: motoSubnet(t, moto.Endpoint), AMI: ami,
		Tags: map[string]string{"team": "ml"}})
	_, pub, _ := cluster.GenerateKey()
	lineage := providertest.Lineage(t)
	pool, err := p.Create(ctx, resource(lineage, -1, pub, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	n, err := p.Create(ctx, resource(lineage, 0, pub, &pool, &providers.NodeSpec{Hostname: "dev-0", VCPUs: 2, MemoryGB: 4, DiskGB: 30,
		Allocation: "spot", TTL: time.Hour, AuthorizedKey: pub}))
	if err != nil {
		t.Fatal(err)
	}
	c := awstest.EC2(moto.Endpoint)
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{n.ID}})
	if err != nil {
		t.Fatal(err)
	}
	inst := out.Reservations[0].Instances[0]
	tags := map[string]string{}
	for _, tg := range inst.Tags {
		tags[*tg.Key] = *tg.Value
	}
	for k, v := range map[string]string{providers.LabelManaged: "true", providers.LabelLineage: lineage, providers.LabelAddress: "pool.dev.node[0]",
		"Name": "skyward-" + lineage[:8] + "-dev-0", "team": "ml"} {
		if tags[k] != v {
			t.Errorf("tag %s = %q, want %q", k, tags[k], v)
		}
	}
	if inst.MetadataOptions == nil || inst.MetadataOptions.HttpTokens != types.HttpTokensStateRequired {
		t.Errorf("metadata options %+v: IMDSv2 not required", inst.MetadataOptions)
	}
	if inst.InstanceLifecycle != types.InstanceLifecycleTypeSpot {
		t.Errorf("lifecycle %q, want spot", inst.InstanceLifecycle)
	}
	if inst.KeyName == nil || *inst.KeyName != pool.Private["key_name"] {
		t.Errorf("key name %v, want %s", inst.KeyName, pool.Private["key_name"])
	}
	if string(inst.InstanceType) == "" || inst.SecurityGroups[0].GroupId == nil || *inst.SecurityGroups[0].GroupId != pool.ID {
		t.Errorf("type %q, groups %+v", inst.InstanceType, inst.SecurityGroups)
	}
	sb, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: sdk.String(n.ID), Attribute: types.InstanceAttributeNameInstanceInitiatedShutdownBehavior})
	if err != nil || sb.InstanceInitiatedShutdownBehavior == nil || sdk.ToString(sb.InstanceInitiatedShutdownBehavior.Value) != "terminate" {
		t.Errorf("shutdown behaviour %+v, %v; want terminate", sb.InstanceInitiatedShutdownBehavior, err)
	}
	vols, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{{Name: sdk.String("attachment.instance-id"), Values: []string{n.ID}}}})
	if err != nil || len(vols.Volumes) == 0 || sdk.ToInt32(vols.Volumes[0].Size) != 30 {
		t.Errorf("root volume %+v, %v; want 30 GB", vols, err)
	}
	sgs, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{pool.ID}})
	if err != nil {
		t.Fatal(err)
	}
	var ssh, self bool
	for _, perm := range sgs.SecurityGroups[0].IpPermissions {
		if sdk.ToInt32(perm.FromPort) == 22 && len(perm.IpRanges) == 1 && sdk.ToString(perm.IpRanges[0].CidrIp) == "0.0.0.0/0" {
			ssh = true
		}
		if sdk.ToString(perm.IpProtocol) == "-1" && len(perm.UserIdGroupPairs) == 1 && sdk.ToString(perm.UserIdGroupPairs[0].GroupId) == pool.ID {
			self = true
		}
	}
	if !ssh || !self {
		t.Errorf("security group rules %+v: ssh %v, self %v", sgs.SecurityGroups[0].IpPermissions, ssh, self)
	}
	if err := p.Delete(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(ctx, pool); err != nil {
		t.Fatal(err)
	}
	kp, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: []types.Filter{{Name: sdk.String("tag:" + providers.LabelLineage), Values: []string{lineage}}}})
	if err != nil || len(kp.KeyPairs) != 0 {
		t.Errorf("key pairs left after delete: %+v, %v", kp, err)
	}
}

func resource(lineage string, index int, pub string, pool *providers.Object, spec *providers.NodeSpec) providers.Resource {
	addr, kind := "pool.dev", providers.KindPool
	if index >= 0 {
		addr, kind = providers.NodeAddress("dev", index), providers.KindNode
	}
	r := providers.Resource{Kind: kind, Address: addr, Pool: "dev", Index: index, Lineage: lineage, PoolObject: pool, Node: spec,
		Labels: map[string]string{providers.LabelManaged: "true", providers.LabelLineage: lineage, providers.LabelAddress: addr}}
	if kind == providers.KindPool {
		r.AuthorizedKey = pub
	}
	return r
}

// TestTTLTerminates: the user-data's timer powers the machine off, and
// its shutdown behaviour terminates the instance, with no controller.
func TestTTLTerminates(t *testing.T) {
	e := awstest.Setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := newProvider(t, awsprovider.Config{Region: "us-east-1", Endpoint: e.Moto.Endpoint, SubnetID: e.Subnet, AMI: e.AMI,
		SSHAddress: awsprovider.AddressPrivate})
	_, pub, _ := cluster.GenerateKey()
	lineage := providertest.Lineage(t)
	pool, err := p.Create(ctx, resource(lineage, -1, pub, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Delete(context.Background(), pool)
	n, err := p.Create(ctx, resource(lineage, 0, pub, &pool, &providers.NodeSpec{Hostname: "dev-0", TTL: 3 * time.Second, AuthorizedKey: pub}))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Delete(context.Background(), n)
	if _, err := p.Wait(ctx, n); err != nil {
		t.Fatal(err)
	}
	booted := false
	for ctx.Err() == nil {
		for _, id := range e.Booter.Machines() {
			booted = booted || id == n.ID
		}
		_, err := p.Read(ctx, n)
		if booted && err != nil {
			if !strings.Contains(err.Error(), providers.ErrNotFound.Error()) {
				t.Fatal(err)
			}
			return // terminated
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("instance %s still there after its ttl of 3s (booted: %v)", n.ID, booted)
}

// TestListOnePageWalk: refreshing a pool of 500 instances is one
// paginated DescribeInstances and one DescribeSecurityGroups, not a call
// per node.
func TestListOnePageWalk(t *testing.T) {
	moto := mototest.New(t)
	ctx := context.Background()
	lineage := providertest.Lineage(t)
	seedInstances(t, moto.Endpoint, lineage, 500)
	calls := &awsprovider.Calls{}
	p := newProvider(t, awsprovider.Config{Region: "us-east-1", Endpoint: moto.Endpoint, SSHAddress: awsprovider.AddressPrivate},
		awsprovider.WithAPIMiddleware(calls.Middleware))
	list, err := p.List(ctx, lineage)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 500 {
		t.Errorf("listed %d objects, want 500", len(list))
	}
	for _, o := range list {
		if o.Lineage != lineage || !strings.HasPrefix(o.Address, "pool.big.node[") || !o.Running || o.SSH.Host == "" {
			t.Fatalf("listed %+v", o)
		}
	}
	got := calls.Snapshot()
	if got["DescribeInstances"] != 1 || got["DescribeSecurityGroups"] != 1 || got["DescribeKeyPairs"] != 1 || calls.Total() != 3 {
		t.Errorf("calls %v, want one DescribeInstances page, one DescribeSecurityGroups and one DescribeKeyPairs", got)
	}
}

// seedInstances runs n tagged instances of lineage in moto directly, as
// if skyward had made them.
func seedInstances(t testing.TB, endpoint, lineage string, n int) []string {
	t.Helper()
	c := awstest.EC2(endpoint)
	ctx := context.Background()
	imgs, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{})
	if err != nil || len(imgs.Images) == 0 {
		t.Fatalf("moto images: %v", err)
	}
	var (
		mu  sync.Mutex
		ids []string
		wg  sync.WaitGroup
	)
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			addr := providers.NodeAddress("big", i)
			out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: imgs.Images[0].ImageId, MinCount: sdk.Int32(1), MaxCount: sdk.Int32(1),
				InstanceType: "t3.micro", TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{
					{Key: sdk.String(providers.LabelManaged), Value: sdk.String("true")},
					{Key: sdk.String(providers.LabelLineage), Value: sdk.String(lineage)},
					{Key: sdk.String(providers.LabelAddress), Value: sdk.String(addr)}}}}})
			if err != nil {
				t.Error(fmt.Errorf("seed %s: %w", addr, err))
				return
			}
			mu.Lock()
			ids = append(ids, *out.Instances[0].InstanceId)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return ids
}

// TestCreateCalls: creating nodes costs at most 3 API calls a node, with
// the instance type looked up once and the waits batched.
func TestCreateCalls(t *testing.T) {
	moto := mototest.New(t)
	ctx := context.Background()
	ami, err := awstest.SeedAMI(ctx, moto.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	calls := &awsprovider.Calls{}
	p := newProvider(t, awsprovider.Config{Region: "us-east-1", Endpoint: moto.Endpoint, SubnetID: motoSubnet(t, moto.Endpoint), AMI: ami,
		SSHAddress: awsprovider.AddressPrivate}, awsprovider.WithAPIMiddleware(calls.Middleware))
	_, pub, _ := cluster.GenerateKey()
	lineage := providertest.Lineage(t)
	pool, err := p.Create(ctx, resource(lineage, -1, pub, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	poolCalls := calls.Total()
	const n = 10
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := p.Create(ctx, resource(lineage, i, pub, &pool, &providers.NodeSpec{Hostname: fmt.Sprintf("dev-%d", i), VCPUs: 1, MemoryGB: 1, AuthorizedKey: pub}))
			if err == nil {
				_, err = p.Wait(ctx, o)
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	perNode := float64(calls.Total()-poolCalls) / n
	if perNode > 3 {
		t.Errorf("%.1f calls a node on the create path (%v), want at most 3", perNode, calls.Snapshot())
	}
	if calls.Get("RunInstances") != n {
		t.Errorf("%d RunInstances for %d nodes", calls.Get("RunInstances"), n)
	}
}

// TestOrphanKeyPair: a key pair whose security group was never made (a
// pool create cut short) is listed as the pool's object, read, and
// deleted, so that nothing is leaked.
func TestOrphanKeyPair(t *testing.T) {
	moto := mototest.New(t)
	ctx := context.Background()
	p := newProvider(t, awsprovider.Config{Region: "us-east-1", Endpoint: moto.Endpoint, SubnetID: motoSubnet(t, moto.Endpoint)})
	_, pub, _ := cluster.GenerateKey()
	lineage := providertest.Lineage(t)
	pool, err := p.Create(ctx, resource(lineage, -1, pub, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	c := awstest.EC2(moto.Endpoint)
	if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: sdk.String(pool.ID)}); err != nil {
		t.Fatal(err)
	}
	list, err := p.List(ctx, lineage)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Address != "pool.dev" || !strings.HasPrefix(list[0].ID, "key-") {
		t.Fatalf("listed %+v, want the key pair as pool.dev", list)
	}
	if _, err := p.Read(ctx, list[0]); err != nil {
		t.Errorf("read the key pair: %v", err)
	}
	if err := p.Delete(ctx, list[0]); err != nil {
		t.Fatal(err)
	}
	if list, err := p.List(ctx, lineage); err != nil || len(list) != 0 {
		t.Errorf("after delete: %+v, %v", list, err)
	}
	if _, err := p.Read(ctx, list[0]); !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("read after delete: %v, want ErrNotFound", err)
	}
}
