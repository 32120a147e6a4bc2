package runpod

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skyward-sh/skyward/providers"
)

// apiPod is a pod as REST v1 returns it (the Pod schema of
// https://rest.runpod.io/v1/openapi.json), with the Instant Cluster
// fields of GraphQL's Pod (clusterIdx, clusterIp) that cluster queries
// return.
type apiPod struct {
	ID               string         `json:"id"`
	Name             string         `json:"name"`
	Image            string         `json:"image"`
	DesiredStatus    string         `json:"desiredStatus"`
	LastStatusChange string         `json:"lastStatusChange"`
	PublicIP         string         `json:"publicIp"`
	PortMappings     map[string]int `json:"portMappings"`
	Interruptible    bool           `json:"interruptible"`
	GPUCount         int            `json:"gpuCount"`
	VCPUCount        float64        `json:"vcpuCount"`
	MemoryInGb       float64        `json:"memoryInGb"`
	ClusterIdx       *int           `json:"clusterIdx"`
	ClusterIP        string         `json:"clusterIp"`
}

// createPodInput is the body of POST /v1/pods (PodCreateInput).
type createPodInput struct {
	Name              string            `json:"name"`
	ImageName         string            `json:"imageName"`
	TemplateID        string            `json:"templateId,omitempty"`
	CloudType         string            `json:"cloudType"`
	ComputeType       string            `json:"computeType"`
	GPUTypeIDs        []string          `json:"gpuTypeIds,omitempty"`
	GPUCount          int               `json:"gpuCount,omitempty"`
	MinRAMPerGPU      int               `json:"minRAMPerGPU,omitempty"`
	MinVCPUPerGPU     int               `json:"minVCPUPerGPU,omitempty"`
	CPUFlavorIDs      []string          `json:"cpuFlavorIds,omitempty"`
	VCPUCount         int               `json:"vcpuCount,omitempty"`
	ContainerDiskInGb int               `json:"containerDiskInGb"`
	DataCenterIDs     []string          `json:"dataCenterIds,omitempty"`
	Ports             []string          `json:"ports"`
	Env               map[string]string `json:"env"`
	SupportPublicIP   bool              `json:"supportPublicIp"`
	Interruptible     bool              `json:"interruptible"`
}

// apiTemplate is a pod template as REST v1 returns it (Template).
type apiTemplate struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	ImageName         string            `json:"imageName"`
	Ports             []string          `json:"ports"`
	Env               map[string]string `json:"env,omitempty"`
	ContainerDiskInGb int               `json:"containerDiskInGb"`
	IsServerless      bool              `json:"isServerless"`
	Readme            string            `json:"readme,omitempty"`
}

// poolObject maps a pool's template to its object.
func poolObject(t apiTemplate, addr, lineage string) providers.Object {
	return providers.Object{Kind: providers.KindPool, Address: addr, ID: t.ID, Lineage: lineage,
		Private: map[string]string{"template": t.Name}}
}

// createTemplate makes a pool's template. Should the answer be lost, the
// retried POST meets the name taken: the template is then found by name.
func (p *Provider) createTemplate(ctx context.Context, name, pool string) (apiTemplate, error) {
	in := apiTemplate{Name: name, ImageName: p.image, Ports: []string{"22/tcp"}, ContainerDiskInGb: DefaultDiskGB,
		Readme: "The pods of skyward's pool " + strconv.Quote(pool) + "; skyward destroy removes it."}
	var t apiTemplate
	err := p.api.rest(ctx, http.MethodPost, "/templates", in, &t)
	if err == nil {
		return t, nil
	}
	if errors.Is(err, errUnauthorized) || ctx.Err() != nil {
		return apiTemplate{}, err
	}
	var all []apiTemplate
	if p.api.rest(ctx, http.MethodGet, "/templates", nil, &all) == nil {
		for _, o := range all {
			if o.Name == name {
				return o, nil
			}
		}
	}
	return apiTemplate{}, fmt.Errorf("create template %s: %w", name, err)
}

// apiCluster is an Instant Cluster as GraphQL returns it.
type apiCluster struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	PodCount int      `json:"podCount"`
	Pods     []apiPod `json:"pods"`
}

// poolName is the name of a pool's cluster and the prefix of its pods'
// names: skyward-<lineage8>-<pool>.
func poolName(lineage, pool string) string { return namePrefix(lineage) + pool }

// namePrefix starts the name of everything of a lineage.
func namePrefix(lineage string) string {
	if len(lineage) > 8 {
		lineage = lineage[:8]
	}
	return "skyward-" + lineage + "-"
}

