package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/internal/fileset"
	"github.com/skyward-sh/skyward/providers"
)

// DefaultExcludes are left out of an image's includes when it sets no
// excludes of its own.
var DefaultExcludes = []string{".git", "__pycache__", "*.pyc", ".venv", "node_modules"}

// Attribute classes. Identity attributes are shown but never diffed;
// in-place attributes change with an update; every other desired attribute
// forces replacement. Attributes not desired (provider facts such as
// private_ip, the pinned host_key) are never diffed.
var (
	identityAttrs = map[string]bool{"pool": true, "index": true, "image": true}
	inPlaceAttrs  = map[string]bool{"env": true, "includes": true, "excludes": true, "includes_hash": true, "concurrency": true, "replicas": true}
	// FactAttrs are the attributes a provider or the controller fills in.
)

// desired is one resource the configuration asks for.
type desired struct {
	addr     string
	typ      string
	pool     string
	index    int
	provider string
	attrs    map[string]any
	// sensitive lists the paths of attrs that hold sensitive values.
	sensitive [][]string
}

// NewProviderConfig is what plans and state keep of a provider block: its
// type and its arguments as JSON-shaped values (lists and maps included),
// leaving out null arguments and those the factory declares sensitive.
func NewProviderConfig(p *hclspec.Provider, f providers.Factory) ProviderConfig {
	pc := ProviderConfig{Type: p.Type, Config: map[string]any{}}
	v := p.Config
	if v == cty.NilVal || v.IsNull() || !v.IsWhollyKnown() || !v.Type().IsObjectType() {
		return pc
	}
	for name, av := range v.AsValueMap() {
		if av.IsNull() || f.IsSensitive(name) {
			continue
		}
		if x := ctyToAny(av); x != nil {
			pc.Config[name] = x
		}
	}
	return pc
}

// ProviderValue rebuilds a provider's config object from what a plan or the
// state kept of it, following the factory's schema. The sensitive
// arguments, never kept, are taken from secrets (the provider block's
// decoded value, when the config has it; cty.NilVal when not): null
// there, the provider falls back on its own default (an environment
// variable).
func ProviderValue(f providers.Factory, pc ProviderConfig, secrets cty.Value) (cty.Value, error) {
	ty := hcldec.ImpliedType(f.Schema)
	if !ty.IsObjectType() {
		return cty.EmptyObjectVal, nil
	}
	vals := map[string]cty.Value{}
	for name, aty := range ty.AttributeTypes() {
		vals[name] = cty.NullVal(aty)
		if f.IsSensitive(name) {
			if secrets != cty.NilVal && !secrets.IsNull() && secrets.Type().IsObjectType() && secrets.Type().HasAttribute(name) {
				vals[name] = secrets.GetAttr(name)
			}
			continue
		}
		x, ok := pc.Config[name]
		if !ok || x == nil {
			continue
		}
		b, err := json.Marshal(x)
		if err != nil {
			return cty.NilVal, fmt.Errorf("provider argument %q: %w", name, err)
		}
		v, err := ctyjson.Unmarshal(b, aty)
		if err != nil {
			return cty.NilVal, fmt.Errorf("provider argument %q: %w", name, err)
		}
		vals[name] = v
	}
	return cty.ObjectVal(vals), nil
}

