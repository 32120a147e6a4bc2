// Package cli implements skyward's command line: flag parsing, prompts,
// the human and JSON views, and exit codes. It wires the other packages
// together and holds no provisioning logic of its own.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/term"

	"github.com/skyward-sh/skyward/providers"
	awsprovider "github.com/skyward-sh/skyward/providers/aws"
	"github.com/skyward-sh/skyward/providers/container"
	"github.com/skyward-sh/skyward/providers/runpod"
	"github.com/skyward-sh/skyward/state"
)

// Version is skyward's version, set at build time with -ldflags.
var Version = "0.1.0-dev"

// Exit codes.
const (
	exitOK          = 0
	exitError       = 1
	exitChanges     = 2
	exitFmtCheck    = 3
	exitInterrupted = 130
)

// errSilent is returned by commands that already printed their error.
var errSilent = errors.New("")

// exitError carries a specific exit code.
type exitCodeError struct{ code int }

func (e exitCodeError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// Meta is what every command shares: streams, the working directory, the
// provider registry and signal handling.
type Meta struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Dir            string
	Registry       *providers.Registry
	Color          bool
	// Stop is closed at the first interrupt (Ctrl-C): no new work starts.
	Stop <-chan struct{}
	// Ctx is cancelled at the second interrupt.
	Ctx context.Context

	// json is set by commands whose -json output is one JSON object a
	// line (plan, apply, destroy): their errors and diagnostics are then
	// JSON diagnostics on stdout, through jv.
	json bool
	jv   *jsonView
	// compactWarnings (-compact-warnings) prints config warnings that come
	// without errors as one line each.
	compactWarnings bool
	// out is Stdout as Run set it up: it stops writing, without failing
	// the command, once its reader has gone.
	out *guardedWriter
	// The state backend, opened once by backend().
	be    state.Backend
	beErr error
}

// diagError is an error with a summary and a detail sentence, printed as
// a diagnostic.
type diagError struct{ summary, detail string }

func (e *diagError) Error() string { return e.summary + ": " + e.detail }

type command struct {
	name     string
	args     string // what follows the name in the usage line
	synopsis string
	help     string // paragraphs below the usage line; synopsis when empty
	hidden   bool
	run      func(m *Meta, args []string) error
}

func commands() []command {
	return append([]command{
		{name: "init", args: "[options]", synopsis: "Prepare the working directory and check providers", run: runInit,
			help: "Create .skyward/, write main.sky.hcl from a built-in example when the directory has no\n" +
				"configuration (with a base image found on this machine), and check that every provider\n" +
				"in use can be reached."},
		{name: "validate", args: "[options]", synopsis: "Check the configuration", run: runValidate,
			help: "Parse and type-check the configuration. No provider is called and nothing is written."},
		{name: "fmt", args: "[options] [PATH...]", synopsis: "Rewrite config files in canonical format", run: runFmt,
			help: "Rewrite *.sky.hcl and *.skyvars files in the canonical format. PATH is a file or a\n" +
				"directory (default: the working directory)."},
		{name: "plan", args: "[options]", synopsis: "Show the changes that apply would make", run: runPlan,
			help: "Refresh the state from the providers, then print the changes apply would make."},
		{name: "apply", args: "[options] [PLANFILE]", synopsis: "Create or update the pools", run: runApply,
			help: "Plan (unless given a saved plan), ask for yes, and carry the plan out."},
		{name: "destroy", args: "[options]", synopsis: "Remove everything skyward created", run: runDestroy,
			help: "Remove everything in the state, nodes before their pool."},
		{name: "show", args: "[options] [PLANFILE]", synopsis: "Show the state or a saved plan", run: runShow},
		{name: "test", args: "[options]", synopsis: "Run the *.skytest.hcl tests on the pools", run: runTest,
			help: "Apply the pools the tests need once (or use applied ones), run every run block of the\n" +
				"*.skytest.hcl files, report each pass or failure, and destroy what the tests created."},
		{name: "run", args: "[options] TASK...", synopsis: "Run tasks on the applied pools", run: runRun,
			help: "Run the named tasks, in the order given, on the applied pools. With -ephemeral,\n" +
				"apply first and afterwards destroy what this run created."},
		{name: "status", args: "[options]", synopsis: "Show pools and nodes", run: runStatus},
		{name: "ssh", args: "[options] NODE [-- COMMAND...]", synopsis: "Open a shell or run a command on a node", run: runSSH,
			help: "Open a shell on a node, or run COMMAND there. NODE is pool.dev.node[1] or dev/1."},
		{name: "output", args: "[options] [NAME]", synopsis: "Show output values", run: runOutput},
		{name: "force-unlock", args: "[options] LOCK_ID", synopsis: "Remove a remote state lock left by a dead process", run: runForceUnlock},
		{name: "state", args: "list|show|rm [options] [ADDR...]", synopsis: "Inspect and edit the state (list, show, rm)", run: runState,
			help: "  state list [ADDR...]   list the resources in the state\n" +
				"  state show ADDR        show one resource\n" +
				"  state rm ADDR...       forget resources; the objects stay on the provider, and the\n" +
				"                         next plan finds them by their labels and adopts them (or\n" +
				"                         destroys them when the config no longer has them)"},
		{name: "graph", args: "[options]", synopsis: "Print the provisioning graph in DOT", run: runGraph},
		{name: "version", args: "[options]", synopsis: "Print the version", run: runVersion},
		{name: "help", args: "[COMMAND]", synopsis: "Show the help of a command", run: runHelp},
		{name: "agent", hidden: true, run: runAgent},
	}, collectionCommands()...)
}

func lookupCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return &c
		}
	}
	return nil
}

// printHelp writes a command's usage, description and options.
func printHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: skyward [global options] %s %s\n\n", c.name, c.args)
	help := c.help
	if help == "" {
		help = c.synopsis + "."
	}
	for _, l := range strings.Split(help, "\n") {
		if strings.HasPrefix(l, "  ") {
			fmt.Fprintln(w, l)
		} else {
			fmt.Fprintln(w, "  "+l)
		}
	}
	if fs != nil {
		fmt.Fprintln(w, "\nOptions:")
		fmt.Fprintln(w)
		printFlags(w, fs)
	}
}

// runHelp is `skyward help [COMMAND]`.
func runHelp(m *Meta, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		usage(m.Stdout)
		return nil
	}
	c := lookupCommand(args[0])
	if c == nil || c.hidden || c.name == "help" {
		usage(m.Stderr)
		return fmt.Errorf("no command %q", args[0])
	}
	err := c.run(m, append(args[1:len(args):len(args)], "-h"))
	var hr helpRequest
	if errors.As(err, &hr) {
		printHelp(m.Stdout, c, hr.fs)
		return nil
	}
	return err
}

// DefaultRegistry returns a registry of the built-in providers.
func DefaultRegistry() *providers.Registry {
	r := &providers.Registry{}
	r.Register("container", container.Factory())
	r.Register(runpod.Type, runpod.Factory())
	r.Register(awsprovider.Type, awsprovider.Factory())
	return r
}

// Run runs skyward with the given arguments (without the program name) and
// returns the process exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return RunRegistry(DefaultRegistry(), args, stdin, stdout, stderr)
}

// RunRegistry is Run with the providers of reg instead of the built-in
// ones (for tests that wrap a provider).
func RunRegistry(reg *providers.Registry, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	out := &guardedWriter{w: stdout}
	m := &Meta{Stdin: stdin, Stdout: out, Stderr: stderr, Registry: reg, out: out}
	m.Color = isTerminal(stdout) && os.Getenv("NO_COLOR") == ""

	args = takeNoColor(m, args)
	dir := "."
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		a := strings.TrimLeft(args[0], "-")
		switch {
		case strings.HasPrefix(a, "chdir="):
			dir = strings.TrimPrefix(a, "chdir=")
		case a == "version" || a == "v":
			args[0] = "version"
			continue
		case a == "help" || a == "h":
			usage(stdout)
			return exitOK
		default:
			fmt.Fprintf(stderr, "Error: unknown global option %q\n\n", args[0])
			usage(stderr)
			return exitError
		}
		args = args[1:]
	}
	if len(args) == 0 {
		usage(stdout)
		return exitOK
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitError
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		fmt.Fprintf(stderr, "Error: -chdir: %s is not a directory\n", dir)
		return exitError
	}
	m.Dir = abs

	name := args[0]
	cmd := lookupCommand(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "Error: unknown command %q\n\n", name)
		usage(stderr)
		return exitError
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	m.Ctx, m.Stop = ctx, stop
	if name != "agent" {
		// A reader that goes away (skyward apply -json | head) must not
		// kill an apply half-way: with SIGPIPE caught, a write to the
		// closed pipe fails with EPIPE instead, and guardedWriter stops
		// writing while the command finishes its work and saves the state.
		pipe := make(chan os.Signal, 1)
		signal.Notify(pipe, syscall.SIGPIPE)
		defer signal.Stop(pipe)
		sigs := make(chan os.Signal, 2)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sigs)
		go func() {
			n := 0
			for range sigs {
				n++
				if n == 1 {
					msg := "Interrupt received. Finishing the steps under way and saving the state; interrupt again to exit at once."
					switch name {
					case "run":
						msg = "Interrupt received. Cancelling the executions on the nodes."
					case "test":
						msg = "Interrupt received. Stopping the tests; the pools they applied are destroyed."
					}
					fmt.Fprintln(stderr, "\n"+msg)
					close(stop)
					continue
				}
				fmt.Fprintln(stderr, "Two interrupts received. Exiting at once; the state holds every step that finished.")
				cancel()
				os.Exit(exitInterrupted)
			}
		}()
	}

	err = cmd.run(m, args[1:])
	code := m.exitCode(cmd, err)
	if out.broken() {
		fmt.Fprintf(stderr, "%s standard output was closed while skyward %s was writing to it (%v); "+
			"skyward stopped writing there and finished its work (the state holds every step that finished).\n",
			m.errorPrefix(), name, out.err)
		code = max(code, exitError)
	}
	return code
}

