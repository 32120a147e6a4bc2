package hclspec

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// Functions returns the function library available in expressions, with
// file paths resolved relative to dir. The map is new on every call; the
// caller may extend it.
func Functions(dir string) map[string]function.Function {
	return map[string]function.Function{
		// numeric
		"abs":      stdlib.AbsoluteFunc,
		"ceil":     stdlib.CeilFunc,
		"floor":    stdlib.FloorFunc,
		"log":      stdlib.LogFunc,
		"max":      stdlib.MaxFunc,
		"min":      stdlib.MinFunc,
		"parseint": stdlib.ParseIntFunc,
		"pow":      stdlib.PowFunc,
		"signum":   stdlib.SignumFunc,
		"sum":      sumFunc,

		// string
		"chomp":        stdlib.ChompFunc,
		"endswith":     endsWithFunc,
		"format":       stdlib.FormatFunc,
		"formatlist":   stdlib.FormatListFunc,
		"indent":       stdlib.IndentFunc,
		"join":         stdlib.JoinFunc,
		"lower":        stdlib.LowerFunc,
		"regex":        stdlib.RegexFunc,
		"regexall":     stdlib.RegexAllFunc,
		"regexreplace": stdlib.RegexReplaceFunc,
		"replace":      stdlib.ReplaceFunc,
		"split":        stdlib.SplitFunc,
		"startswith":   startsWithFunc,
		"strlen":       stdlib.StrlenFunc,
		"strrev":       stdlib.ReverseFunc,
		"substr":       stdlib.SubstrFunc,
		"title":        stdlib.TitleFunc,
		"trim":         stdlib.TrimFunc,
		"trimprefix":   stdlib.TrimPrefixFunc,
		"trimspace":    stdlib.TrimSpaceFunc,
		"trimsuffix":   stdlib.TrimSuffixFunc,
		"upper":        stdlib.UpperFunc,

		// collections
		"chunklist":       stdlib.ChunklistFunc,
		"coalesce":        stdlib.CoalesceFunc,
		"coalescelist":    stdlib.CoalesceListFunc,
		"compact":         stdlib.CompactFunc,
		"concat":          stdlib.ConcatFunc,
		"contains":        stdlib.ContainsFunc,
		"distinct":        stdlib.DistinctFunc,
		"element":         stdlib.ElementFunc,
		"flatten":         stdlib.FlattenFunc,
		"index":           indexFunc,
		"keys":            stdlib.KeysFunc,
		"length":          lengthFunc,
		"lookup":          stdlib.LookupFunc,
		"merge":           stdlib.MergeFunc,
		"range":           stdlib.RangeFunc,
		"reverse":         stdlib.ReverseListFunc,
		"setintersection": stdlib.SetIntersectionFunc,
		"setproduct":      stdlib.SetProductFunc,
		"setsubtract":     stdlib.SetSubtractFunc,
		"setunion":        stdlib.SetUnionFunc,
		"slice":           stdlib.SliceFunc,
		"sort":            stdlib.SortFunc,
		"values":          stdlib.ValuesFunc,
		"zipmap":          stdlib.ZipmapFunc,

		// encoding and hashing
		"base64decode": base64DecodeFunc,
		"base64encode": base64EncodeFunc,
		"csvdecode":    stdlib.CSVDecodeFunc,
		"jsondecode":   stdlib.JSONDecodeFunc,
		"jsonencode":   stdlib.JSONEncodeFunc,
		"md5":          hashFunc(md5.New),
		"sha1":         hashFunc(sha1.New),
		"sha256":       hashFunc(sha256.New),
		"sha512":       hashFunc(sha512.New),

		// date and time (pure: no timestamp(), whose value would change
		// every plan)
		"formatdate": stdlib.FormatDateFunc,
		"timeadd":    stdlib.TimeAddFunc,

		// type conversion
		"tobool":   stdlib.MakeToFunc(cty.Bool),
		"tolist":   stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"tomap":    stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		"tonumber": stdlib.MakeToFunc(cty.Number),
		"toset":    stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tostring": stdlib.MakeToFunc(cty.String),
		"try":      tryfunc.TryFunc,
		"can":      tryfunc.CanFunc,

		// files, relative to the configuration directory
		"file":       fileFunc(dir),
		"fileexists": fileExistsFunc(dir),
		"filebase64": fileBase64Func(dir),
		"filesha256": fileHashFunc(dir, sha256.New),
	}
}

