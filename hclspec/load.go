package hclspec

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// FileSuffix is the suffix of the configuration files Load reads.
const FileSuffix = ".sky.hcl"

var rootSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "output", LabelNames: []string{"name"}},
		{Type: "provider", LabelNames: []string{"type"}},
		{Type: "image", LabelNames: []string{"name"}},
		{Type: "pool", LabelNames: []string{"name"}},
		{Type: "task", LabelNames: []string{"name"}},
		{Type: "skyward"},
	},
}

// Load reads every *.sky.hcl file directly in dir (in name order), decodes and
// type-checks all blocks, resolves input variables and evaluates locals and
// outputs. It returns every problem found, not just the first.
//
// The returned Config is never nil: even when diags has errors it carries
// Dir and Files (every parsed file, including -var-file files) so that the
// caller can print the diagnostics with DiagnosticsText. Its other contents
// are only meaningful when diags has no errors.
//
// Load may be called again with LoadOptions.PoolValues filled in once pools
// are applied; pool attributes then have values in locals, outputs and tasks.
func Load(dir string, opts LoadOptions) (*Config, hcl.Diagnostics) {
	names, diags := configFileNames(dir)
	if len(names) == 0 {
		return newConfig(dir), diags
	}
	cfg, moreDiags := loadFiles(dir, names, opts)
	return cfg, append(diags, moreDiags...)
}

// configFileNames lists the configuration files of dir, sorted.
func configFileNames(dir string) ([]string, hcl.Diagnostics) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Failed to read configuration directory",
			Detail:   fmt.Sprintf("The configuration directory %q could not be read: %s.", dir, err),
		}}
	}
	var names []string
	var diags hcl.Diagnostics
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, FileSuffix) {
			continue
		}
		if e.IsDir() {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Configuration file is a directory",
				Detail: fmt.Sprintf("%q in %q is named like a configuration file but is a directory, so it cannot be read. "+
					"Rename it, or move the files in it up into the configuration directory.", name, dir),
			})
			continue
		}
		names = append(names, name)
	}
	if len(names) == 0 && !diags.HasErrors() {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "No configuration files",
			Detail: fmt.Sprintf("The directory %q contains no %s files. Run \"skyward init\" to create one, "+
				"or run skyward in the directory that holds the configuration.", dir, "*"+FileSuffix),
		}}
	}
	sort.Strings(names)
	return names, diags
}

func newConfig(dir string) *Config {
	return &Config{
		Dir:       dir,
		Variables: map[string]*Variable{},
		Locals:    map[string]cty.Value{},
		Providers: map[string]*Provider{},
		Images:    map[string]*Image{},
		Pools:     map[string]*Pool{},
		Tasks:     map[string]*Task{},
		Outputs:   map[string]*Output{},
		Files:     map[string]*hcl.File{},
	}
}

// loader holds the state of one Load call.
type loader struct {
	dir    string
	opts   LoadOptions
	cfg    *Config
	parser *hclparse.Parser
	funcs  map[string]function.Function

	// broken holds the names of files with syntax errors. Their blocks
	// declare names (so that references to them are not reported as
	// undeclared) but are not decoded, since the parser's recovery leaves
	// them incomplete.
	broken map[string]bool

	// Declarations by name, first one wins. These are known before any
	// block is decoded so that references can be checked in any order.
	varDecls   map[string]*hcl.Block
	localDecls map[string]*hcl.Attribute
	poolDecls  map[string]*hcl.Block
	imageDecls map[string]*hcl.Block
	provDecls  map[string]hcl.Range // by provider address

	// Values for the evaluation context. They keep their marks (sensitive).
	vars   map[string]cty.Value
	locals map[string]cty.Value

	// failed holds "var.NAME" and "local.NAME" of values that could not be
	// determined. Expressions that refer to them are skipped silently: the
	// problem has been reported once already.
	failed map[string]bool

	// sensitive collects the paths of sensitive values that arg has
	// decoded since takeSensitive was last called.
	sensitive []cty.Path

	// badNodes holds the pools whose node count is not known, so that task
	// targets are not checked against it.
	badNodes map[string]bool
}

// blocks holds the root blocks of all files by type, in file and source
// order.
type blocks struct {
	variables, locals, outputs, providers, images, pools, tasks, skyward []*hcl.Block
}

// parsedFile is one configuration file as parsed, kept in Config so that
// EvalOutputs can evaluate again without reading the files.
type parsedFile struct {
	filename string
	file     *hcl.File
	diags    hcl.Diagnostics
}

