package agent

import (
	"errors"
	"flag"
	"fmt"
)

// parseFlags parses a subcommand's arguments, which take no positional
// ones. When it returns false the subcommand ends with the code: 0 for
// -help, 2 for bad usage (already reported on the flag set's output).
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, false
	}
	return 0, true
}