// podName is skyward-<lineage8>-<pool>-<index>.
func podName(lineage, pool string, index int) string {
	return fmt.Sprintf("%s-%d", poolName(lineage, pool), index)
}

// parsePodName splits a pod name of a lineage into pool and index.
func parsePodName(name, prefix string) (pool string, index int, ok bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return "", 0, false
	}
	i := strings.LastIndexByte(rest, '-')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(rest[i+1:])
	if err != nil || n < 0 || strconv.Itoa(n) != rest[i+1:] {
		return "", 0, false
	}
	return rest[:i], n, true
}

// nodeObject maps a pod to a node object. A pod runs for skyward once
// RunPod has it RUNNING with a public IP and port 22 mapped.
func nodeObject(pod apiPod, addr, lineage, cluster string) providers.Object {
	port := pod.PortMappings["22"]
	o := providers.Object{Kind: providers.KindNode, Address: addr, ID: pod.ID, Lineage: lineage,
		PublicIP: pod.PublicIP, PrivateIP: pod.ClusterIP,
		Private: map[string]string{"pod_name": pod.Name}}
	if cluster != "" {
		o.Private["cluster"] = cluster
	}
	if pod.DesiredStatus == "RUNNING" && pod.PublicIP != "" && port != 0 {
		o.Running = true
		o.SSH = providers.SSHEndpoint{Host: pod.PublicIP, Port: port, User: "root"}
	}
	return o
}

// shape is what RunPod is asked to rent for a node.
type shape struct {
	gpu      string // GPU type id; "" for a CPU pod
	gpus     int
	flavor   string // CPU flavour of a CPU pod
	vcpus    int
	memPer   int // GPU pods: minimum RAM per GPU
	vcpusPer int // GPU pods: minimum vCPUs per GPU
	disk     int
}

func (s shape) String() string {
	if s.gpu != "" {
		return fmt.Sprintf("%d x %s", s.gpus, s.gpu)
	}
	return fmt.Sprintf("a %d-vCPU %s CPU pod", s.vcpus, s.flavor)
}

// shapeOf turns a node spec into what RunPod rents, or says why it
// cannot be rented. The accelerator's name is taken as given; Validate
// checks it against RunPod's GPU types.
func shapeOf(n providers.NodeSpec) (shape, error) {
	s := shape{disk: DefaultDiskGB}
	if n.DiskGB > 0 {
		s.disk = int(math.Ceil(n.DiskGB))
	}
	if n.InstanceType != "" {
		return s, fmt.Errorf("instance_type = %q: RunPod has no instance types; set accelerator (a GPU type) or vcpus and memory_gb", n.InstanceType)
	}
	if n.Accelerator != "" {
		name, count, err := parseAccelerator(n.Accelerator)
		if err != nil {
			return s, err
		}
		s.gpu, s.gpus = name, count
		if n.MemoryGB > 0 {
			s.memPer = int(math.Ceil(n.MemoryGB / float64(count)))
		}
		if n.VCPUs > 0 {
			s.vcpusPer = int(math.Ceil(n.VCPUs / float64(count)))
		}
		return s, nil
	}
	if n.Allocation == "spot" {
		return s, errors.New(`allocation = "spot" needs an accelerator: RunPod rents only GPU pods as interruptible`)
	}
	s.vcpus = 2
	if n.VCPUs > 0 {
		s.vcpus = int(math.Ceil(n.VCPUs))
	}
	// RunPod's CPU flavours give 2, 4 or 8 GB of RAM per vCPU.
	perCPU := n.MemoryGB / float64(s.vcpus)
	switch {
	case perCPU <= 2:
		s.flavor = "cpu3c"
	case perCPU <= 4:
		s.flavor = "cpu3g"
	case perCPU <= 8:
		s.flavor = "cpu3m"
	default:
		return s, fmt.Errorf("memory_gb = %g with %d vCPUs: RunPod's CPU pods have at most 8 GB per vCPU; raise vcpus", n.MemoryGB, s.vcpus)
	}
	return s, nil
}

// parseAccelerator splits "NAME" or "NAME:COUNT".
func parseAccelerator(a string) (string, int, error) {
	name, count := a, 1
	if i := strings.LastIndexByte(a, ':'); i >= 0 {
		n, err := strconv.Atoi(a[i+1:])
		if err != nil || n < 1 || n > 8 {
			return "", 0, fmt.Errorf("accelerator = %q: the count after %q must be a whole number from 1 to 8", a, ":")
		}
		name, count = a[:i], n
	}
	if strings.TrimSpace(name) == "" {
		return "", 0, fmt.Errorf("accelerator = %q: no GPU type before the count", a)
	}
	return strings.TrimSpace(name), count, nil
}

