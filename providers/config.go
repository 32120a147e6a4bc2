package providers

import (
	"errors"
	"fmt"

	"github.com/zclconf/go-cty/cty"
)

// ConfigStrings checks that cfg, a provider block decoded by its
// provider's schema, is wholly known and an object, and returns those of
// its string arguments among names that are set (not null), by name. who
// names the provider in errors ("aws provider"). A null cfg has none.
func ConfigStrings(cfg cty.Value, who string, names ...string) (map[string]string, error) {
	if cfg.IsNull() {
		return nil, nil
	}
	if !cfg.IsWhollyKnown() {
		return nil, errors.New(who + ": configuration is not known yet")
	}
	if !cfg.Type().IsObjectType() {
		return nil, fmt.Errorf("%s: configuration must be an object, not %s", who, cfg.Type().FriendlyName())
	}
	set := map[string]string{}
	for _, name := range names {
		if !cfg.Type().HasAttribute(name) {
			continue
		}
		v := cfg.GetAttr(name)
		if v.IsNull() {
			continue
		}
		if v.Type() != cty.String {
			return nil, fmt.Errorf("%s: %q must be a string", who, name)
		}
		set[name] = v.AsString()
	}
	return set, nil
}
