package planner

import (
	"errors"
	"fmt"
	"time"

	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/providers"
)

// attrKind is the JSON shape a desired attribute must have.
type attrKind int

const (
	kindString attrKind = iota
	kindNumber
	kindStringList
	kindStringMap
	// kindObject is a JSON object of any values: a provider's arguments,
	// which its schema checks when the provider is built from them.
	kindObject
)

// desiredAttrs are the attributes Build puts in a change's After, by
// resource type, with their shapes.
var desiredAttrs = map[string]map[string]attrKind{
	string(providers.KindPool): {
		"pool": kindString, "provider": kindString, "provider_type": kindString, "provider_config": kindObject,
	},
	string(providers.KindNode): {
		"pool": kindString, "provider": kindString, "provider_config": kindObject, "vcpus": kindNumber,
		"memory_gb": kindNumber, "disk_gb": kindNumber, "instance_type": kindString, "accelerator": kindString,
		"allocation": kindString, "ttl": kindString, "concurrency": kindNumber, "replicas": kindNumber, "image": kindString,
		"apt": kindStringList, "pip": kindStringList, "setup": kindStringList, "env": kindStringMap,
		"includes": kindStringList, "excludes": kindStringList, "includes_hash": kindString,
		"pip_files_hash": kindString, "index": kindNumber,
	},
}

// Validate checks that p is a plan Build could have made: known actions,
// addresses that agree with each change's type, pool and index, desired
// attributes of the right shape and range, a provider for every change and
// a valid prior state. A plan read from a file is checked with it before
// anything uses it.
func (p *Plan) Validate() error {
	if p.Lineage == "" {
		return errors.New("no lineage")
	}
	for addr, pc := range p.Providers {
		if pc.Type == "" {
			return fmt.Errorf("provider %q has no type", addr)
		}
	}
	seen := map[string]bool{}
	for i, c := range p.Changes {
		if c == nil {
			return fmt.Errorf("changes[%d] is null", i)
		}
		if seen[c.Address] {
			return fmt.Errorf("%s: appears twice", c.Address)
		}
		seen[c.Address] = true
		if err := c.validate(p); err != nil {
			return fmt.Errorf("%s: %w", c.Address, err)
		}
	}
	if p.Prior != nil {
		if p.Prior.Lineage != p.Lineage {
			return fmt.Errorf("the prior state's lineage %q is not the plan's %q", p.Prior.Lineage, p.Lineage)
		}
		if err := p.Prior.Validate(); err != nil {
			return fmt.Errorf("prior state: %w", err)
		}
	}
	return nil
}

func (c *Change) validate(p *Plan) error {
	switch c.Action {
	case NoOp, Create, Update, DeleteThenCreate, Delete:
	default:
		return fmt.Errorf("unknown action %q", string(c.Action))
	}
	pool, idx, err := ParseAddress(c.Address)
	if err != nil {
		return err
	}
	want := providers.PoolAddress(pool)
	typ := string(providers.KindPool)
	if idx >= 0 {
		want, typ = providers.NodeAddress(pool, idx), string(providers.KindNode)
	}
	switch {
	case c.Address != want:
		return fmt.Errorf("not a canonical address (want %s)", want)
	case c.Type != typ:
		return fmt.Errorf("type %q, but the address is of a %s", c.Type, typ)
	case c.Pool != pool:
		return fmt.Errorf("pool %q, but the address names pool %q", c.Pool, pool)
	case (idx >= 0) != (c.Index != nil) || c.Index != nil && *c.Index != idx:
		return errors.New("index does not match the address")
	case c.Provider == "":
		return errors.New("no provider")
	}
	if _, ok := p.Providers[c.Provider]; !ok && c.Action != NoOp {
		return fmt.Errorf("provider %q is not in the plan's providers", c.Provider)
	}
	// A plan file cannot tell an empty map from none (omitempty), so
	// neither may the checks.
	switch c.Action {
	case Create:
		if len(c.Before) != 0 {
			return errors.New("a create with prior attributes")
		}
	case Delete:
		if len(c.After) != 0 {
			return errors.New("a delete with desired attributes")
		}
		return nil
	}
	if len(c.After) == 0 {
		if c.Action == NoOp {
			return nil
		}
		return fmt.Errorf("a %s without desired attributes", c.Action)
	}
	return checkAttrs(c.Type, idx, c.After)
}

// checkAttrs checks desired attributes: every one known, of its shape, and
// numbers and strings within what the configuration language allows.
func checkAttrs(typ string, idx int, attrs map[string]any) error {
	schema := desiredAttrs[typ]
	for _, k := range sortedKeys(attrs) {
		kind, ok := schema[k]
		if !ok {
			return fmt.Errorf("unknown attribute %q", k)
		}
		if err := checkKind(attrs[k], kind); err != nil {
			return fmt.Errorf("attribute %q: %w", k, err)
		}
	}
	if typ != string(providers.KindNode) {
		return nil
	}
	num := func(k string) float64 { f, _ := attrs[k].(float64); return f }
	for _, k := range []string{"vcpus", "memory_gb", "disk_gb"} {
		if num(k) < 0 {
			return fmt.Errorf("attribute %q: negative", k)
		}
	}
	if c, ok := attrs["concurrency"].(float64); ok && (c < 1 || c != float64(int(c))) {
		return fmt.Errorf("attribute \"concurrency\": %v is not a whole number of at least 1", c)
	}
	if i, ok := attrs["index"].(float64); ok && i != float64(idx) {
		return fmt.Errorf("attribute \"index\": %v, but the address has index %d", i, idx)
	}
	if idx >= hclspec.MaxNodes {
		return fmt.Errorf("index %d is beyond the limit of %d nodes", idx, hclspec.MaxNodes)
	}
	if a, ok := attrs["allocation"].(string); ok && a != "" && a != hclspec.AllocationOnDemand && a != hclspec.AllocationSpot {
		return fmt.Errorf("attribute \"allocation\": unknown allocation %q", a)
	}
	if ttl, ok := attrs["ttl"].(string); ok && ttl != "" {
		if d, err := time.ParseDuration(ttl); err != nil || d < 0 {
			return fmt.Errorf("attribute \"ttl\": %q is not a duration", ttl)
		}
	}
	return nil
}

func checkKind(v any, kind attrKind) error {
	switch kind {
	case kindString:
		if _, ok := v.(string); !ok {
			return fmt.Errorf("want a string, got %s", jsonKind(v))
		}
	case kindNumber:
		if _, ok := v.(float64); !ok {
			return fmt.Errorf("want a number, got %s", jsonKind(v))
		}
	case kindStringList:
		l, ok := v.([]any)
		if !ok {
			return fmt.Errorf("want a list of strings, got %s", jsonKind(v))
		}
		for i, e := range l {
			if _, ok := e.(string); !ok {
				return fmt.Errorf("element %d: want a string, got %s", i, jsonKind(e))
			}
		}
	case kindObject:
		if _, ok := v.(map[string]any); !ok {
			return fmt.Errorf("want an object, got %s", jsonKind(v))
		}
	case kindStringMap:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("want a map of strings, got %s", jsonKind(v))
		}
		for _, k := range sortedKeys(m) {
			if _, ok := m[k].(string); !ok {
				return fmt.Errorf("key %q: want a string, got %s", k, jsonKind(m[k]))
			}
		}
	}
	return nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a bool"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
