package aws

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// ec2API is the part of the EC2 API the provider calls: method values of
// the SDK's client, held as functions.
//
// The skyward binary is copied to every node, so its size matters. The
// embedded collections store (etcd) makes the linker keep every exported
// method of every type that may reach an interface (it calls
// reflect.Value.MethodByName), and *ec2.Client has hundreds of them, each
// with its serializers: 30 MB. Holding the calls as functions keeps the
// client's type out of the provider's type descriptors, so only the calls
// listed here are linked.
type ec2API struct {
	authorizeSecurityGroupIngress func(context.Context, *ec2.AuthorizeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	createSecurityGroup           func(context.Context, *ec2.CreateSecurityGroupInput, ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error)
	deleteKeyPair                 func(context.Context, *ec2.DeleteKeyPairInput, ...func(*ec2.Options)) (*ec2.DeleteKeyPairOutput, error)
	deleteSecurityGroup           func(context.Context, *ec2.DeleteSecurityGroupInput, ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error)
	describeImages                func(context.Context, *ec2.DescribeImagesInput, ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	describeInstanceTypes         func(context.Context, *ec2.DescribeInstanceTypesInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error)
	describeInstances             func(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	describeKeyPairs              func(context.Context, *ec2.DescribeKeyPairsInput, ...func(*ec2.Options)) (*ec2.DescribeKeyPairsOutput, error)
	describeRegions               func(context.Context, *ec2.DescribeRegionsInput, ...func(*ec2.Options)) (*ec2.DescribeRegionsOutput, error)
	describeSecurityGroups        func(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	describeSubnets               func(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	importKeyPair                 func(context.Context, *ec2.ImportKeyPairInput, ...func(*ec2.Options)) (*ec2.ImportKeyPairOutput, error)
	runInstances                  func(context.Context, *ec2.RunInstancesInput, ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	startInstances                func(context.Context, *ec2.StartInstancesInput, ...func(*ec2.Options)) (*ec2.StartInstancesOutput, error)
	terminateInstances            func(context.Context, *ec2.TerminateInstancesInput, ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
}

func newEC2API(c *ec2.Client) *ec2API {
	return &ec2API{
		authorizeSecurityGroupIngress: c.AuthorizeSecurityGroupIngress,
		createSecurityGroup:           c.CreateSecurityGroup,
		deleteKeyPair:                 c.DeleteKeyPair,
		deleteSecurityGroup:           c.DeleteSecurityGroup,
		describeImages:                c.DescribeImages,
		describeInstanceTypes:         c.DescribeInstanceTypes,
		describeInstances:             c.DescribeInstances,
		describeKeyPairs:              c.DescribeKeyPairs,
		describeRegions:               c.DescribeRegions,
		describeSecurityGroups:        c.DescribeSecurityGroups,
		describeSubnets:               c.DescribeSubnets,
		importKeyPair:                 c.ImportKeyPair,
		runInstances:                  c.RunInstances,
		startInstances:                c.StartInstances,
		terminateInstances:            c.TerminateInstances,
	}
}

func (a *ec2API) AuthorizeSecurityGroupIngress(ctx context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, o ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	return a.authorizeSecurityGroupIngress(ctx, in, o...)
}

func (a *ec2API) CreateSecurityGroup(ctx context.Context, in *ec2.CreateSecurityGroupInput, o ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error) {
	return a.createSecurityGroup(ctx, in, o...)
}

func (a *ec2API) DeleteKeyPair(ctx context.Context, in *ec2.DeleteKeyPairInput, o ...func(*ec2.Options)) (*ec2.DeleteKeyPairOutput, error) {
	return a.deleteKeyPair(ctx, in, o...)
}

func (a *ec2API) DeleteSecurityGroup(ctx context.Context, in *ec2.DeleteSecurityGroupInput, o ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error) {
	return a.deleteSecurityGroup(ctx, in, o...)
}

func (a *ec2API) DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, o ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	return a.describeImages(ctx, in, o...)
}

func (a *ec2API) DescribeInstanceTypes(ctx context.Context, in *ec2.DescribeInstanceTypesInput, o ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error) {
	return a.describeInstanceTypes(ctx, in, o...)
}

func (a *ec2API) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, o ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return a.describeInstances(ctx, in, o...)
}

func (a *ec2API) DescribeKeyPairs(ctx context.Context, in *ec2.DescribeKeyPairsInput, o ...func(*ec2.Options)) (*ec2.DescribeKeyPairsOutput, error) {
	return a.describeKeyPairs(ctx, in, o...)
}

func (a *ec2API) DescribeRegions(ctx context.Context, in *ec2.DescribeRegionsInput, o ...func(*ec2.Options)) (*ec2.DescribeRegionsOutput, error) {
	return a.describeRegions(ctx, in, o...)
}

func (a *ec2API) DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, o ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	return a.describeSecurityGroups(ctx, in, o...)
}

func (a *ec2API) DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, o ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	return a.describeSubnets(ctx, in, o...)
}

func (a *ec2API) ImportKeyPair(ctx context.Context, in *ec2.ImportKeyPairInput, o ...func(*ec2.Options)) (*ec2.ImportKeyPairOutput, error) {
	return a.importKeyPair(ctx, in, o...)
}

func (a *ec2API) RunInstances(ctx context.Context, in *ec2.RunInstancesInput, o ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	return a.runInstances(ctx, in, o...)
}

func (a *ec2API) StartInstances(ctx context.Context, in *ec2.StartInstancesInput, o ...func(*ec2.Options)) (*ec2.StartInstancesOutput, error) {
	return a.startInstances(ctx, in, o...)
}

func (a *ec2API) TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, o ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	return a.terminateInstances(ctx, in, o...)
}

// ssmAPI is the part of the SSM API the provider calls, held as ec2API
// is.
type ssmAPI struct {
	getParameter func(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

func newSSMAPI(c *ssm.Client) *ssmAPI { return &ssmAPI{getParameter: c.GetParameter} }

func (a *ssmAPI) GetParameter(ctx context.Context, in *ssm.GetParameterInput, o ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	return a.getParameter(ctx, in, o...)
}
