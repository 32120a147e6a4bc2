package hclspec

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

func TestFunctions(t *testing.T) {
	ctx := &hcl.EvalContext{Functions: Functions("testdata/valid")}
	tests := map[string]struct {
		expr string
		want cty.Value
	}{
		"length of string":   {`length("héllo")`, cty.NumberIntVal(5)},
		"length of tuple":    {`length([1, "a"])`, cty.NumberIntVal(2)},
		"length of object":   {`length({ a = 1 })`, cty.NumberIntVal(1)},
		"index finds value":  {`index(["a", "b"], "b")`, cty.NumberIntVal(1)},
		"sum":                {`sum([1, 2, 3.5])`, cty.NumberFloatVal(6.5)},
		"range":              {`range(3)`, cty.ListVal([]cty.Value{cty.NumberIntVal(0), cty.NumberIntVal(1), cty.NumberIntVal(2)})},
		"jsonencode":         {`jsonencode({ a = [1, true] })`, cty.StringVal(`{"a":[1,true]}`)},
		"format":             {`format("%s-%03d", "n", 7)`, cty.StringVal("n-007")},
		"tostring":           {`tostring(5)`, cty.StringVal("5")},
		"toset":              {`toset(["b", "a", "b"])`, cty.SetVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b")})},
		"try":                {`try(jsondecode("{").x, "fallback")`, cty.StringVal("fallback")},
		"can":                {`can(regex("^[0-9]+$", "12a"))`, cty.False},
		"file is relative":   {`file("greeting.txt")`, cty.StringVal("hello from a file\n")},
		"fileexists":         {`fileexists("nope")`, cty.False},
		"base64 round trip":  {`base64decode(base64encode("héllo"))`, cty.StringVal("héllo")},
		"sha256":             {`sha256("")`, cty.StringVal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")},
		"startswith":         {`startswith("skyward", "sky")`, cty.True},
		"strrev":             {`strrev("abc")`, cty.StringVal("cba")},
		"reverse":            {`reverse([1, 2])`, cty.TupleVal([]cty.Value{cty.NumberIntVal(2), cty.NumberIntVal(1)})},
		"length of unknown":  {`length(unknown)`, cty.UnknownVal(cty.Number).RefineNotNull()},
		"compact and concat": {`compact(concat(["a", ""], ["b"]))`, cty.ListVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b")})},
	}
	ctx.Variables = map[string]cty.Value{"unknown": cty.UnknownVal(cty.List(cty.String))}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			expr, diags := hclsyntax.ParseExpression([]byte(tc.expr), "test", hcl.InitialPos)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			got, diags := expr.Value(ctx)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if diff := cmp.Diff(tc.want, got, ctyEqual); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.expr, diff)
			}
		})
	}
}
