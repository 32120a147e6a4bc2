package aws

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go/middleware"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/providers/internal/batch"
)

// Type is the provider type as written in HCL.
const Type = "aws"

// Defaults of the provider block.
const (
	DefaultSSHUser = "ubuntu"
	DefaultSSHCIDR = "0.0.0.0/0"
	// DefaultAMIParameter is the public SSM parameter holding the current
	// Ubuntu 24.04 amd64 AMI of a region.
	DefaultAMIParameter = "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
)

// SSH address choices.
const (
	AddressPublic  = "public"
	AddressPrivate = "private"
)

// createTimeout bounds the wait for an instance to run with an address.
const createTimeout = 10 * time.Minute

// checkTimeout bounds Check's calls.
const checkTimeout = 10 * time.Second

// Config is the decoded provider block.
type Config struct {
	Region   string // "" means the SDK's default chain (AWS_REGION, the profile)
	Profile  string
	Endpoint string // an emulator's URL; AWS_ENDPOINT_URL is honoured too
	AMI      string // "" means DefaultAMIParameter
	SubnetID string // "" means a default subnet of the default VPC
	SSHUser  string
	SSHCIDR  string
	// SSHAddress is AddressPublic (default) or AddressPrivate.
	SSHAddress string
	// SSHProxyCommand is an OpenSSH ProxyCommand; %i is the instance id.
	SSHProxyCommand string
	Tags            map[string]string
}

// Factory returns the factory of the AWS provider, to register under Type.
func Factory() providers.Factory {
	str := func(n string) *hcldec.AttrSpec { return &hcldec.AttrSpec{Name: n, Type: cty.String} }
	return providers.Factory{
		Schema: hcldec.ObjectSpec{
			"region":            str("region"),
			"profile":           str("profile"),
			"endpoint":          str("endpoint"),
			"ami":               str("ami"),
			"subnet_id":         str("subnet_id"),
			"ssh_user":          str("ssh_user"),
			"ssh_cidr":          str("ssh_cidr"),
			"ssh_address":       str("ssh_address"),
			"ssh_proxy_command": str("ssh_proxy_command"),
			"tags":              &hcldec.AttrSpec{Name: "tags", Type: cty.Map(cty.String)},
		},
		New: func(cfg cty.Value) (providers.Provider, error) {
			c, err := DecodeConfig(cfg)
			if err != nil {
				return nil, err
			}
			return New(c)
		},
		ForceNew:     []string{"ami", "ssh_user"},
		PoolForceNew: []string{"region", "profile", "endpoint", "subnet_id", "ssh_cidr"},
	}
}

// DecodeConfig turns a value conforming to Factory().Schema into a
// Config, applying defaults for null attributes. A null cfg gives the
// defaults.
func DecodeConfig(cfg cty.Value) (Config, error) {
	c := Config{SSHUser: DefaultSSHUser, SSHCIDR: DefaultSSHCIDR, SSHAddress: AddressPublic}
	fields := map[string]*string{"region": &c.Region, "profile": &c.Profile, "endpoint": &c.Endpoint,
		"ami": &c.AMI, "subnet_id": &c.SubnetID, "ssh_user": &c.SSHUser, "ssh_cidr": &c.SSHCIDR,
		"ssh_address": &c.SSHAddress, "ssh_proxy_command": &c.SSHProxyCommand}
	set, err := providers.ConfigStrings(cfg, "aws provider", slices.Sorted(maps.Keys(fields))...)
	if err != nil || cfg.IsNull() {
		return c, err
	}
	for name, s := range set {
		if s != "" {
			*fields[name] = s
		}
	}
	if cfg.Type().HasAttribute("tags") {
		if v := cfg.GetAttr("tags"); !v.IsNull() {
			if !v.Type().IsMapType() && !v.Type().IsObjectType() {
				return c, errors.New(`aws provider: "tags" must be a map of strings`)
			}
			c.Tags = map[string]string{}
			for k, e := range v.AsValueMap() {
				if e.IsNull() || e.Type() != cty.String {
					return c, fmt.Errorf("aws provider: tags[%q] must be a string", k)
				}
				c.Tags[k] = e.AsString()
			}
		}
	}
	return c, c.validate()
}

