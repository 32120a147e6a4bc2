// Package awstest backs moto's EC2 instances with machines that really
// boot, for tests of the aws provider: moto runs no machines, so a Booter
// watches moto and starts, for each pending or running instance, a local
// container that plays the VM. The container sits at the instance's
// private address on a Docker network with its subnet's CIDR, runs
// OpenSSH with the instance's key pair authorised for the login user
// (passwordless sudo), and runs the instance's user-data as root at its
// first boot, as cloud-init does. When the machine powers itself off the
// instance is terminated (shutdown behaviour terminate); when the
// instance is stopped, started or terminated in moto, the container
// follows.
//
// The controller reaches the containers at their private addresses
// (Docker bridge addresses are routable from the host) or through
// ProxyCommand, which connects to the container's SSH port published on
// 127.0.0.1 for the instance id %i. Everything a Booter creates carries
// its label and is removed when the test ends.
//
// It is imported by tests only.
package awstest

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
)

// Label is set on every container and network a Booter creates; its value
// is the Booter's id.
const Label = "skyward.test.awstest"

// EC2 returns an EC2 client for moto at endpoint with the test
// credentials.
func EC2(endpoint string) *ec2.Client {
	return ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: sdk.String(endpoint),
		Credentials: sdk.CredentialsProviderFunc(func(context.Context) (sdk.Credentials, error) {
			return sdk.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing", SessionToken: "testing"}, nil
		})})
}

// Booter backs moto's instances with containers. Its methods are safe for
// concurrent use.
type Booter struct {
	ec2    *ec2.Client
	docker *client.Client
	image  string
	id     string
	dir    string // port files and the proxy script
	logf   func(string, ...any)

	mu       sync.Mutex
	nets     map[string]string // subnet id -> docker network id
	booted   map[string]*machine
	stopLoop context.CancelFunc
	done     chan struct{}
}

type machine struct {
	container string
	stopped   bool // stopped because moto said so
}

// New starts a Booter for the moto at endpoint, booting containers from
// image (the test base image: OpenSSH, sudo). It stops, and removes
// everything it created, when t ends.
func New(t testing.TB, endpoint, image string) *Booter {
	t.Helper()
	b, err := Start(endpoint, image, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("awstest: %v", err)
		}
	})
	return b
}

// Start is New outside a test; the caller calls Close.
func Start(endpoint, image string, logf func(string, ...any)) (*Booter, error) {
	dc, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "skyward-awstest-")
	if err != nil {
		return nil, err
	}
	b := &Booter{ec2: EC2(endpoint), docker: dc, image: image, id: fmt.Sprintf("%d-%d", os.Getpid(), rand.Int64()),
		dir: dir, logf: logf, nets: map[string]string{}, booted: map[string]*machine{}, done: make(chan struct{})}
	if err := os.WriteFile(filepath.Join(dir, "proxy.sh"), []byte(proxyScript), 0o755); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.stopLoop = cancel
	go b.loop(ctx)
	return b, nil
}

// proxyScript relays stdin and stdout to the SSH port published for the
// instance id $1, with bash alone.
const proxyScript = `#!/bin/bash
port=$(cat "$(dirname "$0")/ports/$1" 2>/dev/null) || { echo "awstest: no machine for instance $1" >&2; exit 1; }
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
cat <&3 &
cat >&3
`

// ProxyCommand is an ssh_proxy_command that reaches an instance's machine
// by its id.
func (b *Booter) ProxyCommand() string { return "bash " + filepath.Join(b.dir, "proxy.sh") + " %i" }

// Subnet creates a VPC and a subnet in moto with a random 10.x.y.0/24 and
// the Docker network for it, trying other blocks while Docker reports an
// overlap with a network of its own, and returns the subnet's id.
func (b *Booter) Subnet(ctx context.Context) (string, error) {
	var lastErr error
	for range 20 {
		cidr := fmt.Sprintf("10.%d.%d.0/24", 100+rand.IntN(150), rand.IntN(256))
		prefix := netip.MustParsePrefix(cidr)
		gw := prefix.Addr().Next()
		nw, err := b.docker.NetworkCreate(ctx, "skyward-awstest-"+strings.NewReplacer(".", "-", "/", "-").Replace(cidr)+"-"+b.id,
			network.CreateOptions{Driver: "bridge", Labels: map[string]string{Label: b.id},
				IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: cidr, Gateway: gw.String()}}}})
		if err != nil {
			lastErr = err
			continue
		}
		vpc, err := b.ec2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: sdk.String(cidr)})
		if err != nil {
			return "", err
		}
		sn, err := b.ec2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: sdk.String(cidr)})
		if err != nil {
			return "", err
		}
		id := sdk.ToString(sn.Subnet.SubnetId)
		b.mu.Lock()
		b.nets[id] = nw.ID
		b.mu.Unlock()
		return id, nil
	}
	return "", fmt.Errorf("awstest: no free 10.x.y.0/24 for a Docker network: %w", lastErr)
}