// loadFiles loads the named files of dir. Load calls it with every
// configuration file; tests call it with one file at a time.
func loadFiles(dir string, names []string, opts LoadOptions) (*Config, hcl.Diagnostics) {
	parser := hclparse.NewParser()
	var files []parsedFile
	for _, name := range names {
		filename := filepath.Join(dir, name)
		if d := checkSource(filename); d != nil {
			files = append(files, parsedFile{filename: filename, diags: hcl.Diagnostics{d}})
			continue
		}
		f, diags := parser.ParseHCLFile(filename)
		files = append(files, parsedFile{filename: filename, file: f, diags: diags})
	}
	return decode(dir, files, opts)
}

// Bounds of a configuration file, checked before it is parsed: the parser
// recurses once per level of nesting, and reads a file whole.
const (
	MaxFileSize = 4 << 20
	MaxNesting  = 256
)

// checkSource refuses a file too large or nested too deep to parse safely.
func checkSource(filename string) *hcl.Diagnostic {
	fi, err := os.Stat(filename)
	if err != nil {
		return nil // the parser says why
	}
	subject := &hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos}
	if fi.Size() > MaxFileSize {
		return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Configuration file too large",
			Detail: fmt.Sprintf("%s has %d bytes; a configuration file may have at most %d.", filepath.Base(filename), fi.Size(), MaxFileSize), Subject: subject}
	}
	src, err := os.ReadFile(filename)
	if err != nil {
		return nil
	}
	if depth, line := maxNesting(src); depth > MaxNesting {
		subject.Start.Line, subject.End.Line = line, line
		return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Expression nested too deeply",
			Detail: fmt.Sprintf("Brackets are nested %d deep or more here; the most a configuration may nest is %d.", depth, MaxNesting), Subject: subject}
	}
	return nil
}

// maxNesting returns how deep (, [ and { nest in src outside comments (in
// strings too: a template's interpolations nest as well), up to one past
// MaxNesting, and the line where it got deepest.
func maxNesting(src []byte) (max, line int) {
	depth, ln := 0, 1
	inString, inComment, blockComment := false, false, false
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c == '\n' {
			ln++
			inComment = false
		}
		switch {
		case blockComment:
			if c == '*' && i+1 < len(src) && src[i+1] == '/' {
				blockComment = false
				i++
			}
		case inComment:
		case inString && c == '\\':
			i++
		case inString && (c == '"' || c == '\n'):
			inString = false
		case c == '"':
			inString = true
		case !inString && (c == '#' || c == '/' && i+1 < len(src) && src[i+1] == '/'):
			inComment = true
		case !inString && c == '/' && i+1 < len(src) && src[i+1] == '*':
			blockComment = true
			i++
		case c == '(' || c == '[' || c == '{':
			depth++
			if depth > max {
				max, line = depth, ln
				if max > MaxNesting {
					return max, line
				}
			}
		case c == ')' || c == ']' || c == '}':
			depth--
		}
	}
	return max, line
}

// decode decodes and checks parsed files.
func decode(dir string, files []parsedFile, opts LoadOptions) (*Config, hcl.Diagnostics) {
	l := &loader{
		dir:        dir,
		opts:       opts,
		cfg:        newConfig(dir),
		parser:     hclparse.NewParser(),
		funcs:      Functions(dir),
		broken:     map[string]bool{},
		varDecls:   map[string]*hcl.Block{},
		localDecls: map[string]*hcl.Attribute{},
		poolDecls:  map[string]*hcl.Block{},
		imageDecls: map[string]*hcl.Block{},
		provDecls:  map[string]hcl.Range{},
		vars:       map[string]cty.Value{},
		locals:     map[string]cty.Value{},
		failed:     map[string]bool{},
		badNodes:   map[string]bool{},
	}
	l.cfg.opts, l.cfg.sources = opts, files
	var diags hcl.Diagnostics
	var bs blocks
	for _, pf := range files {
		diags = append(diags, pf.diags...)
		if pf.file == nil {
			continue
		}
		l.parser.AddFile(pf.filename, pf.file)
		if pf.diags.HasErrors() {
			l.broken[pf.filename] = true
		}
		content, cDiags := pf.file.Body.Content(rootSchema)
		if !pf.diags.HasErrors() {
			diags = append(diags, cDiags...)
		}
		for _, b := range content.Blocks {
			switch b.Type {
			case "variable":
				bs.variables = append(bs.variables, b)
			case "locals":
				bs.locals = append(bs.locals, b)
			case "output":
				bs.outputs = append(bs.outputs, b)
			case "provider":
				bs.providers = append(bs.providers, b)
			case "image":
				bs.images = append(bs.images, b)
			case "pool":
				bs.pools = append(bs.pools, b)
			case "task":
				bs.tasks = append(bs.tasks, b)
			case "skyward":
				bs.skyward = append(bs.skyward, b)
			}
		}
	}

	// Declarations first, so that every later stage can tell an undeclared
	// name from one that merely failed to decode.
	bs.variables, diags = declare(diags, "variable", bs.variables, l.varDecls)
	bs.pools, diags = declare(diags, "pool", bs.pools, l.poolDecls)
	bs.images, diags = declare(diags, "image", bs.images, l.imageDecls)
	bs.tasks, diags = declare(diags, "task", bs.tasks, map[string]*hcl.Block{})
	bs.outputs, diags = declare(diags, "output", bs.outputs, map[string]*hcl.Block{})

	var bDiags hcl.Diagnostics
	l.cfg.Backend, bDiags = decodeSkyward(bs.skyward)
	diags = append(diags, bDiags...)
	diags = append(diags, l.decodeVariables(bs.variables)...)
	diags = append(diags, l.decodeLocals(bs.locals)...)
	diags = append(diags, l.decodeProviders(bs.providers)...)
	for _, b := range bs.images {
		if l.broken[b.DefRange.Filename] {
			continue
		}
		img, d := l.decodeImage(b)
		diags = append(diags, d...)
		l.cfg.Images[img.Name] = img
	}
	for _, b := range bs.pools {
		if l.broken[b.DefRange.Filename] {
			continue
		}
		p, nodesOK, d := l.decodePool(b)
		diags = append(diags, d...)
		l.cfg.Pools[p.Name] = p
		if !nodesOK {
			l.badNodes[p.Name] = true
		}
	}
	diags = append(diags, l.addBuiltinProviders()...)
	for _, b := range bs.tasks {
		if l.broken[b.DefRange.Filename] {
			continue
		}
		t, d := l.decodeTask(b)
		diags = append(diags, d...)
		l.cfg.Tasks[t.Name] = t
	}
	for _, b := range bs.outputs {
		if l.broken[b.DefRange.Filename] {
			continue
		}
		o, d := l.decodeOutput(b)
		diags = append(diags, d...)
		l.cfg.Outputs[o.Name] = o
	}

	for name, f := range l.parser.Files() {
		l.cfg.Files[name] = f
	}
	sortDiagnostics(diags)
	return l.cfg, diags
}

