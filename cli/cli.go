// Package cli implements skyward's command line: flag parsing, prompts,
// the human and JSON views, and exit codes. It wires the other packages
// together and holds no provisioning logic of its own.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/providers/container"
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

	// The state backend, opened once by backend().
	be    state.Backend
	beErr error
}

type command struct {
	name     string
	synopsis string
	hidden   bool
	run      func(m *Meta, args []string) error
}

func commands() []command {
	return []command{
		{name: "init", synopsis: "Prepare the working directory and check providers", run: runInit},
		{name: "validate", synopsis: "Check the configuration", run: runValidate},
		{name: "fmt", synopsis: "Rewrite config files in canonical format", run: runFmt},
		{name: "plan", synopsis: "Show the changes that apply would make", run: runPlan},
		{name: "apply", synopsis: "Create or update the pools", run: runApply},
		{name: "destroy", synopsis: "Remove everything skyward created", run: runDestroy},
		{name: "show", synopsis: "Show the state or a saved plan", run: runShow},
		{name: "run", synopsis: "Run tasks on the applied pools", run: runRun},
		{name: "test", synopsis: "Run the *.skytest.hcl tests on the pools", run: runTest},
		{name: "status", synopsis: "Show pools and nodes", run: runStatus},
		{name: "ssh", synopsis: "Open a shell or run a command on a node", run: runSSH},
		{name: "output", synopsis: "Show output values", run: runOutput},
		{name: "force-unlock", synopsis: "Remove a remote state lock left by a dead process", run: runForceUnlock},
		{name: "state", synopsis: "Inspect and edit the state (list, show, rm)", run: runState},
		{name: "graph", synopsis: "Print the provisioning graph in DOT", run: runGraph},
		{name: "version", synopsis: "Print the version", run: runVersion},
		{name: "agent", hidden: true, run: runAgent},
	}
}

// DefaultRegistry returns a registry of the built-in providers.
func DefaultRegistry() *providers.Registry {
	r := &providers.Registry{}
	r.Register("container", container.Factory())
	return r
}

// Run runs skyward with the given arguments (without the program name) and
// returns the process exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	m := &Meta{Stdin: stdin, Stdout: stdout, Stderr: stderr, Registry: DefaultRegistry()}
	m.Color = isTerminal(stdout) && os.Getenv("NO_COLOR") == ""

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
		usage(stderr)
		return exitError
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
	var cmd *command
	for _, c := range commands() {
		if c.name == name {
			cmd = &c
			break
		}
	}
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
	var ec exitCodeError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ec):
		return ec.code
	case errors.Is(err, errSilent):
		return exitError
	default:
		fmt.Fprintf(stderr, "%s %v\n", m.errorPrefix(), err)
		return exitError
	}
}

func (m *Meta) errorPrefix() string {
	if m.Color {
		return "\x1b[31m\x1b[1mError:\x1b[0m"
	}
	return "Error:"
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: skyward [-chdir=DIR] COMMAND [options] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	cs := commands()
	for _, c := range cs {
		if !c.hidden {
			fmt.Fprintf(w, "  %-10s %s\n", c.name, c.synopsis)
		}
	}
}

func runVersion(m *Meta, args []string) error {
	fs := newFlagSet("version")
	jsonOut := fs.Bool("json", false, "")
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
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
