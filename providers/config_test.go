package providers

import (
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

func TestConfigStrings(t *testing.T) {
	obj := cty.ObjectVal(map[string]cty.Value{
		"image": cty.StringVal("img:1"),
		"user":  cty.NullVal(cty.String),
		"tags":  cty.MapVal(map[string]cty.Value{"a": cty.StringVal("b")}),
	})
	set, err := ConfigStrings(obj, "test provider", "image", "user", "absent")
	if err != nil || len(set) != 1 || set["image"] != "img:1" {
		t.Errorf("set %v, %v; want only image", set, err)
	}
	if set, err := ConfigStrings(cty.NullVal(obj.Type()), "test provider", "image"); err != nil || len(set) != 0 {
		t.Errorf("null block: %v, %v", set, err)
	}
	bad := map[string]struct {
		cfg  cty.Value
		want string
	}{
		"unknown":    {cty.ObjectVal(map[string]cty.Value{"image": cty.UnknownVal(cty.String)}), "test provider: configuration is not known yet"},
		"not object": {cty.StringVal("x"), "test provider: configuration must be an object, not string"},
		"not string": {obj, `test provider: "tags" must be a string`},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := ConfigStrings(tc.cfg, "test provider", "image", "tags")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