// sortDiagnostics puts diagnostics in reading order: those without a source
// location (about -var values, say) first, then by file and position.
func sortDiagnostics(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
}

// declare records the blocks of one type by name, reporting invalid and
// duplicate names. It returns the blocks to decode: the first of each name.
func declare(diags hcl.Diagnostics, kind string, bs []*hcl.Block, decls map[string]*hcl.Block) ([]*hcl.Block, hcl.Diagnostics) {
	var keep []*hcl.Block
	for _, b := range bs {
		name := b.Labels[0]
		if !hclsyntax.ValidIdentifier(name) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Invalid %s name", kind),
				Detail: fmt.Sprintf("The name %q is not valid for %s %s. A name must start with a letter or underscore "+
					"and may contain only letters, digits, underscores, and dashes.", name, article(kind), kind),
				Subject: b.LabelRanges[0].Ptr(),
			})
			continue
		}
		if prev, exists := decls[name]; exists {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Duplicate %s block", kind),
				Detail: fmt.Sprintf("%s %s named %q was already declared at %s. %s names must be unique.",
					upperFirst(article(kind)), kind, name, prev.DefRange, upperFirst(kind)),
				Subject: b.LabelRanges[0].Ptr(),
			})
			continue
		}
		decls[name] = b
		keep = append(keep, b)
	}
	return keep, diags
}