// exitCode reports a command's error and returns the exit code.
func (m *Meta) exitCode(cmd *command, err error) int {
	var ec exitCodeError
	var hr helpRequest
	var de *diagError
	switch {
	case errors.As(err, &hr):
		printHelp(m.Stdout, cmd, hr.fs)
		return exitOK
	case err == nil:
		return exitOK
	case errors.As(err, &ec):
		return ec.code
	case errors.Is(err, errSilent):
		return exitError
	case m.json:
		m.jsonView().Error(err)
		return exitError
	case errors.As(err, &de):
		fmt.Fprintf(m.Stderr, "%s %s\n\n%s\n", m.errorPrefix(), de.summary, de.detail)
		return exitError
	default:
		fmt.Fprintf(m.Stderr, "%s %v\n", m.errorPrefix(), err)
		return exitError
	}
}

// guardedWriter passes writes on until one fails (the reader of a pipe
// went away); from then on it drops them and reports success, so that a
// command never stops half-way because its output cannot be read.
type guardedWriter struct {
	w   io.Writer
	mu  sync.Mutex
	err error
}

func (g *guardedWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return len(p), nil
	}
	if _, err := g.w.Write(p); err != nil {
		g.err = err
	}
	return len(p), nil
}

func (g *guardedWriter) broken() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err != nil
}

func (m *Meta) errorPrefix() string {
	if m.Color {
		return "\x1b[31m\x1b[1mError:\x1b[0m"
	}
	return "Error:"
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: skyward [global options] COMMAND [options] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	cs := commands()
	for _, c := range cs {
		if !c.hidden {
			fmt.Fprintf(w, "  %-10s %s\n", c.name, c.synopsis)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Global options (before the command):")
	fmt.Fprintln(w, "  -chdir=DIR   run in DIR: read its *.sky.hcl files and keep data in DIR/.skyward")
	fmt.Fprintln(w, "  -help        show this list; skyward COMMAND -h (or skyward help COMMAND) shows a command's options")
	fmt.Fprintln(w, "  -version     the same as skyward version")
}

// takeNoColor removes -no-color (any command accepts it, as in Terraform)
// from the arguments before "--" and turns colour off.
func takeNoColor(m *Meta, args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if a == "-no-color" || a == "--no-color" || a == "-no-color=true" || a == "--no-color=true" {
			m.Color = false
			continue
		}
		out = append(out, a)
	}
	return out
}

func runVersion(m *Meta, args []string) error {
	fs := newFlagSet("version")
	jsonOut := fs.Bool("json", false, "Print the version as a JSON object.")
	if _, _, err := parseArgs(fs, args); err != nil {
		return err
	}
	commit := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	if commit == "unknown" && Commit != "" {
		commit = Commit
	}
	if *jsonOut {
		return writeJSON(m.Stdout, map[string]string{"skyward_version": Version, "go_version": runtime.Version(), "commit": commit, "platform": runtime.GOOS + "_" + runtime.GOARCH})
	}
	fmt.Fprintf(m.Stdout, "skyward v%s\n%s %s/%s\ncommit %s\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH, commit)
	return nil
}

// Commit is the source revision, set at build time with -ldflags.
var Commit = ""

func isTerminal(w any) bool {
	if g, ok := w.(*guardedWriter); ok {
		w = g.w
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
