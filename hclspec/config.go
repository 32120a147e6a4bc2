package hclspec

import (
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
)

// DefaultProvider is the provider type a pool uses when it names none.
const DefaultProvider = "container"

// Config is a decoded, type-checked directory of *.sky.hcl files.
// All maps are keyed by block name (providers by address: "container",
// "aws.west"). A Config is read-only once Load returns it.
type Config struct {
	Dir       string
	Variables map[string]*Variable
	Locals    map[string]cty.Value // evaluated; unknown where they depend on pool attributes
	Providers map[string]*Provider
	Images    map[string]*Image
	Pools     map[string]*Pool
	Tasks     map[string]*Task
	Outputs   map[string]*Output
	// Backend is the skyward block's backend; nil means local.
	Backend *Backend
	// Files holds every parsed file's source, by file name, for diagnostic
	// printing.
	Files map[string]*hcl.File

	// What EvalOutputs needs to evaluate again.
	opts    LoadOptions
	sources []parsedFile
}

// EvalOutputs evaluates the configuration again as Load did, but with pools
// as LoadOptions.PoolValues (the applied pools' values), and returns the
// outputs. The configuration files are not read again; -var-file files are.
// Diagnostics are those Load would report with these pool values.
func (c *Config) EvalOutputs(pools map[string]cty.Value) (map[string]*Output, hcl.Diagnostics) {
	opts := c.opts
	opts.PoolValues = pools
	cfg, diags := decode(c.Dir, c.sources, opts)
	return cfg.Outputs, diags
}

// Variable is a declared input variable with its resolved value.
type Variable struct {
	Name        string
	Type        cty.Type // cty.DynamicPseudoType when no type was given
	Default     cty.Value
	HasDefault  bool
	Description string
	Sensitive   bool
	Value       cty.Value // resolved from -var, -var-file, SKYWARD_VAR_<name>, default
	DeclRange   hcl.Range
}

// Provider is one provider block. Config conforms to the provider type's
// schema (see LoadOptions.ProviderSchemas).
type Provider struct {
	Type      string
	Alias     string
	Config    cty.Value
	DeclRange hcl.Range
}

// Addr is "TYPE" or "TYPE.ALIAS".
func (p *Provider) Addr() string {
	if p.Alias == "" {
		return p.Type
	}
	return p.Type + "." + p.Alias
}

// Image is an image recipe: applied by the bootstrap over SSH on every node.
type Image struct {
	Name     string
	Apt      []string
	Pip      []string
	Env      map[string]string
	Includes []string // as written, relative to Config.Dir
	Excludes []string // nil when not set (the default list applies)
	Setup    []string
	// Sensitive lists the arguments, or parts of them, whose value derives
	// from a sensitive variable: paths such as ["env", "TOKEN"] (a map
	// key), ["setup", "0"] (a list index) or ["env"] (the whole value).
	Sensitive [][]string
	DeclRange hcl.Range
}

// Pool is a pool block.
type Pool struct {
	Name         string
	Provider     string // provider address; DefaultProvider when not set
	Nodes        int    // >= 1
	VCPUs        float64
	MemoryGB     float64
	DiskGB       float64
	Image        string // image block name; "" for none
	Accelerator  string
	Allocation   string // "on-demand" (default) | "spot"
	InstanceType string
	TTL          time.Duration // 0 = none
	Concurrency  int           // >= 1, default 1
	// Replicas is how many members the pool's collections store has
	// (collections = { replicas = N }), on nodes 0 to N-1; 1 by default.
	Replicas int
	// Sensitive lists the arguments whose value derives from a sensitive
	// variable, as Image.Sensitive does.
	Sensitive [][]string
	DeclRange hcl.Range
}

// Task is a task block. Tasks are checked at load time and run by
// `skyward run`.
type Task struct {
	Name     string
	Pool     string   // pool block name
	Run      string   // shell script; exclusive with Command
	Command  []string // argv
	Mode     string   // "single" (default) | "broadcast"
	Target   string   // "" (any node), "head" or a node index in decimal
	Shard    []cty.Value
	HasShard bool
	// ForEach holds the items of for_each or count, in order. Keys are the
	// list index (as a number) or the map key (as a string).
	ForEach    []EachItem
	HasForEach bool
	// HasCount says the items came from count rather than for_each.
	HasCount bool
	Env      map[string]string
	Timeout  time.Duration // 0 = none
	Retries  int
	FailFast bool // default true
	// Distributed is the engine preset: "" (none), "torch", "mpi" or
	// "dask" (Distributed* constants).
	Distributed string
	// Incomplete is true when some argument depends on pool attributes that
	// are not known yet (Load without LoadOptions.PoolValues); the field of
	// such an argument is left at its zero value. `skyward run` loads the
	// configuration again with PoolValues before running the task.
	Incomplete bool
	DeclRange  hcl.Range
}

// EachItem is one item of a task's for_each or count.
type EachItem struct {
	Key   cty.Value // number for lists and count, string for maps
	Value cty.Value
}

// Output is an output block. Value may be unknown until the pools it reads
// are applied.
type Output struct {
	Name      string
	Value     cty.Value
	Sensitive bool
	DeclRange hcl.Range
}

// LoadOptions are the inputs of Load besides the files.
type LoadOptions struct {
	// Vars are raw -var arguments ("k=v"), in command-line order.
	Vars []string
	// VarFiles are -var-file paths (HCL, or JSON when named *.json), in
	// command-line order. They are read after the files of the directory
	// that load by themselves (AutoVarFiles) and before Vars.
	VarFiles []string
	// Environ is the environment to read SKYWARD_VAR_<name> from
	// (os.Environ() format). nil means none.
	Environ []string
	// ProviderSchemas type-check provider blocks by type. A provider block
	// of a type not present here is an error.
	ProviderSchemas map[string]hcldec.ObjectSpec
	// PoolValues gives `pool.NAME` its value in expressions once a pool is
	// applied: an object with "name" and "nodes" (a list of objects with
	// "id", "index", "private_ip", "public_ip", "ssh_host", "ssh_port",
	// "ssh_user"). Pools not present here
	// evaluate to unknown.
	PoolValues map[string]cty.Value
}