// article is the indefinite article for kind.
func article(kind string) string {
	if strings.ContainsAny(kind[:1], "aeiou") {
		return "an"
	}
	return "a"
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// evalContextFor returns the context in which an expression with these
// references is evaluated: as evalContext, but holding only the values the
// references name, so that evaluating every local costs time in
// proportion to the references, not to the number of locals.
func (l *loader) evalContextFor(traversals []hcl.Traversal) *hcl.EvalContext {
	vars := map[string]cty.Value{}
	locals := map[string]cty.Value{}
	pools := map[string]cty.Value{}
	for _, tr := range traversals {
		if len(tr) < 2 {
			continue
		}
		a, ok := tr[1].(hcl.TraverseAttr)
		if !ok {
			continue
		}
		switch tr.RootName() {
		case "var":
			if _, declared := l.varDecls[a.Name]; !declared {
				continue
			}
			if v, ok := l.vars[a.Name]; ok {
				vars[a.Name] = v
			} else {
				vars[a.Name] = cty.DynamicVal
			}
		case "local":
			if v, ok := l.locals[a.Name]; ok {
				locals[a.Name] = v
			}
		case "pool":
			if _, declared := l.poolDecls[a.Name]; !declared {
				continue
			}
			if v, ok := l.opts.PoolValues[a.Name]; ok {
				pools[a.Name] = v
			} else {
				pools[a.Name] = cty.DynamicVal
			}
		}
	}
	return l.evalContextOf(vars, locals, pools)
}

// evalContext returns the context in which expressions are evaluated: the
// variables and locals known so far, declared pools and the functions.
func (l *loader) evalContext() *hcl.EvalContext {
	vars := make(map[string]cty.Value, len(l.varDecls))
	for name := range l.varDecls {
		if v, ok := l.vars[name]; ok {
			vars[name] = v
		} else {
			vars[name] = cty.DynamicVal
		}
	}
	locals := make(map[string]cty.Value, len(l.locals))
	for name, v := range l.locals {
		locals[name] = v
	}
	pools := make(map[string]cty.Value, len(l.poolDecls))
	for name := range l.poolDecls {
		if v, ok := l.opts.PoolValues[name]; ok {
			pools[name] = v
		} else {
			pools[name] = cty.DynamicVal
		}
	}
	return l.evalContextOf(vars, locals, pools)
}

// refScope says which roots a reference may start with.
type refScope int

const (
	scopeAll     refScope = iota // var, local, pool
	scopeVarOnly                 // variable validation
)

// checkRefs reports references to anything undeclared. failed is true when
// a reference names a value that could not be determined; the expression
// must then not be evaluated, and nothing more be said about it.
func (l *loader) checkRefs(traversals []hcl.Traversal, scope refScope) (diags hcl.Diagnostics, failed bool) {
	for _, tr := range traversals {
		root := tr.RootName()
		rootRange := tr[0].SourceRange()
		switch root {
		case "var", "local", "pool":
		default:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unknown variable",
				Detail: fmt.Sprintf("There is no variable named %q. Expressions can refer to input variables "+
					"(var.NAME), local values (local.NAME) and pools (pool.NAME).", root),
				Subject: rootRange.Ptr(),
			})
			continue
		}
		if scope == scopeVarOnly && root != "var" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid reference in variable validation",
				Detail:   "The condition and error message of a variable validation can refer only to input variables.",
				Subject:  tr.SourceRange().Ptr(),
			})
			continue
		}
		var name string
		if len(tr) > 1 {
			if a, ok := tr[1].(hcl.TraverseAttr); ok {
				name = a.Name
			}
		}
		if name == "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid reference",
				Detail: fmt.Sprintf("The %q object cannot be accessed directly. Instead, access one of its attributes, "+
					"as in %s.NAME.", root, root),
				Subject: tr.SourceRange().Ptr(),
			})
			continue
		}
		refRange := hcl.RangeBetween(tr[0].SourceRange(), tr[1].SourceRange())
		switch root {
		case "var":
			if _, ok := l.varDecls[name]; !ok {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Reference to undeclared input variable",
					Detail: fmt.Sprintf("An input variable with the name %q has not been declared. "+
						"This variable can be declared with a variable %q {} block.", name, name),
					Subject: refRange.Ptr(),
				})
				continue
			}
		case "local":
			if _, ok := l.localDecls[name]; !ok {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Reference to undeclared local value",
					Detail:   fmt.Sprintf("A local value with the name %q has not been declared.", name),
					Subject:  refRange.Ptr(),
				})
				continue
			}
		case "pool":
			if _, ok := l.poolDecls[name]; !ok {
				diags = append(diags, undeclaredPool(name, refRange))
				continue
			}
		}
		if l.failed[root+"."+name] {
			failed = true
		}
	}
	return diags, failed
}

func undeclaredPool(name string, rng hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Reference to undeclared pool",
		Detail:   fmt.Sprintf("A pool named %q has not been declared. Declare it with a pool %q {} block.", name, name),
		Subject:  rng.Ptr(),
	}
}

// eval evaluates expr in the full context. ok is false when the value is
// unusable: diagnostics were reported, or expr depends on a value that
// already failed. The value keeps its marks and may be null or unknown.
func (l *loader) eval(expr hcl.Expression, scope refScope) (val cty.Value, ok bool, diags hcl.Diagnostics) {
	refs := expr.Variables()
	diags, failed := l.checkRefs(refs, scope)
	if diags.HasErrors() || failed {
		return cty.DynamicVal, false, diags
	}
	val, valDiags := expr.Value(l.evalContextFor(refs))
	diags = append(diags, valDiags...)
	if valDiags.HasErrors() {
		return cty.DynamicVal, false, diags
	}
	return val, true, diags
}

// evalContextOf is the evaluation context with these var, local and pool
// objects and the configuration's functions.
func (l *loader) evalContextOf(vars, locals, pools map[string]cty.Value) *hcl.EvalContext {
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"var":   cty.ObjectVal(vars),
			"local": cty.ObjectVal(locals),
			"pool":  cty.ObjectVal(pools),
		},
		Functions: l.funcs,
	}
}
