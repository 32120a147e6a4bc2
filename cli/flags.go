package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints usage nowhere: -h and --help make parseArgs return a helpRequest,
// and Run prints the command's help from it.
//
// Every flag set accepts -no-color; Run has already acted on it (it is
// taken out of the arguments before the command runs), so here it is only
// listed in the help.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Bool("no-color", false, "Print no colour escapes (as NO_COLOR=1 does).")
	return fs
}

// helpRequest is returned by parseArgs when the arguments ask for help.
type helpRequest struct{ fs *flag.FlagSet }

func (h helpRequest) Error() string { return "help requested" }

// parseArgs parses flags that may stand before or after positional
// arguments (one or two dashes each, as the flag package allows).
// Everything after "--" is returned untouched as rest.
func parseArgs(fs *flag.FlagSet, args []string) (positional, rest []string, err error) {
	for i, a := range args {
		if a == "--" {
			args, rest = args[:i], append([]string{}, args[i+1:]...)
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, nil, helpRequest{fs}
			}
			return nil, nil, fmt.Errorf("%w; see skyward %s -h", err, fs.Name())
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, rest, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// printFlags writes the options of fs, one a line, in name order, as
// Terraform's help does: "-name=VALUE  usage".
func printFlags(w io.Writer, fs *flag.FlagSet) {
	type row struct{ name, usage string }
	var rows []row
	width := 0
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		left := "-" + f.Name
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !bf.IsBoolFlag() {
			if name == "" {
				name = "VALUE"
			}
			left += "=" + name
		}
		if def := f.DefValue; def != "" && def != "false" && def != "0" && def != "0s" && def != "[]" {
			if !strings.Contains(usage, "efault") {
				usage += fmt.Sprintf(" Default: %s.", def)
			}
		}
		rows = append(rows, row{left, usage})
		width = max(width, len(left))
	})
	for _, r := range rows {
		fmt.Fprintf(w, "  %-*s  %s\n", width, r.name, r.usage)
	}
}
