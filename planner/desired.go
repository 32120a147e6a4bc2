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
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/skyward-sh/skyward/hclspec"
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
	inPlaceAttrs  = map[string]bool{"env": true, "includes": true, "excludes": true, "includes_hash": true, "concurrency": true}
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

// providerStrings converts a decoded provider block into strings, leaving
// out null attributes.
func providerStrings(v cty.Value) map[string]string {
	out := map[string]string{}
	if v.IsNull() || !v.IsKnown() || !v.Type().IsObjectType() {
		return out
	}
	for name, av := range v.AsValueMap() {
		if av.IsNull() || !av.IsKnown() {
			continue
		}
		if sv, err := convert.Convert(av, cty.String); err == nil {
			out[name] = sv.AsString()
		}
	}
	return out
}

// ProviderValue rebuilds a provider's config object from its strings,
// following the factory's schema.
func ProviderValue(schema hcldec.ObjectSpec, m map[string]string) (cty.Value, error) {
	ty := hcldec.ImpliedType(schema)
	if !ty.IsObjectType() {
		return cty.EmptyObjectVal, nil
	}
	vals := map[string]cty.Value{}
	for name, aty := range ty.AttributeTypes() {
		s, ok := m[name]
		if !ok {
			vals[name] = cty.NullVal(aty)
			continue
		}
		v, err := convert.Convert(cty.StringVal(s), aty)
		if err != nil {
			return cty.NilVal, fmt.Errorf("provider argument %q: %w", name, err)
		}
		vals[name] = v
	}
	return cty.ObjectVal(vals), nil
}

// desiredResources lists what cfg asks for, keyed by address.
func desiredResources(cfg *hclspec.Config) (map[string]*desired, error) {
	out := map[string]*desired{}
	for _, p := range cfg.Pools {
		prov := cfg.Providers[p.Provider]
		provCfg := map[string]string{}
		provType := hclspec.DefaultProvider
		if prov != nil {
			provCfg = providerStrings(prov.Config)
			provType = prov.Type
		}
		poolCfg := map[string]any{}
		for k, v := range provCfg {
			if k != "image" {
				poolCfg[k] = v
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
			"pool":           p.Name,
			"provider":       p.Provider,
			"base_image":     provCfg["image"],
			"vcpus":          p.VCPUs,
			"memory_gb":      p.MemoryGB,
			"disk_gb":        p.DiskGB,
			"instance_type":  p.InstanceType,
			"accelerator":    p.Accelerator,
			"allocation":     p.Allocation,
			"ttl":            durationString(p.TTL.String(), p.TTL == 0),
			"concurrency":    p.Concurrency,
			"image":          p.Image,
			"apt":            []string{},
			"pip":            []string{},
			"setup":          []string{},
			"env":            map[string]string{},
			"includes":       []string{},
			"excludes":       []string{},
			"includes_hash":  "",
			"pip_files_hash": "",
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
// the include paths (relative to dir), leaving out names matching excludes.
func IncludesHash(dir string, includes, excludes []string) (string, error) {
	h := sha256.New()
	for _, inc := range includes {
		root := inc
		if !filepath.IsAbs(root) {
			root = filepath.Join(dir, inc)
		}
		err := WalkIncludes(root, excludes, func(rel string, info fs.FileInfo, full string) error {
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

// WalkIncludes calls fn for root and every file and directory below it in
// lexical order, skipping those that excludes (.gitignore patterns relative
// to root, see hclspec.Excludes) leave out. rel is the path relative to
// root's parent, with forward slashes.
func WalkIncludes(root string, excludes []string, fn func(rel string, info fs.FileInfo, full string) error) error {
	parent := filepath.Dir(root)
	excl, err := hclspec.NewExcludes(excludes)
	if err != nil {
		return err
	}
	return filepath.Walk(root, func(full string, info fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if below, err := filepath.Rel(root, full); err == nil && excl.Match(filepath.ToSlash(below), info.IsDir()) {
			if info.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(parent, full)
		if err != nil {
			return err
		}
		return fn(filepath.ToSlash(rel), info, full)
	})
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