// image is the image a node boots.
func (p *Provider) imageOf(n *providers.NodeSpec) string {
	if n.BaseImage != "" {
		return n.BaseImage
	}
	return p.image
}

// attempts lists the data center choices to try in order: each
// configured one alone, or one try where RunPod chooses.
func (p *Provider) attempts() [][]string {
	if len(p.dcs) == 0 {
		return [][]string{nil}
	}
	out := make([][]string, len(p.dcs))
	for i, dc := range p.dcs {
		out[i] = []string{dc}
	}
	return out
}

// noCapacity is the one-line error when no data center tried had room.
func (p *Provider) noCapacity(what string, last error) error {
	where := "in any data center RunPod offered"
	if len(p.dcs) > 0 {
		where = "in " + strings.Join(p.dcs, ", ") + " (tried in that order)"
	}
	return fmt.Errorf("no capacity for %s on RunPod's %s cloud %s: %w", what, p.cloudType, where, last)
}

// createPod rents one pod for a node, trying the data centers in order
// while RunPod has no capacity. A request that fails in transit may have
// rented the pod all the same: before each retry the pod is looked up by
// its name, so that it is never rented twice.
func (p *Provider) createPod(ctx context.Context, r providers.Resource) (providers.Object, error) {
	s, err := shapeOf(*r.Node)
	if err != nil {
		return providers.Object{}, err
	}
	name := podName(r.Lineage, r.Pool, r.Index)
	in := createPodInput{Name: name, ImageName: p.imageOf(r.Node), CloudType: p.cloudType, ContainerDiskInGb: s.disk,
		Ports: []string{"22/tcp"}, Env: map[string]string{"PUBLIC_KEY": r.Node.AuthorizedKey},
		SupportPublicIP: true, Interruptible: r.Node.Allocation == "spot"}
	if r.PoolObject != nil {
		in.TemplateID = r.PoolObject.ID
	}
	if s.gpu != "" {
		in.ComputeType, in.GPUTypeIDs, in.GPUCount, in.MinRAMPerGPU, in.MinVCPUPerGPU = "GPU", []string{s.gpu}, s.gpus, s.memPer, s.vcpusPer
	} else {
		in.ComputeType, in.CPUFlavorIDs, in.VCPUCount = "CPU", []string{s.flavor}, s.vcpus
	}
	var last error
	for _, dcs := range p.attempts() {
		in.DataCenterIDs = dcs
		pod, err := p.postPod(ctx, in)
		if err == nil {
			return nodeObject(pod, r.Address, r.Lineage, ""), nil
		}
		if !errors.Is(err, errNoCapacity) {
			return providers.Object{}, err
		}
		last = err
	}
	return providers.Object{}, p.noCapacity(s.String(), last)
}

// postPod is POST /pods, retried (after a lookup by name) while RunPod
// answers 429 or 5xx or the connection fails.
func (p *Provider) postPod(ctx context.Context, in createPodInput) (apiPod, error) {
	once := *p.api
	once.attempts = 1
	delay := p.api.backoff
	for attempt := 1; ; attempt++ {
		var pod apiPod
		err := once.rest(ctx, http.MethodPost, "/pods", in, &pod)
		if err == nil {
			return pod, nil
		}
		var ae *apiError
		transient := !errors.Is(err, errUnauthorized) && !errors.Is(err, errNoCapacity) && ctx.Err() == nil &&
			(!errors.As(err, &ae) || retryable(ae.Status))
		if !transient || attempt >= p.api.attempts {
			return apiPod{}, err
		}
		select {
		case <-ctx.Done():
			return apiPod{}, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, p.api.maxBackoff)
		var found []apiPod
		if p.api.rest(ctx, http.MethodGet, "/pods?name="+url.QueryEscape(in.Name), nil, &found) == nil {
			for _, f := range found {
				if f.Name == in.Name {
					return f, nil
				}
			}
		}
	}
}

// clusterLock returns the lock of one pool's cluster.
func (p *Provider) clusterLock(name string) *sync.Mutex {
	p.clusterMu.Lock()
	defer p.clusterMu.Unlock()
	l, ok := p.clusterL[name]
	if !ok {
		l = &sync.Mutex{}
		p.clusterL[name] = l
	}
	return l
}

