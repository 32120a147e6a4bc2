package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/zclconf/go-cty/cty"

	"github.com/skyward-sh/skyward/cli"
	"github.com/skyward-sh/skyward/providers"
	awsprovider "github.com/skyward-sh/skyward/providers/aws"
	"github.com/skyward-sh/skyward/providers/aws/awstest"
)

// The scripts of the aws provider (aws_*, examples_aws) share the moto of
// the S3 scripts and one Booter, which backs their instances with
// containers; each script gets a subnet (and Docker network) of its own.
var (
	awsBooterOnce sync.Once
	awsBooter     *awstest.Booter
	awsBooterErr  error
	// awsCacheDir is the scripts' XDG_CACHE_HOME: the instance types
	// moto lists are fetched by the first script and cached for the
	// others, as for a user.
	awsCacheDir string
)

// isAWSScript reports whether the script running in workDir uses the aws
// provider.
func isAWSScript(workDir string) bool {
	name := strings.TrimPrefix(filepath.Base(workDir), "script-")
	return strings.HasPrefix(name, "aws_") || name == "examples_aws"
}

// awsSetup gives an aws script its subnet and what its configuration
// reads: SKYWARD_VAR_aws_subnet, _aws_ami, _aws_proxy, and the SDK's
// endpoint (AWS_ENDPOINT_URL) and region.
func awsSetup(t *testing.T, env *testscript.Env, image string) error {
	if motoServer == nil || image == "" {
		return nil // the script skips: [!aws]
	}
	awsBooterOnce.Do(func() {
		awsCacheDir = t.TempDir()
		awsBooter, awsBooterErr = awstest.Start(motoServer.Endpoint, image, t.Logf)
		if awsBooterErr == nil {
			t.Cleanup(func() {
				if err := awsBooter.Close(); err != nil {
					t.Errorf("awstest: %v", err)
				}
			})
		}
	})
	if awsBooterErr != nil {
		return awsBooterErr
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	subnet, err := awsBooter.Subnet(ctx)
	if err != nil {
		return err
	}
	ami, err := awstest.SeedAMI(ctx, motoServer.Endpoint)
	if err != nil {
		return err
	}
	env.Setenv("XDG_CACHE_HOME", awsCacheDir)
	env.Setenv("AWS_ENDPOINT_URL", motoServer.Endpoint)
	env.Setenv("AWS_REGION", "us-east-1")
	env.Setenv("SKYWARD_VAR_aws_subnet", subnet)
	env.Setenv("SKYWARD_VAR_aws_ami", ami)
	env.Setenv("SKYWARD_VAR_aws_proxy", awsBooter.ProxyCommand())
	env.Setenv("AWS_SUBNET", subnet)
	env.Setenv("AWS_AMI", ami)
	return nil
}

// ec2Kinds are what ec2-count counts.
var ec2Kinds = map[string]bool{"instance": true, "security-group": true, "key-pair": true}

// ec2-count KIND N: moto holds N instances (not terminated), security
// groups or key pairs tagged with the working directory's lineage.
func cmdEC2Count(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 || !ec2Kinds[args[0]] {
		ts.Fatalf("usage: ec2-count instance|security-group|key-pair N")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	got, err := ec2Count(args[0], lineageOf(ts.Getenv("WORK")))
	ts.Check(err)
	if (got == want) == neg {
		ts.Fatalf("%d %ss of the lineage in moto, want %s%d", got, args[0], map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// ec2-wait KIND N: wait up to a minute until ec2-count KIND N holds.
func cmdEC2Wait(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 || !ec2Kinds[args[0]] {
		ts.Fatalf("usage: ec2-wait instance|security-group|key-pair N")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	deadline := time.Now().Add(time.Minute)
	for {
		lin := lineageOf(ts.Getenv("WORK"))
		if lin != "" {
			got, err := ec2Count(args[0], lin)
			ts.Check(err)
			if got == want {
				return
			}
		}
		if time.Now().After(deadline) {
			ts.Fatalf("no %d %ss of the lineage in moto within a minute", want, args[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ec2Count(kind, lineage string) (int, error) {
	if lineage == "" {
		return 0, fmt.Errorf("no state with a lineage in $WORK")
	}
	c := awstest.EC2(motoServer.Endpoint)
	ctx := context.Background()
	f := []ec2types.Filter{{Name: sdk.String("tag:" + providers.LabelLineage), Values: []string{lineage}}}
	switch kind {
	case "instance":
		out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: append(f, ec2types.Filter{
			Name: sdk.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}})})
		if err != nil {
			return 0, err
		}
		n := 0
		for _, r := range out.Reservations {
			n += len(r.Instances)
		}
		return n, nil
	case "security-group":
		out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: f})
		if err != nil {
			return 0, err
		}
		return len(out.SecurityGroups), nil
	default:
		out, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: f})
		if err != nil {
			return 0, err
		}
		return len(out.KeyPairs), nil
	}
}

// ec2-terminate ADDRESS: terminate a node's instance in moto by hand.
func cmdEC2Terminate(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: ec2-terminate ADDRESS")
	}
	c := awstest.EC2(motoServer.Endpoint)
	ctx := context.Background()
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: sdk.String("tag:" + providers.LabelLineage), Values: []string{lineageOf(ts.Getenv("WORK"))}},
		{Name: sdk.String("tag:" + providers.LabelAddress), Values: []string{args[0]}},
		{Name: sdk.String("instance-state-name"), Values: []string{"pending", "running"}}}})
	ts.Check(err)
	var ids []string
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			ids = append(ids, *i.InstanceId)
		}
	}
	if len(ids) != 1 {
		ts.Fatalf("%d running instances for %s, want 1", len(ids), args[0])
	}
	_, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
	ts.Check(err)
}

// skywardSlowRun is skyward whose aws nodes' Create returns
// $SKYWARD_TEST_AFTER_RUN after RunInstances has answered, so that a
// script can kill it between RunInstances and the state write.
func skywardSlowRun() {
	delay, err := time.ParseDuration(os.Getenv("SKYWARD_TEST_AFTER_RUN"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "skyward-slowrun: SKYWARD_TEST_AFTER_RUN:", err)
		os.Exit(2)
	}
	reg := cli.DefaultRegistry()
	f := awsprovider.Factory()
	build := f.New
	f.New = func(cfg cty.Value) (providers.Provider, error) {
		p, err := build(cfg)
		if err != nil {
			return nil, err
		}
		return slowRun{p.(*awsprovider.Provider), delay}, nil
	}
	reg.Register(awsprovider.Type, f)
	os.Exit(cli.RunRegistry(reg, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

type slowRun struct {
	*awsprovider.Provider
	delay time.Duration
}

func (s slowRun) Create(ctx context.Context, r providers.Resource) (providers.Object, error) {
	o, err := s.Provider.Create(ctx, r)
	if err == nil && r.Kind == providers.KindNode {
		time.Sleep(s.delay)
	}
	return o, err
}
