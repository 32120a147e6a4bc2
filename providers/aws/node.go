package aws

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/skyward-sh/skyward/providers"
)

// Keys of a node object's Private map. They must not collide with the
// pool's settings (instance_type), which the plan compares.
const (
	privInstanceType = "ec2_instance_type"
	privZone         = "availability_zone"
)

// ClientToken is the RunInstances idempotency token of the node at
// address in lineage: a create retried (by the SDK or after a crash)
// with the same token makes no second instance. attempt is raised when
// the token's instance is already terminated (a replaced node), since
// AWS would return that one again.
func ClientToken(lineage, address string, attempt int) string {
	sum := sha256.Sum256([]byte(lineage + "\x00" + address + "\x00" + strconv.Itoa(attempt)))
	return "skyward-" + hex.EncodeToString(sum[:16])
}

// UserData is the script the instance runs as root at its first boot
// (cloud-init): it arms the node's hard lifetime on the machine itself, so
// that it shuts down, and with shutdown behaviour terminate is deleted,
// even when the controller is gone. ttl 0 arms nothing.
func UserData(address string, ttl time.Duration) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	fmt.Fprintf(&b, "# skyward node %s\n", address)
	if ttl <= 0 {
		b.WriteString("# no ttl: the node lives until it is destroyed\n")
		return b.String()
	}
	secs := int64(math.Ceil(ttl.Seconds()))
	fmt.Fprintf(&b, "# ttl %s: power off (and so terminate) %d seconds after boot\n", ttl, secs)
	fmt.Fprintf(&b, "if command -v systemd-run >/dev/null 2>&1 && [ -d /run/systemd/system ]; then\n")
	fmt.Fprintf(&b, "  systemd-run --unit=skyward-ttl --description='skyward ttl' --on-active=%ds /bin/systemctl poweroff\n", secs)
	b.WriteString("else\n")
	fmt.Fprintf(&b, "  nohup sh -c 'sleep %d; shutdown -h now || poweroff' >/dev/null 2>&1 &\n", secs)
	b.WriteString("fi\n")
	return b.String()
}

func (p *Provider) createNode(ctx context.Context, r providers.Resource) (providers.Object, error) {
	if r.Node == nil {
		return providers.Object{}, fmt.Errorf("%s: no node spec", r.Address)
	}
	if r.PoolObject == nil || r.PoolObject.Private[privSG] == "" {
		return providers.Object{}, fmt.Errorf("%s: the pool's security group is not known", r.Address)
	}
	pool := r.PoolObject.Private
	ami, info, err := p.image(ctx)
	if err != nil {
		return providers.Object{}, err
	}
	itype, err := p.instanceType(ctx, *r.Node, info.arch)
	if err != nil {
		return providers.Object{}, fmt.Errorf("%s: %w", r.Address, err)
	}
	subnet := pool[privSubnet]
	if subnet == "" {
		if subnet, _, err = p.network(ctx); err != nil {
			return providers.Object{}, err
		}
	}
	name := "skyward-" + short(r.Lineage) + "-" + r.Node.Hostname
	tags := p.tags(r, name)
	in := &ec2.RunInstancesInput{
		ImageId:                           sdk.String(ami),
		InstanceType:                      types.InstanceType(itype),
		MinCount:                          sdk.Int32(1),
		MaxCount:                          sdk.Int32(1),
		KeyName:                           sdk.String(pool[privKeyName]),
		SubnetId:                          sdk.String(subnet),
		SecurityGroupIds:                  []string{pool[privSG]},
		UserData:                          sdk.String(base64.StdEncoding.EncodeToString([]byte(UserData(r.Address, r.Node.TTL)))),
		InstanceInitiatedShutdownBehavior: types.ShutdownBehaviorTerminate,
		MetadataOptions: &types.InstanceMetadataOptionsRequest{
			HttpTokens:   types.HttpTokensStateRequired,
			HttpEndpoint: types.InstanceMetadataEndpointStateEnabled,
		},
		TagSpecifications: []types.TagSpecification{tagSpec(types.ResourceTypeInstance, tags), tagSpec(types.ResourceTypeVolume, tags)},
	}
	if r.Node.DiskGB > 0 {
		in.BlockDeviceMappings = []types.BlockDeviceMapping{{DeviceName: sdk.String(info.rootDevice),
			Ebs: &types.EbsBlockDevice{VolumeSize: sdk.Int32(int32(math.Ceil(r.Node.DiskGB))), VolumeType: types.VolumeTypeGp3, DeleteOnTermination: sdk.Bool(true)}}}
	}
	if r.Node.Allocation == "spot" {
		in.InstanceMarketOptions = &types.InstanceMarketOptionsRequest{MarketType: types.MarketTypeSpot,
			SpotOptions: &types.SpotMarketOptions{SpotInstanceType: types.SpotInstanceTypeOneTime,
				InstanceInterruptionBehavior: types.InstanceInterruptionBehaviorTerminate}}
	}
	for attempt := 0; attempt < 5; attempt++ {
		in.ClientToken = sdk.String(ClientToken(r.Lineage, r.Address, attempt))
		out, err := p.ec2.RunInstances(ctx, in)
		if err != nil {
			return providers.Object{}, p.apiError("run the instance", err)
		}
		if len(out.Instances) == 0 {
			return providers.Object{}, errors.New("run the instance: AWS returned no instance")
		}
		inst := out.Instances[0]
		if gone(inst) {
			// The token's instance from an earlier life of this address.
			continue
		}
		return p.nodeObject(inst), nil
	}
	return providers.Object{}, fmt.Errorf("%s: run the instance: every client token names a terminated instance", r.Address)
}