// Machines returns the instance ids that have a machine now.
func (b *Booter) Machines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for id := range b.booted {
		out = append(out, id)
	}
	return out
}

// Close stops watching and removes every container and network the
// Booter created.
func (b *Booter) Close() error {
	b.stopLoop()
	<-b.done
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", Label+"="+b.id))
	// A removal cancelled with the loop may still be in progress in the
	// daemon: try again until nothing is left or the minute is up.
	var errs []string
	for {
		errs = errs[:0]
		cs, err := b.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			errs = append(errs, err.Error())
		}
		for _, c := range cs {
			if err := b.docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, err.Error())
			}
		}
		nets, err := b.docker.NetworkList(ctx, network.ListOptions{Filters: f})
		if err != nil {
			errs = append(errs, err.Error())
		}
		for _, n := range nets {
			if err := b.docker.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, err.Error())
			}
		}
		if len(errs) == 0 || ctx.Err() != nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	os.RemoveAll(b.dir)
	b.docker.Close()
	if len(errs) > 0 {
		return fmt.Errorf("clean up: %s", strings.Join(errs, "; "))
	}
	return nil
}

func (b *Booter) loop(ctx context.Context) {
	defer close(b.done)
	for {
		if err := b.sync(ctx); err != nil && ctx.Err() == nil {
			b.logf("awstest: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(150 * time.Millisecond):
		}
	}
}

// sync brings the machines in line with moto's instances once.
func (b *Booter) sync(ctx context.Context) error {
	pg := ec2.NewDescribeInstancesPaginator(b.ec2, &ec2.DescribeInstancesInput{})
	var insts []types.Instance
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, r := range page.Reservations {
			insts = append(insts, r.Instances...)
		}
	}
	var wg sync.WaitGroup
	for _, i := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.syncOne(ctx, i); err != nil && ctx.Err() == nil {
				b.logf("awstest: %s: %v", sdk.ToString(i.InstanceId), err)
			}
		}()
	}
	wg.Wait()
	return nil
}

func (b *Booter) syncOne(ctx context.Context, i types.Instance) error {
	id := sdk.ToString(i.InstanceId)
	b.mu.Lock()
	m := b.booted[id]
	b.mu.Unlock()
	state := i.State.Name
	switch state {
	case types.InstanceStateNamePending, types.InstanceStateNameRunning:
		if m == nil {
			return b.boot(ctx, i)
		}
		ci, err := b.docker.ContainerInspect(ctx, m.container)
		if err != nil {
			return err
		}
		if ci.State.Running {
			return nil
		}
		if m.stopped {
			// Started again in moto.
			if err := b.docker.ContainerStart(ctx, m.container, container.StartOptions{}); err != nil {
				return err
			}
			m.stopped = false
			return b.writePort(ctx, id, m.container)
		}
		// The machine powered itself off: shutdown behaviour terminate.
		b.logf("awstest: %s powered off; terminating it", id)
		_, err = b.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
		return err
	case types.InstanceStateNameStopping, types.InstanceStateNameStopped:
		if m == nil || m.stopped {
			return nil
		}
		m.stopped = true
		timeout := 1
		return b.docker.ContainerStop(ctx, m.container, container.StopOptions{Timeout: &timeout})
	default: // shutting-down, terminated
		if m == nil {
			return nil
		}
		if err := b.docker.ContainerRemove(ctx, m.container, container.RemoveOptions{Force: true}); err != nil && !strings.Contains(err.Error(), "No such container") {
			return err
		}
		os.Remove(filepath.Join(b.dir, "ports", id))
		b.mu.Lock()
		delete(b.booted, id)
		b.mu.Unlock()
		return nil
	}
}