// lengthFunc is stdlib's length, extended to strings (counted in grapheme
// clusters) as Terraform users expect.
var lengthFunc = function.New(&function.Spec{
	Description: "Returns the number of elements of a collection or characters of a string.",
	Params: []function.Parameter{{
		Name:             "value",
		Type:             cty.DynamicPseudoType,
		AllowDynamicType: true,
		AllowUnknown:     true,
		AllowMarked:      true,
	}},
	Type: func(args []cty.Value) (cty.Type, error) {
		ty := args[0].Type()
		switch {
		case ty == cty.String, ty == cty.DynamicPseudoType,
			ty.IsCollectionType(), ty.IsTupleType(), ty.IsObjectType():
			return cty.Number, nil
		}
		return cty.NilType, function.NewArgErrorf(0, "argument must be a string, a collection type, or a structural type")
	},
	RefineResult: func(b *cty.RefinementBuilder) *cty.RefinementBuilder { return b.NotNull() },
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		v, marks := args[0].Unmark()
		if v.Type() == cty.String {
			n, err := stdlib.Strlen(v)
			return n.WithMarks(marks), err
		}
		if v.Type() == cty.DynamicPseudoType || !v.IsKnown() && !v.Type().IsTupleType() && !v.Type().IsObjectType() {
			return cty.UnknownVal(cty.Number).WithMarks(marks), nil
		}
		if v.IsNull() {
			return cty.NilVal, function.NewArgErrorf(0, "argument must not be null")
		}
		switch ty := v.Type(); {
		case ty.IsTupleType():
			return cty.NumberIntVal(int64(ty.Length())).WithMarks(marks), nil
		case ty.IsObjectType():
			return cty.NumberIntVal(int64(len(ty.AttributeTypes()))).WithMarks(marks), nil
		}
		return v.Length().WithMarks(marks), nil
	},
})

var sumFunc = function.New(&function.Spec{
	Description: "Returns the total of a list or set of numbers.",
	Params:      []function.Parameter{{Name: "list", Type: cty.DynamicPseudoType}},
	Type:        function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		v := args[0]
		ty := v.Type()
		if !ty.IsListType() && !ty.IsSetType() && !ty.IsTupleType() {
			return cty.NilVal, function.NewArgErrorf(0, "argument must be a list, tuple or set of numbers")
		}
		if !v.IsWhollyKnown() {
			return cty.UnknownVal(cty.Number), nil
		}
		total := new(big.Float)
		i := 0
		for it := v.ElementIterator(); it.Next(); i++ {
			_, e := it.Element()
			if e.IsNull() {
				return cty.NilVal, function.NewArgErrorf(0, "element %d is null", i)
			}
			n, err := convertNumber(e)
			if err != nil {
				return cty.NilVal, function.NewArgErrorf(0, "element %d: %s", i, err)
			}
			total.Add(total, n)
		}
		return cty.NumberVal(total), nil
	},
})

func convertNumber(v cty.Value) (*big.Float, error) {
	if v.Type() != cty.Number {
		return nil, fmt.Errorf("number required")
	}
	return v.AsBigFloat(), nil
}

var startsWithFunc = stringPredicate("startswith", "prefix", strings.HasPrefix)
var endsWithFunc = stringPredicate("endswith", "suffix", strings.HasSuffix)

func stringPredicate(name, arg string, f func(s, x string) bool) function.Function {
	return function.New(&function.Spec{
		Description: fmt.Sprintf("Reports whether a string has the given %s.", arg),
		Params: []function.Parameter{
			{Name: "string", Type: cty.String},
			{Name: arg, Type: cty.String},
		},
		Type: function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.BoolVal(f(args[0].AsString(), args[1].AsString())), nil
		},
	})
}

var base64EncodeFunc = function.New(&function.Spec{
	Description: "Encodes a string in Base64.",
	Params:      []function.Parameter{{Name: "str", Type: cty.String}},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.StringVal(base64.StdEncoding.EncodeToString([]byte(args[0].AsString()))), nil
	},
})

var base64DecodeFunc = function.New(&function.Spec{
	Description: "Decodes a Base64 string; the result must be UTF-8.",
	Params:      []function.Parameter{{Name: "str", Type: cty.String}},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		b, err := base64.StdEncoding.DecodeString(args[0].AsString())
		if err != nil {
			return cty.NilVal, function.NewArgErrorf(0, "invalid Base64 data: %s", err)
		}
		if !utf8.Valid(b) {
			return cty.NilVal, function.NewArgErrorf(0, "the decoded data is not valid UTF-8")
		}
		return cty.StringVal(string(b)), nil
	},
})