// gone reports whether an instance is terminated or on its way there.
func gone(i types.Instance) bool {
	if i.State == nil {
		return false
	}
	return i.State.Name == types.InstanceStateNameTerminated || i.State.Name == types.InstanceStateNameShuttingDown
}

// nodeObject maps an instance to a node object.
func (p *Provider) nodeObject(i types.Instance) providers.Object {
	t := tagMap(i.Tags)
	o := providers.Object{Kind: providers.KindNode, Address: t[providers.LabelAddress], ID: sdk.ToString(i.InstanceId),
		Lineage: t[providers.LabelLineage], PrivateIP: sdk.ToString(i.PrivateIpAddress), PublicIP: sdk.ToString(i.PublicIpAddress),
		Private: map[string]string{privInstanceType: string(i.InstanceType)}}
	if i.Placement != nil && i.Placement.AvailabilityZone != nil {
		o.Private[privZone] = *i.Placement.AvailabilityZone
	}
	o.Running = i.State != nil && i.State.Name == types.InstanceStateNameRunning
	if o.Running {
		o.SSH = p.endpoint(o)
	}
	return o
}

// endpoint is where the controller reaches a running node: its public or
// private address as ssh_address says, through the proxy command when
// there is one (which gets the private address when the node has no
// public one). Zero when the node has no usable address yet.
func (p *Provider) endpoint(o providers.Object) providers.SSHEndpoint {
	host := o.PublicIP
	if p.cfg.SSHAddress == AddressPrivate || host == "" && p.cfg.SSHProxyCommand != "" {
		host = o.PrivateIP
	}
	if host == "" {
		return providers.SSHEndpoint{}
	}
	ep := providers.SSHEndpoint{Host: host, Port: 22, User: p.cfg.SSHUser}
	if p.cfg.SSHProxyCommand != "" {
		ep.ProxyCommand = expandInstanceID(p.cfg.SSHProxyCommand, o.ID)
	}
	return ep
}

// expandInstanceID replaces %i by the instance id, leaving %% and the
// other tokens to the controller.
func expandInstanceID(cmd, id string) string {
	var b strings.Builder
	for i := 0; i < len(cmd); i++ {
		if cmd[i] == '%' && i+1 < len(cmd) {
			if cmd[i+1] == 'i' {
				b.WriteString(id)
				i++
				continue
			}
			b.WriteString(cmd[i : i+2])
			i++
			continue
		}
		b.WriteByte(cmd[i])
	}
	return b.String()
}

func (p *Provider) readNode(ctx context.Context, o providers.Object) (providers.Object, error) {
	out, err := p.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{o.ID}})
	if errorCode(err) == "InvalidInstanceID.NotFound" {
		return providers.Object{}, fmt.Errorf("%s: instance %s: %w", o.Address, o.ID, providers.ErrNotFound)
	}
	if err != nil {
		return providers.Object{}, p.apiError("read "+o.Address, err)
	}
	for _, res := range out.Reservations {
		for _, i := range res.Instances {
			if sdk.ToString(i.InstanceId) == o.ID && !gone(i) {
				return p.nodeObject(i), nil
			}
		}
	}
	return providers.Object{}, fmt.Errorf("%s: instance %s: %w", o.Address, o.ID, providers.ErrNotFound)
}

// updateNode starts a stopped instance; nothing else changes in place.
func (p *Provider) updateNode(ctx context.Context, o providers.Object) (providers.Object, error) {
	cur, err := p.readNode(ctx, o)
	if err != nil {
		return providers.Object{}, err
	}
	if cur.Running {
		return cur, nil
	}
	if _, err := p.ec2.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{o.ID}}); err != nil {
		if errorCode(err) == "InvalidInstanceID.NotFound" {
			return providers.Object{}, fmt.Errorf("%s: instance %s: %w", o.Address, o.ID, providers.ErrNotFound)
		}
		return providers.Object{}, p.apiError("start "+o.Address, err)
	}
	cur.Running, cur.SSH = false, providers.SSHEndpoint{}
	return cur, nil
}

func (p *Provider) deleteNode(ctx context.Context, o providers.Object) error {
	_, err := p.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{o.ID}})
	if err != nil && errorCode(err) != "InvalidInstanceID.NotFound" {
		return p.apiError("terminate "+o.Address, err)
	}
	return nil
}
