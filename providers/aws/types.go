package aws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/skyward-sh/skyward/providers"
)

// typeCacheTTL is how long the instance types of a region are kept on
// disk.
const typeCacheTTL = 24 * time.Hour

// InstanceType is what the provider knows of an EC2 instance type.
type InstanceType struct {
	Name          string   `json:"name"`
	VCPUs         int      `json:"vcpus"`
	MemoryMiB     int64    `json:"memory_mib"`
	Architectures []string `json:"architectures"`
	CurrentGen    bool     `json:"current_generation"`
	Spot          bool     `json:"spot"`
	GPUs          []GPU    `json:"gpus,omitempty"`
}

// GPU is an accelerator of an instance type.
type GPU struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

type typeCatalog struct {
	Fetched time.Time      `json:"fetched"`
	Types   []InstanceType `json:"types"`
}

type imageInfo struct {
	arch       string // x86_64 or arm64
	rootDevice string
}

// image resolves, once, the AMI nodes boot from: ami as given, or read
// from an SSM parameter (the default one when ami is empty), then
// described to learn its architecture and root device.
func (p *Provider) image(ctx context.Context) (string, imageInfo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.amiID != "" {
		return p.amiID, p.amiInfo, nil
	}
	ami := p.cfg.AMI
	param := strings.TrimPrefix(ami, "resolve:ssm:")
	if ami == "" {
		param = DefaultAMIParameter
	}
	if strings.HasPrefix(param, "/") {
		out, err := p.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: sdk.String(param)})
		if errorCode(err) == "ParameterNotFound" {
			return "", imageInfo{}, fmt.Errorf("AMI not found: the SSM parameter %s does not exist in %s; set ami to an AMI id", param, p.awsCfg.Region)
		}
		if err != nil {
			return "", imageInfo{}, p.apiError("read the AMI from SSM parameter "+param, err)
		}
		ami = sdk.ToString(out.Parameter.Value)
	}
	out, err := p.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	if err != nil {
		return "", imageInfo{}, p.apiError("find AMI "+ami, err)
	}
	if len(out.Images) == 0 {
		return "", imageInfo{}, fmt.Errorf("AMI not found: %s does not exist in %s (or is not shared with this account)", ami, p.awsCfg.Region)
	}
	img := out.Images[0]
	info := imageInfo{arch: string(img.Architecture), rootDevice: sdk.ToString(img.RootDeviceName)}
	if info.arch == "" {
		info.arch = "x86_64"
	}
	if info.rootDevice == "" {
		info.rootDevice = "/dev/sda1"
	}
	p.amiID, p.amiInfo = ami, info
	return ami, info, nil
}

// instanceType is the node's instance type: NodeSpec.InstanceType, else
// the cheapest that fits (ChooseInstanceType). The choice is remembered
// per spec.
func (p *Provider) instanceType(ctx context.Context, n providers.NodeSpec, arch string) (string, error) {
	if n.InstanceType != "" {
		return n.InstanceType, nil
	}
	key := fmt.Sprintf("%g/%g/%s/%s/%s", n.VCPUs, n.MemoryGB, n.Accelerator, n.Allocation, arch)
	p.mu.Lock()
	if t, ok := p.chosen[key]; ok {
		p.mu.Unlock()
		return t, nil
	}
	p.mu.Unlock()
	cat, err := p.catalog(ctx, arch)
	if err != nil {
		return "", err
	}
	t, err := ChooseInstanceType(cat, n, arch)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	p.chosen[key] = t.Name
	p.mu.Unlock()
	return t.Name, nil
}