// bootScript makes the container a cloud VM's first boot: the login user
// with sudo and the key pair's key, host keys, the user-data as root once,
// power-off that ends the machine, then OpenSSH.
const bootScript = `set -e
u="$AWSTEST_USER"
id -u "$u" >/dev/null 2>&1 || useradd -m -s /bin/bash "$u"
echo "$u ALL=(ALL) NOPASSWD:ALL" > /etc/sudoers.d/90-cloud-init-users
chmod 440 /etc/sudoers.d/90-cloud-init-users
home=$(getent passwd "$u" | cut -d: -f6)
install -d -m 700 -o "$u" -g "$(id -g "$u")" "$home/.ssh"
printf '%s\n' "$AWSTEST_KEY" > "$home/.ssh/authorized_keys"
chown "$u:$(id -g "$u")" "$home/.ssh/authorized_keys"
chmod 600 "$home/.ssh/authorized_keys"
for c in shutdown poweroff halt; do printf '#!/bin/sh\nkill -TERM 1\n' > /usr/local/sbin/$c; chmod 755 /usr/local/sbin/$c; done
ssh-keygen -A >/dev/null
mkdir -p /run/sshd /var/lib/cloud
if [ ! -e /var/lib/cloud/boot-finished ]; then
  printf '%s' "$AWSTEST_USER_DATA" | base64 -d > /var/lib/cloud/user-data
  chmod 700 /var/lib/cloud/user-data
  /var/lib/cloud/user-data > /var/log/cloud-init-output.log 2>&1 || echo "user-data exited $?" >> /var/log/cloud-init-output.log
  touch /var/lib/cloud/boot-finished
fi
exec /usr/sbin/sshd -D -e
`

// User is the login user the machines give the key pair's key, as
// Ubuntu's AMIs do.
var User = "ubuntu"

func (b *Booter) boot(ctx context.Context, i types.Instance) error {
	// Not cancelled with the loop: a create given up by the client may
	// still finish in the daemon after Close has swept, and leak. The
	// loop, and so Close, waits for it instead.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	id := sdk.ToString(i.InstanceId)
	ip := sdk.ToString(i.PrivateIpAddress)
	subnet := sdk.ToString(i.SubnetId)
	b.mu.Lock()
	netID, ok := b.nets[subnet]
	b.mu.Unlock()
	if !ok {
		return nil // not an instance of this Booter's subnets
	}
	key, err := b.publicKey(ctx, sdk.ToString(i.KeyName))
	if err != nil {
		return err
	}
	ud, err := b.ec2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: sdk.String(id), Attribute: types.InstanceAttributeNameUserData})
	if err != nil {
		return err
	}
	userData := ""
	if ud.UserData != nil {
		userData = sdk.ToString(ud.UserData.Value)
	}
	if _, err := base64.StdEncoding.DecodeString(userData); err != nil {
		userData = base64.StdEncoding.EncodeToString([]byte(userData))
	}
	port, _ := nat.NewPort("tcp", "22")
	cc := &container.Config{
		Image:        b.image,
		Hostname:     "ip-" + strings.ReplaceAll(ip, ".", "-"),
		Labels:       map[string]string{Label: b.id, "skyward.test.instance": id},
		Env:          []string{"AWSTEST_USER=" + User, "AWSTEST_KEY=" + key, "AWSTEST_USER_DATA=" + userData},
		Cmd:          []string{"sh", "-c", bootScript},
		ExposedPorts: nat.PortSet{port: {}},
	}
	hc := &container.HostConfig{PortBindings: nat.PortMap{port: {{HostIP: "127.0.0.1", HostPort: "0"}}}}
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		netID: {NetworkID: netID, IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: ip}}}}
	created, err := b.docker.ContainerCreate(ctx, cc, hc, nc, nil, "skyward-awstest-"+id)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.booted[id] = &machine{container: created.ID}
	b.mu.Unlock()
	if err := b.docker.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return err
	}
	return b.writePort(ctx, id, created.ID)
}

// writePort records the published SSH port of the machine for the proxy.
func (b *Booter) writePort(ctx context.Context, id, containerID string) error {
	ci, err := b.docker.ContainerInspect(ctx, containerID)
	if err != nil {
		return err
	}
	var port string
	for _, pb := range ci.NetworkSettings.Ports["22/tcp"] {
		port = pb.HostPort
	}
	if _, err := strconv.Atoi(port); err != nil {
		return fmt.Errorf("no published SSH port on %s", containerID[:12])
	}
	if err := os.MkdirAll(filepath.Join(b.dir, "ports"), 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(b.dir, "ports", "."+id)
	if err := os.WriteFile(tmp, []byte(port), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(b.dir, "ports", id))
}

// publicKey is the key pair's public key, as moto keeps it.
func (b *Booter) publicKey(ctx context.Context, name string) (string, error) {
	// Not cached: a replaced pool imports a new key under the same name.
	out, err := b.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{name}, IncludePublicKey: sdk.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("key pair %q: %w", name, err)
	}
	if len(out.KeyPairs) == 0 {
		return "", fmt.Errorf("key pair %q not found", name)
	}
	return strings.TrimSpace(sdk.ToString(out.KeyPairs[0].PublicKey)), nil
}
