package hclspec

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
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
	p.VCPUs, _ = l.numberArg(content, "vcpus", 0, &diags)
	p.MemoryGB, _ = l.numberArg(content, "memory_gb", 0, &diags)
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
	return p, nodesOK, diags
}