var (
	regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)
	amiRE    = regexp.MustCompile(`^(ami-[0-9a-f]{8,17}|resolve:ssm:/.+|/.+)$`)
	subnetRE = regexp.MustCompile(`^subnet-[0-9a-f]{8,17}$`)
	userRE   = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}$`)
)

// validate checks what can be checked without calling AWS.
func (c *Config) validate() error {
	if c.Region != "" && !regionRE.MatchString(c.Region) {
		return fmt.Errorf("aws provider: region = %q is not an AWS region name (such as \"us-east-1\")", c.Region)
	}
	if c.AMI != "" && !amiRE.MatchString(c.AMI) {
		return fmt.Errorf("aws provider: ami = %q is neither an AMI id (ami-...) nor an SSM parameter name (/...)", c.AMI)
	}
	if c.SubnetID != "" && !subnetRE.MatchString(c.SubnetID) {
		return fmt.Errorf("aws provider: subnet_id = %q is not a subnet id (subnet-...)", c.SubnetID)
	}
	if !userRE.MatchString(c.SSHUser) {
		return fmt.Errorf("aws provider: ssh_user = %q is not a valid user name", c.SSHUser)
	}
	if _, n, err := net.ParseCIDR(c.SSHCIDR); err != nil || n.IP.To4() == nil {
		return fmt.Errorf("aws provider: ssh_cidr = %q is not an IPv4 CIDR block (such as \"203.0.113.0/24\")", c.SSHCIDR)
	}
	switch c.SSHAddress {
	case AddressPublic, AddressPrivate:
	default:
		return fmt.Errorf(`aws provider: ssh_address = %q; use "public" or "private"`, c.SSHAddress)
	}
	if c.Endpoint != "" && !strings.HasPrefix(c.Endpoint, "http://") && !strings.HasPrefix(c.Endpoint, "https://") {
		return fmt.Errorf("aws provider: endpoint = %q is not an http:// or https:// URL", c.Endpoint)
	}
	for k := range c.Tags {
		if strings.HasPrefix(k, "skyward.") || strings.HasPrefix(strings.ToLower(k), "aws:") {
			return fmt.Errorf("aws provider: tags[%q]: tags starting with \"skyward.\" or \"aws:\" are reserved", k)
		}
	}
	return nil
}

// Option changes how New builds a provider.
type Option func(*options)

type options struct {
	middleware []func(*middleware.Stack) error
	cacheDir   string
}

// WithAPIMiddleware adds middleware to every EC2 and SSM client the
// provider builds (for instance to count calls).
func WithAPIMiddleware(fn func(*middleware.Stack) error) Option {
	return func(o *options) { o.middleware = append(o.middleware, fn) }
}

// WithCacheDir keeps the instance type cache in dir instead of the user's
// cache directory.
func WithCacheDir(dir string) Option { return func(o *options) { o.cacheDir = dir } }

// Provider is the AWS EC2 provider. Build it with New; it is safe for
// concurrent use.
type Provider struct {
	cfg      Config
	awsCfg   sdk.Config
	ec2      *ec2API
	ssm      *ssmAPI
	cacheDir string
	waiter   *batch.Waiter[types.Instance]

	mu      sync.Mutex
	amiID   string // resolved once
	amiInfo imageInfo
	vpcID   string                  // of the subnet, resolved once
	subnet  string                  // the subnet nodes go to
	catMu   sync.Mutex              // serialises catalog lookups
	types   map[string]*typeCatalog // by architecture, loaded once
	chosen  map[string]string       // node spec key -> instance type
}

var (
	_ providers.Provider  = (*Provider)(nil)
	_ providers.Waiter    = (*Provider)(nil)
	_ providers.Validator = (*Provider)(nil)
	_ providers.Warner    = (*Provider)(nil)
)

// New builds a provider from cfg without calling AWS: Check does that.
func New(cfg Config, opts ...Option) (*Provider, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if cfg.SSHUser == "" {
		cfg.SSHUser = DefaultSSHUser
	}
	if cfg.SSHCIDR == "" {
		cfg.SSHCIDR = DefaultSSHCIDR
	}
	if cfg.SSHAddress == "" {
		cfg.SSHAddress = AddressPublic
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	loadOpts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() sdk.Retryer {
			// RequestLimitExceeded and other throttles are retried with
			// jittered exponential backoff before they reach the user.
			return retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts = 8
				so.MaxBackoff = 20 * time.Second
			})
		}),
	}
	if cfg.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		loadOpts = append(loadOpts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.Endpoint != "" {
		loadOpts = append(loadOpts, config.WithBaseEndpoint(cfg.Endpoint))
	}
	if len(o.middleware) > 0 {
		loadOpts = append(loadOpts, config.WithAPIOptions(o.middleware))
	}
	awsCfg, err := config.LoadDefaultConfig(context.Background(), loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("aws provider: %w", err)
	}
	if o.cacheDir == "" {
		if d, err := os.UserCacheDir(); err == nil {
			o.cacheDir = d + "/skyward"
		}
	}
	p := &Provider{
		cfg:      cfg,
		awsCfg:   awsCfg,
		ec2:      newEC2API(ec2.NewFromConfig(awsCfg)),
		ssm:      newSSMAPI(ssm.NewFromConfig(awsCfg)),
		cacheDir: o.cacheDir,
		subnet:   cfg.SubnetID,
		chosen:   map[string]string{},
		types:    map[string]*typeCatalog{},
	}
	p.waiter = newBatchWaiter(p)
	return p, nil
}

// Region is the region the provider works in.
func (p *Provider) Region() string { return p.awsCfg.Region }

// Type implements providers.Provider.
func (p *Provider) Type() string { return Type }

// Capabilities implements providers.Provider: instances make their own
// host keys, pinned at first contact; the nodes of a pool share their
// VPC's private network; OpenSSH leaves commands running when a session
// ends.
func (p *Provider) Capabilities() providers.Capabilities {
	return providers.Capabilities{HostKey: providers.HostKeyFirstContact, PrivateNetwork: true, CreateTimeout: createTimeout}
}

// Warnings implements providers.Warner.
func (p *Provider) Warnings() []string {
	if p.cfg.SSHCIDR == "0.0.0.0/0" {
		return []string{`ssh_cidr = "0.0.0.0/0" lets the whole internet reach port 22 of every node; ` +
			`set ssh_cidr to the addresses the controller connects from (such as "203.0.113.7/32").`}
	}
	return nil
}

// partitionRegion is the main region of the partition region belongs to.
func partitionRegion(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "cn-north-1"
	case strings.HasPrefix(region, "us-gov-"):
		return "us-gov-west-1"
	case strings.HasPrefix(region, "us-iso-"):
		return "us-iso-east-1"
	case strings.HasPrefix(region, "us-isob-"):
		return "us-isob-east-1"
	}
	return "us-east-1"
}

// credentialChain names the sources the SDK's default chain tries, for
// the error that none gave credentials.
const credentialChain = "environment (AWS_ACCESS_KEY_ID), shared credentials and config files (AWS_PROFILE), " +
	"SSO, web identity token, container credentials and the EC2 instance role"

// Check finds credentials with the SDK's default chain and makes one EC2
// call that changes nothing, which also tells whether the region exists.
func (p *Provider) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	if p.awsCfg.Region == "" {
		return errors.New(`aws provider: no region: set region in the provider block, or AWS_REGION`)
	}
	if _, err := p.awsCfg.Credentials.Retrieve(ctx); err != nil {
		return fmt.Errorf("aws provider: no AWS credentials found; tried %s", credentialChain)
	}
	// Asked in the partition's main region: an endpoint of a region that
	// does not exist does not answer.
	out, err := p.ec2.DescribeRegions(ctx, &ec2.DescribeRegionsInput{AllRegions: sdk.Bool(true)}, func(o *ec2.Options) {
		o.Region = partitionRegion(p.awsCfg.Region)
	})
	if err != nil {
		return p.apiError("check", err)
	}
	for _, r := range out.Regions {
		if sdk.ToString(r.RegionName) == p.awsCfg.Region {
			return nil
		}
	}
	return fmt.Errorf("aws provider: unknown region %q", p.awsCfg.Region)
}
