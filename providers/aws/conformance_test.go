package aws_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/zclconf/go-cty/cty"

	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/internal/dockertest"
	"github.com/skyward-sh/skyward/providers"
	awsprovider "github.com/skyward-sh/skyward/providers/aws"
	"github.com/skyward-sh/skyward/providers/aws/awstest"
	"github.com/skyward-sh/skyward/providers/providertest"
)

// reach are the two ways the tests' controller reaches a node: at its
// private address (the Docker bridge is routable from the host), and
// through a ProxyCommand to its SSH port published on 127.0.0.1.
func reach(e *awstest.Env) map[string]awsprovider.Config {
	base := awsprovider.Config{Region: "us-east-1", Endpoint: e.Moto.Endpoint, SubnetID: e.Subnet, SSHCIDR: "10.0.0.0/8"}
	private, proxy := base, base
	private.SSHAddress, private.AMI = awsprovider.AddressPrivate, e.AMI
	proxy.SSHProxyCommand, proxy.AMI = e.Booter.ProxyCommand(), awstest.AMIParameter
	return map[string]awsprovider.Config{"private": private, "proxy": proxy}
}

// TestConformance runs the provider suite on EC2 as moto serves it, with
// instances the Booter backs with containers that really boot.
func TestConformance(t *testing.T) {
	e := awstest.Setup(t)
	for name, cfg := range reach(e) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			providertest.Run(t, providertest.Harness{
				New: func(t *testing.T) providers.Provider {
					p, err := awsprovider.New(cfg, awsprovider.WithCacheDir(t.TempDir()))
					if err != nil {
						t.Fatal(err)
					}
					return p
				},
				Stop: func(t *testing.T, _ providers.Provider, o providers.Object) {
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					c := awstest.EC2(e.Moto.Endpoint)
					if _, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{o.ID}}); err != nil {
						t.Fatal(err)
					}
				},
				Timeout: 3 * time.Minute,
			})
		})
	}
}

// TestPipeline takes a pool of two instances through apply, run and
// destroy, both ways of reaching the nodes.
func TestPipeline(t *testing.T) {
	e := awstest.Setup(t)
	bin := dockertest.AgentBinary(t)
	reg := &providers.Registry{}
	reg.Register(awsprovider.Type, awsprovider.Factory())
	for name, cfg := range reach(e) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := func(v string) cty.Value {
				if v == "" {
					return cty.NullVal(cty.String)
				}
				return cty.StringVal(v)
			}
			block := cty.ObjectVal(map[string]cty.Value{
				"region": s(cfg.Region), "profile": s(""), "endpoint": s(cfg.Endpoint), "ami": s(cfg.AMI),
				"subnet_id": s(cfg.SubnetID), "ssh_user": s(""), "ssh_cidr": s(cfg.SSHCIDR),
				"ssh_address": s(cfg.SSHAddress), "ssh_proxy_command": s(cfg.SSHProxyCommand),
				"tags": cty.MapVal(map[string]cty.Value{"team": cty.StringVal("tests")}),
			})
			providertest.RunPipeline(t, providertest.Pipeline{
				Registry:    reg,
				Provider:    &hclspec.Provider{Type: awsprovider.Type, Config: block},
				AgentBinary: bin,
				Timeout:     5 * time.Minute,
			})
		})
	}
}
