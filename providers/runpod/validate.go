package runpod

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/agext/levenshtein"

	"github.com/skyward-sh/skyward/providers"
)

// gpuType is one entry of GraphQL's gpuTypes.
type gpuType struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	MemoryInGb  int    `json:"memoryInGb"`
}

// gpuTypes returns RunPod's GPU types, asked once per provider.
func (p *Provider) gpuTypes(ctx context.Context) ([]gpuType, error) {
	p.gpuMu.Lock()
	defer p.gpuMu.Unlock()
	if p.gpus != nil {
		return p.gpus, nil
	}
	var out struct {
		GPUTypes []gpuType `json:"gpuTypes"`
	}
	if err := p.api.query(ctx, `query GpuTypes { gpuTypes { id displayName memoryInGb } }`, nil, &out); err != nil {
		return nil, err
	}
	p.gpus = out.GPUTypes
	return p.gpus, nil
}

// ValidateNodes implements providers.Validator: every node must be
// something RunPod rents (a GPU type it has, in a count from 1 to 8, or
// a CPU pod within its flavours), and the nodes of a pool of more than
// one node, an Instant Cluster, need GPUs. The GPU types come from
// RunPod's GraphQL gpuTypes.
func (p *Provider) ValidateNodes(ctx context.Context, nodes []providers.NodeSpec) error {
	// The nodes of a pool share their settings: one line says what is
	// wrong with all those it applies to.
	var order []string
	hosts := map[string][]string{}
	fail := func(host, msg string) {
		if _, ok := hosts[msg]; !ok {
			order = append(order, msg)
		}
		hosts[msg] = append(hosts[msg], host)
	}
	needGPUs := false
	for _, n := range nodes {
		if n.Accelerator != "" {
			needGPUs = true
		}
	}
	var gpus []gpuType
	if needGPUs {
		var err error
		if gpus, err = p.gpuTypes(ctx); err != nil {
			return fmt.Errorf("list RunPod's GPU types: %w", err)
		}
	}
	for _, n := range nodes {
		s, err := shapeOf(n)
		if err != nil {
			fail(n.Hostname, err.Error())
			continue
		}
		if s.gpu == "" && nodeIndex(n.Hostname) > 0 {
			fail(n.Hostname, `a pool of more than one node is an Instant Cluster on RunPod, which needs GPUs: set accelerator (for example "NVIDIA H100 80GB HBM3:8")`)
			continue
		}
		if s.gpu != "" && !knownGPU(gpus, s.gpu) {
			fail(n.Hostname, fmt.Sprintf("accelerator %q is not a RunPod GPU type%s", s.gpu, closeNames(gpus, s.gpu)))
		}
	}
	errs := make([]error, len(order))
	for i, msg := range order {
		errs[i] = fmt.Errorf("%s: %s", strings.Join(hosts[msg], ", "), msg)
	}
	return errors.Join(errs...)
}

// nodeIndex is the index in a hostname <pool>-<index>, -1 if none.
func nodeIndex(host string) int {
	i := strings.LastIndexByte(host, '-')
	if i < 0 {
		return -1
	}
	n, err := strconv.Atoi(host[i+1:])
	if err != nil {
		return -1
	}
	return n
}

func knownGPU(gpus []gpuType, id string) bool {
	for _, g := range gpus {
		if g.ID == id {
			return true
		}
	}
	return false
}

// closeNames says which GPU type ids are near name: those that contain
// it or one of its words, or are a few edits away, closest first.
func closeNames(gpus []gpuType, name string) string {
	type cand struct {
		id   string
		dist int
	}
	low := strings.ToLower(name)
	words := strings.Fields(low)
	var cs []cand
	for _, g := range gpus {
		id, disp := strings.ToLower(g.ID), strings.ToLower(g.DisplayName)
		d := levenshtein.Distance(low, id, nil)
		if dd := levenshtein.Distance(low, disp, nil); dd < d {
			d = dd
		}
		match := d <= max(3, len(low)/3) || strings.Contains(id, low) || strings.Contains(disp, low)
		for _, w := range words {
			if len(w) >= 3 && w != "nvidia" && w != "geforce" && w != "rtx" && (strings.Contains(id, w) || strings.Contains(disp, w)) {
				match = true
			}
		}
		if match {
			cs = append(cs, cand{g.ID, d})
		}
	}
	if len(cs) == 0 {
		return "; list the types with RunPod's gpuTypes query or in its console"
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].dist < cs[j].dist || cs[i].dist == cs[j].dist && cs[i].id < cs[j].id })
	if len(cs) > 5 {
		cs = cs[:5]
	}
	q := make([]string, len(cs))
	for i, c := range cs {
		q[i] = strconv.Quote(c.id)
	}
	return "; did you mean " + strings.Join(q, ", ") + "?"
}