// catalog returns the region's current-generation instance types of the
// architecture arch: from the cache file when it is younger than a day,
// else from DescribeInstanceTypes (every page, filtered by EC2), written
// back to the cache.
func (p *Provider) catalog(ctx context.Context, arch string) ([]InstanceType, error) {
	p.catMu.Lock()
	defer p.catMu.Unlock()
	if cat := p.types[arch]; cat != nil {
		return cat.Types, nil
	}
	file := p.cacheFile(arch)
	if cat, ok := readCatalog(file, time.Now()); ok {
		p.types[arch] = cat
		return cat.Types, nil
	}
	var list []InstanceType
	pg := ec2.NewDescribeInstanceTypesPaginator(p.ec2, &ec2.DescribeInstanceTypesInput{Filters: []types.Filter{
		{Name: sdk.String("current-generation"), Values: []string{"true"}},
		{Name: sdk.String("processor-info.supported-architecture"), Values: []string{arch}},
	}})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, p.apiError("list instance types", err)
		}
		for _, t := range page.InstanceTypes {
			it := InstanceType{Name: string(t.InstanceType), CurrentGen: sdk.ToBool(t.CurrentGeneration)}
			if t.VCpuInfo != nil {
				it.VCPUs = int(sdk.ToInt32(t.VCpuInfo.DefaultVCpus))
			}
			if t.MemoryInfo != nil {
				it.MemoryMiB = sdk.ToInt64(t.MemoryInfo.SizeInMiB)
			}
			if t.ProcessorInfo != nil {
				for _, a := range t.ProcessorInfo.SupportedArchitectures {
					it.Architectures = append(it.Architectures, string(a))
				}
			}
			for _, u := range t.SupportedUsageClasses {
				if u == "spot" {
					it.Spot = true
				}
			}
			if t.GpuInfo != nil {
				for _, g := range t.GpuInfo.Gpus {
					it.GPUs = append(it.GPUs, GPU{Name: sdk.ToString(g.Name), Count: int(sdk.ToInt32(g.Count))})
				}
			}
			list = append(list, it)
		}
	}
	cat := &typeCatalog{Fetched: time.Now().UTC(), Types: list}
	writeCatalog(file, cat)
	p.types[arch] = cat
	return list, nil
}

// cacheFile is the cache of this region, endpoint (an emulator's types
// are not the cloud's) and architecture.
func (p *Provider) cacheFile(arch string) string {
	if p.cacheDir == "" {
		return ""
	}
	endpoint := p.cfg.Endpoint
	if endpoint == "" {
		endpoint = os.Getenv("AWS_ENDPOINT_URL")
	}
	sum := sha256.Sum256([]byte(endpoint))
	return filepath.Join(p.cacheDir, fmt.Sprintf("aws-instance-types-%s-%s-%s.json", p.awsCfg.Region, arch, hex.EncodeToString(sum[:4])))
}

// readCatalog reads a cache file written less than typeCacheTTL before
// now.
func readCatalog(file string, now time.Time) (*typeCatalog, bool) {
	if file == "" {
		return nil, false
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, false
	}
	var cat typeCatalog
	if json.Unmarshal(b, &cat) != nil || len(cat.Types) == 0 || now.Sub(cat.Fetched) > typeCacheTTL || cat.Fetched.After(now.Add(time.Minute)) {
		return nil, false
	}
	return &cat, true
}

// writeCatalog writes the cache atomically; a cache that cannot be
// written costs a lookup next time, nothing more.
func writeCatalog(file string, cat *typeCatalog) {
	if file == "" {
		return
	}
	b, err := json.Marshal(cat)
	if err != nil {
		return
	}
	if os.MkdirAll(filepath.Dir(file), 0o755) != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".types-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), file) != nil {
		os.Remove(tmp.Name())
	}
}

// Hourly on-demand prices (USD, us-east-1) by family, used to rank the
// types that fit: per GiB of memory for burstable families, whose sizes
// differ by memory, else per vCPU. A family not listed is estimated from
// its vCPUs and memory, and ranked after the listed ones of equal cost.
var (
	perGiB = map[string]float64{"t3a": 0.0094, "t3": 0.0104, "t2": 0.0116, "t4g": 0.0084}
	perCPU = map[string]float64{
		"m6a": 0.0432, "m5a": 0.043, "m6i": 0.048, "m5": 0.048, "m7i": 0.0504, "m7a": 0.05795,
		"c6a": 0.03825, "c5a": 0.0385, "c6i": 0.0425, "c5": 0.0425, "c7i": 0.04465,
		"r6a": 0.0567, "r5a": 0.0565, "r6i": 0.063, "r5": 0.063,
		"g4dn": 0.1315, "g5": 0.2515, "g6": 0.201, "p3": 0.3825, "p4d": 0.4097, "p5": 0.5121,
	}
)