func hashFunc(h func() hash.Hash) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the hexadecimal digest of a string.",
		Params:      []function.Parameter{{Name: "str", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			d := h()
			d.Write([]byte(args[0].AsString()))
			return cty.StringVal(hex.EncodeToString(d.Sum(nil))), nil
		},
	})
}

func resolvePath(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// MaxFileRead bounds what file() and its kin read: a configuration is no
// place for more.
const MaxFileRead = 16 << 20

func readFileArg(dir string, v cty.Value) ([]byte, error) {
	p := v.AsString()
	f, err := os.Open(resolvePath(dir, p))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, function.NewArgErrorf(0, "no file exists at %q; paths are relative to the configuration directory", p)
		}
		return nil, function.NewArgErrorf(0, "cannot read %q: %s", p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, function.NewArgErrorf(0, "cannot read %q: %s", p, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, function.NewArgErrorf(0, "%q is not a regular file (%s); only regular files can be read", p, fi.Mode().Type())
	}
	if fi.Size() > MaxFileRead {
		return nil, function.NewArgErrorf(0, "%q has %d bytes, more than the %d a configuration may read", p, fi.Size(), MaxFileRead)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileRead+1))
	if err != nil {
		return nil, function.NewArgErrorf(0, "cannot read %q: %s", p, err)
	}
	if len(b) > MaxFileRead {
		return nil, function.NewArgErrorf(0, "%q has more than the %d bytes a configuration may read", p, MaxFileRead)
	}
	return b, nil
}

func fileFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "Reads a UTF-8 file, relative to the configuration directory.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			b, err := readFileArg(dir, args[0])
			if err != nil {
				return cty.NilVal, err
			}
			if !utf8.Valid(b) {
				return cty.NilVal, function.NewArgErrorf(0, "contents of %q are not valid UTF-8; use filebase64 instead", args[0].AsString())
			}
			return cty.StringVal(string(b)), nil
		},
	})
}

func fileExistsFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "Reports whether a regular file exists, relative to the configuration directory.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			fi, err := os.Stat(resolvePath(dir, args[0].AsString()))
			return cty.BoolVal(err == nil && fi.Mode().IsRegular()), nil
		},
	})
}

func fileBase64Func(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "Reads a file, relative to the configuration directory, as Base64.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			b, err := readFileArg(dir, args[0])
			if err != nil {
				return cty.NilVal, err
			}
			return cty.StringVal(base64.StdEncoding.EncodeToString(b)), nil
		},
	})
}

func fileHashFunc(dir string, h func() hash.Hash) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the hexadecimal digest of a file, relative to the configuration directory.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			b, err := readFileArg(dir, args[0])
			if err != nil {
				return cty.NilVal, err
			}
			d := h()
			d.Write(b)
			return cty.StringVal(hex.EncodeToString(d.Sum(nil))), nil
		},
	})
}

// indexFunc is Terraform's index: the position of the first element of a
// list equal to a value. (go-cty's stdlib index is element access instead.)
var indexFunc = function.New(&function.Spec{
	Description: "Returns the index of the first element of a list equal to the given value.",
	Params: []function.Parameter{
		{Name: "list", Type: cty.DynamicPseudoType},
		{Name: "value", Type: cty.DynamicPseudoType},
	},
	Type: function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		list, value := args[0], args[1]
		if ty := list.Type(); !ty.IsListType() && !ty.IsTupleType() {
			return cty.NilVal, function.NewArgErrorf(0, "argument must be a list or tuple")
		}
		if !list.IsKnown() {
			return cty.UnknownVal(cty.Number), nil
		}
		if list.LengthInt() == 0 {
			return cty.NilVal, function.NewArgErrorf(0, "cannot search an empty list")
		}
		for it := list.ElementIterator(); it.Next(); {
			i, e := it.Element()
			eq, err := stdlib.Equal(e, value)
			if err != nil {
				return cty.NilVal, err
			}
			if !eq.IsKnown() {
				return cty.UnknownVal(cty.Number), nil
			}
			if eq.True() {
				return i, nil
			}
		}
		return cty.NilVal, function.NewArgErrorf(1, "item not found")
	},
})
