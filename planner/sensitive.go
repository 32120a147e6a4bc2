package planner

import (
	"strconv"

	"github.com/skyward-sh/skyward/hclspec"
)

// SensitiveText is what human output shows in place of a sensitive value.
const SensitiveText = "(sensitive value)"

// MaskedValue stands in for a sensitive value in the copies of attributes
// that MaskAttributes returns. It prints as SensitiveText, in JSON too.
type MaskedValue struct{}

// String returns SensitiveText.
func (MaskedValue) String() string { return SensitiveText }

// MarshalJSON writes SensitiveText as a JSON string.
func (MaskedValue) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(SensitiveText)), nil }

// poolNodeAttrs are the pool arguments that become node attributes of the
// same name.
var poolNodeAttrs = map[string]bool{
	"vcpus": true, "memory_gb": true, "disk_gb": true, "instance_type": true, "accelerator": true,
	"allocation": true, "ttl": true, "concurrency": true,
}

// nodeSensitive returns the paths of a node's attributes that derive from
// sensitive values of its pool or image (whose arguments are the node
// attributes of the same names). img may be nil.
func nodeSensitive(p *hclspec.Pool, img *hclspec.Image) [][]string {
	var out [][]string
	for _, path := range p.Sensitive {
		if len(path) > 0 && poolNodeAttrs[path[0]] {
			out = append(out, path)
		}
	}
	if img != nil {
		out = append(out, img.Sensitive...)
	}
	return out
}

// unionPaths returns the paths of a and b, each once.
func unionPaths(a, b [][]string) [][]string {
	var out [][]string
	seen := map[string]bool{}
	for _, p := range append(append([][]string(nil), a...), b...) {
		k := pathKey(p)
		if !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}

func pathKey(p []string) string {
	k := ""
	for _, s := range p {
		k += strconv.Quote(s)
	}
	return k
}

// MaskAttributes returns a copy of attrs with the value at every path
// replaced by MaskedValue. Paths that lead nowhere are ignored. attrs is
// not modified; nil stays nil.
func MaskAttributes(attrs map[string]any, paths [][]string) map[string]any {
	if attrs == nil {
		return nil
	}
	out := copyAny(attrs).(map[string]any)
	for _, p := range paths {
		if len(p) == 0 {
			continue
		}
		if v, ok := out[p[0]]; ok {
			out[p[0]] = maskAt(v, p[1:])
		}
	}
	return out
}

// maskAt returns v with the value at path masked; v has been copied.
func maskAt(v any, path []string) any {
	if len(path) == 0 {
		return MaskedValue{}
	}
	switch v := v.(type) {
	case map[string]any:
		if e, ok := v[path[0]]; ok {
			v[path[0]] = maskAt(e, path[1:])
		}
	case []any:
		if i, err := strconv.Atoi(path[0]); err == nil && i >= 0 && i < len(v) {
			v[i] = maskAt(v[i], path[1:])
		}
	}
	return v
}

func copyAny(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = copyAny(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = copyAny(e)
		}
		return out
	}
	return v
}

// sensitiveShape is Terraform's before_sensitive/after_sensitive for attrs:
// an object with true where a value is sensitive, lists of booleans and
// nested objects leading to the sensitive parts, and nothing for
// attributes with no sensitive part.
func sensitiveShape(attrs map[string]any, paths [][]string) map[string]any {
	out := map[string]any{}
	if attrs == nil {
		return out
	}
	for _, p := range paths {
		if len(p) == 0 {
			continue
		}
		v, ok := attrs[p[0]]
		if !ok {
			continue
		}
		out[p[0]] = shapeAt(out[p[0]], v, p[1:])
	}
	return out
}

// shapeAt marks path of value v in the shape built so far (nil at first).
func shapeAt(shape, v any, path []string) any {
	if len(path) == 0 || shape == true {
		return true
	}
	switch v := v.(type) {
	case map[string]any:
		m, _ := shape.(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		if e, ok := v[path[0]]; ok {
			m[path[0]] = shapeAt(m[path[0]], e, path[1:])
		}
		return m
	case []any:
		l, _ := shape.([]any)
		if l == nil {
			l = make([]any, len(v))
			for i := range l {
				l[i] = false
			}
		}
		if i, err := strconv.Atoi(path[0]); err == nil && i >= 0 && i < len(v) {
			prev := l[i]
			if prev == false {
				prev = nil
			}
			l[i] = shapeAt(prev, v[i], path[1:])
		}
		return l
	}
	return true
}