// EstimatedPrice is the hourly price the ranking uses for t.
func EstimatedPrice(t InstanceType) float64 {
	family, _, _ := strings.Cut(t.Name, ".")
	gib := float64(t.MemoryMiB) / 1024
	if r, ok := perGiB[family]; ok {
		return r * gib
	}
	if r, ok := perCPU[family]; ok {
		return r * float64(t.VCPUs)
	}
	return (0.05*float64(t.VCPUs) + 0.0067*gib) * 1.1
}

// ChooseInstanceType returns the cheapest current-generation type of the
// architecture arch with at least the node's vCPUs and memory, the
// accelerator it names ("NAME" or "NAME:COUNT", matched without regard to
// case), and spot support when it asks for spot. Ties go to the smaller,
// then to the name.
func ChooseInstanceType(types []InstanceType, n providers.NodeSpec, arch string) (InstanceType, error) {
	accName, accCount := parseAccelerator(n.Accelerator)
	var fits []InstanceType
	for _, t := range types {
		if !t.CurrentGen || !contains(t.Architectures, arch) || float64(t.VCPUs) < n.VCPUs || float64(t.MemoryMiB) < n.MemoryGB*1024 {
			continue
		}
		if n.Allocation == "spot" && !t.Spot {
			continue
		}
		if strings.Contains(t.Name, ".metal") {
			continue
		}
		if accName == "" && len(t.GPUs) > 0 {
			continue
		}
		if accName != "" && !hasGPU(t, accName, accCount) {
			continue
		}
		fits = append(fits, t)
	}
	if len(fits) == 0 {
		what := fmt.Sprintf("%g vCPUs and %g GB of memory", n.VCPUs, n.MemoryGB)
		if n.Accelerator != "" {
			what += " with accelerator " + n.Accelerator
		}
		if n.Allocation == "spot" {
			what += " on spot"
		}
		return InstanceType{}, fmt.Errorf("no %s instance type has %s; lower vcpus/memory_gb or set instance_type", arch, what)
	}
	sort.Slice(fits, func(i, j int) bool {
		a, b := fits[i], fits[j]
		pa, pb := math.Round(EstimatedPrice(a)*1e5), math.Round(EstimatedPrice(b)*1e5)
		if pa != pb {
			return pa < pb
		}
		if a.VCPUs != b.VCPUs {
			return a.VCPUs < b.VCPUs
		}
		if a.MemoryMiB != b.MemoryMiB {
			return a.MemoryMiB < b.MemoryMiB
		}
		return a.Name < b.Name
	})
	return fits[0], nil
}

func parseAccelerator(s string) (string, int) {
	if s == "" {
		return "", 0
	}
	name, count, ok := strings.Cut(s, ":")
	n := 1
	if ok {
		if c, err := strconv.Atoi(count); err == nil && c > 0 {
			n = c
		}
	}
	return strings.ToLower(name), n
}

func hasGPU(t InstanceType, name string, count int) bool {
	for _, g := range t.GPUs {
		if strings.ToLower(g.Name) == name && g.Count >= count {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ValidateNodes implements providers.Validator: at plan time it resolves
// the AMI and the subnet and chooses each node's instance type, so that an
// AMI that is not there or a size no type has fails the plan.
func (p *Provider) ValidateNodes(ctx context.Context, nodes []providers.NodeSpec) error {
	if len(nodes) == 0 {
		return nil
	}
	_, info, err := p.image(ctx)
	if err != nil {
		return err
	}
	if _, _, err := p.network(ctx); err != nil {
		return err
	}
	for _, n := range nodes {
		if n.InstanceType == "" {
			// Once, and an error of the lookup once, not once a node.
			if _, err := p.catalog(ctx, info.arch); err != nil {
				return err
			}
			break
		}
	}
	var errs []error
	seen := map[string]bool{}
	for _, n := range nodes {
		if n.Allocation != "" && n.Allocation != "spot" && n.Allocation != "on-demand" {
			errs = append(errs, fmt.Errorf("%s: allocation = %q; use \"on-demand\" or \"spot\"", n.Hostname, n.Allocation))
			continue
		}
		if _, err := p.instanceType(ctx, n, info.arch); err != nil {
			msg := err.Error()
			if !seen[msg] {
				seen[msg] = true
				errs = append(errs, fmt.Errorf("%s: %w", n.Hostname, err))
			}
		}
	}
	return errors.Join(errs...)
}