// desiredResources lists what cfg asks for, keyed by address.
func desiredResources(cfg *hclspec.Config, reg *providers.Registry) (map[string]*desired, error) {
	out := map[string]*desired{}
	for _, p := range cfg.Pools {
		provType := hclspec.DefaultProvider
		poolCfg, nodeCfg := map[string]any{}, map[string]any{}
		if prov := cfg.Providers[p.Provider]; prov != nil {
			provType = prov.Type
			f, _ := reg.Lookup(prov.Type)
			poolCfg = NewProviderConfig(prov, f).Config
			for _, name := range f.ForceNew {
				if v, ok := poolCfg[name]; ok {
					nodeCfg[name] = v
				}
			}
		}
		addr := providers.PoolAddress(p.Name)
		out[addr] = &desired{addr: addr, typ: string(providers.KindPool), pool: p.Name, index: -1, provider: p.Provider,
			attrs: normalize(map[string]any{
				"pool":            p.Name,
				"provider":        p.Provider,
				"provider_type":   provType,
				"provider_config": poolCfg,
			})}

		var img *hclspec.Image
		if p.Image != "" {
			img = cfg.Images[p.Image]
		}
		nodeAttrs := map[string]any{
			"pool":            p.Name,
			"provider":        p.Provider,
			"provider_config": nodeCfg,
			"vcpus":           p.VCPUs,
			"memory_gb":       p.MemoryGB,
			"disk_gb":         p.DiskGB,
			"instance_type":   p.InstanceType,
			"accelerator":     p.Accelerator,
			"allocation":      p.Allocation,
			"ttl":             durationString(p.TTL.String(), p.TTL == 0),
			"concurrency":     p.Concurrency,
			"replicas":        max(p.Replicas, 1),
			"image":           p.Image,
			"apt":             []string{},
			"pip":             []string{},
			"setup":           []string{},
			"env":             map[string]string{},
			"includes":        []string{},
			"excludes":        []string{},
			"includes_hash":   "",
			"pip_files_hash":  "",
		}
		if img != nil {
			nodeAttrs["apt"] = nonNil(img.Apt)
			nodeAttrs["pip"] = nonNil(img.Pip)
			nodeAttrs["setup"] = nonNil(img.Setup)
			if img.Env != nil {
				nodeAttrs["env"] = img.Env
			}
			var local []string
			for _, item := range img.Pip {
				if hclspec.IsLocalPip(item) {
					local = append(local, item)
				}
			}
			if len(local) > 0 {
				h, err := IncludesHash(cfg.Dir, local, nil)
				if err != nil {
					return nil, fmt.Errorf("image %q: pip: %w", img.Name, err)
				}
				nodeAttrs["pip_files_hash"] = h
			}
			nodeAttrs["includes"] = nonNil(img.Includes)
			excl := img.Excludes
			if excl == nil {
				excl = DefaultExcludes
			}
			nodeAttrs["excludes"] = excl
			if len(img.Includes) > 0 {
				h, err := IncludesHash(cfg.Dir, img.Includes, excl)
				if err != nil {
					return nil, fmt.Errorf("image %q: %w", img.Name, err)
				}
				nodeAttrs["includes_hash"] = h
			}
		}
		for i := 0; i < p.Nodes; i++ {
			a := normalize(nodeAttrs)
			a["index"] = float64(i)
			naddr := providers.NodeAddress(p.Name, i)
			out[naddr] = &desired{addr: naddr, typ: string(providers.KindNode), pool: p.Name, index: i, provider: p.Provider, attrs: a,
				sensitive: nodeSensitive(p, img)}
		}
	}
	return out, nil
}

func durationString(s string, zero bool) string {
	if zero {
		return ""
	}
	return s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// normalize turns v into the shape JSON decoding gives (float64 numbers,
// []any, map[string]any) so that desired attributes compare equal to those
// read back from state.
func normalize(m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("planner: attributes not JSON: %v", err))
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// IncludesHash hashes the names, modes and contents of every file under
// the include paths (relative to dir), leaving out what the excludes
// (.gitignore patterns, see hclspec.Excludes) match: exactly what the
// bootstrap sends.
func IncludesHash(dir string, includes, excludes []string) (string, error) {
	excl, err := hclspec.NewExcludes(excludes)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, inc := range includes {
		root := inc
		if !filepath.IsAbs(root) {
			root = filepath.Join(dir, inc)
		}
		err := fileset.Walk(root, excl, func(rel string, info fs.FileInfo, full string) error {
			fmt.Fprintf(h, "%s\x00%s\x00%o\x00", inc, rel, info.Mode())
			if info.Mode().IsRegular() {
				f, err := os.Open(full)
				if err != nil {
					return err
				}
				defer f.Close()
				if _, err := io.Copy(h, f); err != nil {
					return err
				}
			} else if info.Mode()&fs.ModeSymlink != 0 {
				t, err := os.Readlink(full)
				if err != nil {
					return err
				}
				io.WriteString(h, t)
			}
			h.Write([]byte{0})
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("includes %q: %w", inc, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// itoa is strconv.Itoa, short.
func itoa(i int) string { return strconv.Itoa(i) }
