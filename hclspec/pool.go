package hclspec

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

var poolSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "provider"},
		{Name: "nodes"},
		{Name: "vcpus"},
		{Name: "memory_gb"},
		{Name: "disk_gb"},
		{Name: "image"},
		{Name: "accelerator"},
		{Name: "allocation"},
		{Name: "instance_type"},
		{Name: "ttl"},
		{Name: "concurrency"},
		{Name: "collections"},
	},
}

// Allocation strategies of a pool.
const (
	AllocationOnDemand = "on-demand"
	AllocationSpot     = "spot"
)

// decodePool decodes one pool block. nodesOK is false when the node count
// could not be determined, so that checks against it are skipped.
func (l *loader) decodePool(b *hcl.Block) (p *Pool, nodesOK bool, diags hcl.Diagnostics) {
	p = &Pool{
		Name:        b.Labels[0],
		Provider:    DefaultProvider,
		Nodes:       1,
		Allocation:  AllocationOnDemand,
		Concurrency: 1,
		Replicas:    1,
		DeclRange:   b.DefRange,
	}
	content, diags := b.Body.Content(poolSchema)
	l.sensitive = nil
	defer func() { p.Sensitive = l.takeSensitive() }()
	nodesOK = true

	if attr, ok := content.Attributes["provider"]; ok {
		addr, d := l.providerRef(attr)
		diags = append(diags, d...)
		if addr != "" {
			p.Provider = addr
		}
	}
	if attr, ok := content.Attributes["image"]; ok {
		names, ok, d := traversalArg(attr, "image", "image", "image.py")
		diags = append(diags, d...)
		if ok {
			if _, declared := l.imageDecls[names[0]]; declared {
				p.Image = names[0]
			} else {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Reference to undeclared image",
					Detail:   fmt.Sprintf("An image named %q has not been declared. Declare it with an image %q {} block.", names[0], names[0]),
					Subject:  attr.Expr.Range().Ptr(),
				})
			}
		}
	}

	if _, ok := content.Attributes["nodes"]; ok {
		p.Nodes, nodesOK = l.intArg(content, "nodes", 1, MaxNodes, &diags)
	}
	if !validPoolName(p.Name) {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid pool name",
			Detail: fmt.Sprintf("The pool name %q cannot name nodes: it must start with an ASCII letter, hold only ASCII letters, digits, \"-\" and \"_\", and have at most %d characters, since nodes are called <pool>-<index> (their hostnames) on every provider.",
				p.Name, MaxPoolName),
			Subject: b.LabelRanges[0].Ptr(),
		})
	}
	p.VCPUs, _ = l.numberArg(content, "vcpus", 0, &diags)
	if p.VCPUs > 0 && p.VCPUs < MinVCPUs {
		diags = append(diags, l.invalidValue(content.Attributes["vcpus"], "The value of \"vcpus\" must be 0 (no limit) or at least %g; got %g.", MinVCPUs, p.VCPUs))
	}
	p.MemoryGB, _ = l.numberArg(content, "memory_gb", 0, &diags)
	if p.MemoryGB > 0 && p.MemoryGB < MinMemoryGB {
		diags = append(diags, l.invalidValue(content.Attributes["memory_gb"], "The value of \"memory_gb\" must be 0 (no limit) or at least %g (%d MiB); got %g.", MinMemoryGB, int(MinMemoryGB*1024), p.MemoryGB))
	}
	p.DiskGB, _ = l.numberArg(content, "disk_gb", 0, &diags)
	p.Accelerator, _ = l.stringArg(content, "accelerator", &diags)
	p.InstanceType, _ = l.stringArg(content, "instance_type", &diags)
	if s, ok := l.stringArg(content, "allocation", &diags); ok {
		if s != AllocationOnDemand && s != AllocationSpot {
			diags = append(diags, l.invalidValue(content.Attributes["allocation"],
				"The allocation must be %q or %q; got %q.", AllocationOnDemand, AllocationSpot, s))
		} else {
			p.Allocation = s
		}
	}
	p.TTL, _ = l.durationArg(content, "ttl", &diags)
	if n, ok := l.intArg(content, "concurrency", 1, 0, &diags); ok {
		p.Concurrency = n
	}
	if attr, ok := content.Attributes["collections"]; ok {
		p.Replicas = l.collectionsArg(attr, p, nodesOK, &diags)
	}
	return p, nodesOK, diags
}

// MaxReplicas is the most members a pool's collections store may have.
const MaxReplicas = 7

// collectionsArg decodes collections = { replicas = N }: an odd number of
// members (a majority of them must answer), at most one a node.
func (l *loader) collectionsArg(attr *hcl.Attribute, p *Pool, nodesOK bool, diags *hcl.Diagnostics) int {
	v, ok, d := l.arg(attr, cty.DynamicPseudoType, true)
	*diags = append(*diags, d...)
	if !ok || v.IsNull() {
		return 1
	}
	if !v.Type().IsObjectType() && !v.Type().IsMapType() {
		*diags = append(*diags, l.invalidValue(attr, "The value of \"collections\" must be an object such as { replicas = 3 }; got %s.", v.Type().FriendlyName()))
		return 1
	}
	replicas := 1
	for it := v.ElementIterator(); it.Next(); {
		k, ev := it.Element()
		switch k.AsString() {
		case "replicas":
			n, err := convert.Convert(ev, cty.Number)
			if err != nil || n.IsNull() || !n.IsKnown() {
				*diags = append(*diags, l.invalidValue(attr, "collections.replicas must be a number."))
				return 1
			}
			bf := n.AsBigFloat()
			i, acc := bf.Int64()
			if !bf.IsInt() || acc != 0 || i < 1 || i > MaxReplicas || i%2 == 0 {
				*diags = append(*diags, l.invalidValue(attr, "collections.replicas must be an odd whole number from 1 to %d (the store needs a majority of its members); got %s.", MaxReplicas, formatNumber(n)))
				return 1
			}
			replicas = int(i)
		default:
			*diags = append(*diags, l.invalidValue(attr, "collections has no argument %q; it takes replicas.", k.AsString()))
			return 1
		}
	}
	if nodesOK && replicas > p.Nodes {
		*diags = append(*diags, l.invalidValue(attr, "collections.replicas is %d but the pool has %d node(s): members run on nodes 0 to %d, one a node.", replicas, p.Nodes, replicas-1))
		return 1
	}
	return replicas
}

// Limits of a pool's settings that hold on every provider.
const (
	// MaxPoolName is the longest pool name: nodes' hostnames are
	// <pool>-<index>, and hostnames have at most 64 characters.
	MaxPoolName = 40
	// MinVCPUs is the smallest CPU limit a node may have.
	MinVCPUs = 0.01
	// MinMemoryGB is the smallest memory a node may have (16 MiB; Docker
	// refuses less than 6 MiB, and nothing boots in that).
	MinMemoryGB = 1.0 / 64
)

// validPoolName reports whether name can be part of hostnames and
// container names.
func validPoolName(name string) bool {
	if name == "" || len(name) > MaxPoolName || !(name[0] >= 'a' && name[0] <= 'z' || name[0] >= 'A' && name[0] <= 'Z') {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