// createClusterNode gives node r its pod of the pool's Instant Cluster,
// creating the cluster, with one pod for every node of the pool, when
// the pool has none yet (or finding the one a killed apply created).
// RunPod cannot add a pod to a cluster nor replace one: a node whose pod
// is missing needs the pool replaced.
func (p *Provider) createClusterNode(ctx context.Context, r providers.Resource) (providers.Object, error) {
	name := poolName(r.Lineage, r.Pool)
	l := p.clusterLock(name)
	l.Lock()
	defer l.Unlock()
	cls, err := p.clusters(ctx)
	if err != nil {
		return providers.Object{}, err
	}
	var c *apiCluster
	for i := range cls {
		if cls[i].Name == name {
			c = &cls[i]
		}
	}
	if c == nil {
		created, err := p.createCluster(ctx, name, r)
		if err != nil {
			return providers.Object{}, err
		}
		c = &created
	}
	for _, pod := range c.Pods {
		if pod.ClusterIdx != nil && *pod.ClusterIdx == r.Index {
			return nodeObject(pod, r.Address, r.Lineage, c.ID), nil
		}
	}
	return providers.Object{}, fmt.Errorf("the pool's Instant Cluster %s has %d pods and none for node %d: RunPod cannot add or replace a pod of a cluster; replace the pool with skyward apply -replace=pool.%s",
		name, len(c.Pods), r.Index, r.Pool)
}

// clusterFields are the fields of a cluster the provider reads: those
// RunPod's Terraform provider selects. A cluster pod's endpoint comes
// from REST's GET /pods/{id}, as any pod's.
const clusterFields = `id name podCount pods { id name desiredStatus clusterIdx clusterIp }`

// clusters lists the account's Instant Clusters. RunPod's public sources
// show one cluster read as myself { cluster(input: {id}) }; the list is
// read the same way as myself { clusters }.
func (p *Provider) clusters(ctx context.Context) ([]apiCluster, error) {
	var out struct {
		Myself struct {
			Clusters []apiCluster `json:"clusters"`
		} `json:"myself"`
	}
	if err := p.api.query(ctx, `query Clusters { myself { clusters { `+clusterFields+` } } }`, nil, &out); err != nil {
		return nil, err
	}
	return out.Myself.Clusters, nil
}

// createCluster creates the Instant Cluster of a pool, one pod a node,
// trying the data centers in order.
func (p *Provider) createCluster(ctx context.Context, name string, r providers.Resource) (apiCluster, error) {
	s, err := shapeOf(*r.Node)
	if err != nil {
		return apiCluster{}, err
	}
	if s.gpu == "" {
		return apiCluster{}, fmt.Errorf("pool %q has %d nodes, which on RunPod is an Instant Cluster, and an Instant Cluster needs GPUs: set accelerator", r.Pool, r.PoolSize)
	}
	input := map[string]any{
		"clusterName": name, "type": "TRAINING", "gpuTypeId": s.gpu, "podCount": r.PoolSize, "gpuCountPerPod": s.gpus,
		"imageName": p.imageOf(r.Node), "containerDiskInGb": s.disk, "ports": "22/tcp",
		"env": []map[string]string{{"key": "PUBLIC_KEY", "value": r.Node.AuthorizedKey}},
	}
	var last error
	for _, dcs := range p.attempts() {
		if dcs != nil {
			input["dataCenterIds"] = dcs
		}
		var out struct {
			CreateCluster apiCluster `json:"createCluster"`
		}
		err := p.api.query(ctx, `mutation CreateCluster($input: CreateClusterInput!) { createCluster(input: $input) { `+clusterFields+` } }`,
			map[string]any{"input": input}, &out)
		if err == nil {
			return out.CreateCluster, nil
		}
		if !errors.Is(err, errNoCapacity) {
			return apiCluster{}, err
		}
		last = err
	}
	return apiCluster{}, p.noCapacity(fmt.Sprintf("an Instant Cluster of %d pods of %s", r.PoolSize, s), last)
}

// deleteCluster deletes an Instant Cluster and its pods.
func (p *Provider) deleteCluster(ctx context.Context, id string) error {
	err := p.api.query(ctx, `mutation DeleteCluster($id: String!) { deleteCluster(input: { id: $id }) }`,
		map[string]any{"id": id}, nil)
	if err != nil && strings.Contains(err.Error(), "not found") {
		return nil
	}
	return err
}
